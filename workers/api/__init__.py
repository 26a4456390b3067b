"""The HTTP API for apps (``/v1``), mounted by the ingress: ``routes.py`` serves it,
``pipeline.py`` authenticates and validates each request, ``work.py`` and ``decisions.py``
handle them, ``auth.py`` checks Supabase tokens, ``idempotency.py`` keeps POSTs once,
``openapi.py`` describes it."""

from __future__ import annotations

import httpx
from temporalio.client import Client

from db.pool import Pool
from workers.api.auth import JwksCache, TokenVerifier
from workers.api.routes import ApiDeps
from workers.dispatch.rows import RowDispatcher
from workers.settings import Settings


def build_api(settings: Settings, pool: Pool, client: Client) -> ApiDeps:
    """What the API needs, from settings (``ApiDeps.aclose`` closes the key fetcher)."""
    http = httpx.AsyncClient(follow_redirects=False)
    verifier = None
    if settings.supabase_url is not None:
        url = str(settings.supabase_url).rstrip("/")
        secret = settings.supabase_jwt_secret
        verifier = TokenVerifier(
            supabase_url=url,
            jwks=JwksCache(f"{url}/auth/v1/.well-known/jwks.json", http),
            hs256_secret=secret.get_secret_value() if secret else None,
        )
    return ApiDeps(
        pool=pool,
        client=client,
        verifier=verifier,
        rows=RowDispatcher(pool, client, settings),
        http=http,
    )
