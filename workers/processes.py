"""Wiring shared by the processes: configs from settings, and the ingress process (it
serves the app of ``ingress/``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

import httpx
import uvicorn
from temporalio.client import Client

from activities.email import configure_resend
from db.pool import Pool, open_pool
from ingress.api.auth import JwksCache, TokenVerifier
from ingress.api.routes import ApiDeps
from ingress.app import IngressDeps, InProcessServer, create_app
from ingress.codec_server import CodecAccess
from ingress.inbound_email import InboundConfig
from workers.codec import EncryptionCodec
from workers.dispatch.rows import RowDispatcher
from workers.entry import run_process
from workers.families import family_statuses
from workers.keys import Keyring, Use
from workers.object_storage import open_object_store
from workers.settings import Settings
from workers.telemetry import client_plugins, configure_tracing, telemetry_runtime
from workers.temporal import connect_client


def inbound_config(settings: Settings) -> InboundConfig:
    """What the Resend webhook handler needs from settings."""
    settings.require("resend_webhook_secret", "resend_api_key", "database_url")
    assert settings.resend_webhook_secret and settings.resend_api_key
    configure_resend(settings.resend_api_key.get_secret_value(), str(settings.resend_api_url))
    return InboundConfig(
        webhook_secret=settings.resend_webhook_secret.get_secret_value(),
        token_secret=Keyring.from_settings(settings).signing_keys(Use.APPROVAL_TOKENS),
        inbound_domain=settings.inbound_email_domain,
        sender=settings.email_from,
        task_queue=settings.temporal_task_queue,
    )


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


def ingress_deps(pool: Pool, client: Client, settings: Settings) -> IngressDeps:
    """What the ingress needs, from settings."""
    inbound = inbound_config(settings)
    keyring = Keyring.from_settings(settings)
    token = settings.codec_auth_token
    return IngressDeps(
        pool=pool,
        client=client,
        inbound=inbound,
        max_body_bytes=settings.ingress_max_body_bytes,
        webhook_keys=keyring.signing_keys(Use.WEBHOOK_TOKENS),
        codec=EncryptionCodec.from_keyring(keyring),
        codec_access=CodecAccess(
            token=token.get_secret_value() if token is not None else None,
            namespace=settings.temporal_namespace,
            origins=settings.codec_origins,
            secure_cookie=settings.ingress_url.startswith("https://"),
        ),
        families={s.name: s.as_dict() for s in family_statuses(settings)},
        api=build_api(settings, pool, client),
    )


async def _ingress_server(
    pool: Pool, client: Client, settings: Settings, port: int
) -> tuple[InProcessServer, IngressDeps]:
    """The ingress app on ``port``, not serving yet, and what it depends on."""
    deps = ingress_deps(pool, client, settings)
    deps.objects = await open_object_store(settings, pool)
    config = uvicorn.Config(
        create_app(deps),
        host=settings.ingress_host,
        port=port,
        log_level="warning",
        lifespan="off",
    )
    return InProcessServer(config), deps


@contextlib.asynccontextmanager
async def serving_ingress(
    pool: Pool, client: Client, settings: Settings, *, port: int | None = None
) -> AsyncIterator[InProcessServer]:
    """Serve the ingress inside this process's event loop while the block runs."""
    server, deps = await _ingress_server(pool, client, settings, port or settings.ingress_port)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # raises why it could not start
        await asyncio.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        await serving
        if deps.api is not None:
            await deps.api.aclose()


async def run_ingress(settings: Settings) -> None:
    """Serve the ingress until SIGTERM/SIGINT, then finish the requests in flight and return
    (uvicorn's own handlers would re-raise the signal: an exit status of -15, not 0)."""
    inbound_config(settings)  # a missing setting stops the process before it connects
    assert settings.database_url is not None
    pool = await open_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        transaction_pooler=settings.database_transaction_pooler,
    )
    configure_tracing("agency-orchestrator-ingress")
    runtime = telemetry_runtime(
        settings.ingress_metrics_bind_address, "agency-orchestrator-ingress"
    )
    client = await connect_client(settings, runtime=runtime, plugins=client_plugins())
    server, deps = await _ingress_server(pool, client, settings, settings.ingress_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, setattr, server, "should_exit", True)
    try:
        await server.serve()
    finally:
        if deps.api is not None:
            await deps.api.aclose()
        await pool.close()


def ingress_main() -> None:
    """Entry point of ``orchestrator ingress``."""
    run_process(run_ingress)
