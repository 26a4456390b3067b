"""The HTTP ingress: what arrives from outside and becomes Temporal updates, signals and
rows. ``app.py`` is the Starlette app (served by ``orchestrator ingress``, wired in
``workers/processes.py``); it routes Resend webhooks to ``inbound_email.py`` (replies read
by ``replies/``), Higgsfield webhooks to ``inbound_higgsfield.py``, approval links to
``decision_page.py``, the app's ``/v1`` API to ``api/`` and Temporal's codec endpoint to
``codec_server.py``; every decision, whatever its channel, goes through
``decisions.py``."""
