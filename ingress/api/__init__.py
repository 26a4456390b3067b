"""The HTTP API for apps (``/v1``), mounted by the ingress: ``routes.py`` serves it,
``pipeline.py`` authenticates and validates each request, ``work.py`` and ``decisions.py``
handle them, ``auth.py`` checks Supabase tokens, ``idempotency.py`` keeps POSTs once,
``openapi.py`` describes it."""
