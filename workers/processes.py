"""Wiring shared by the processes: configs from settings, and the ingress process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

import uvicorn
from temporalio.client import Client

from activities.email import configure_resend
from activities.inbound_email import InboundConfig
from db.pool import Pool, open_pool
from workers.api import build_api
from workers.ingress import IngressDeps, InProcessServer, create_app
from workers.logging import configure_logging, register_secrets
from workers.settings import Settings, SettingsError, exit_on_settings_error, load_settings
from workers.temporal import connect_client


def inbound_config(settings: Settings) -> InboundConfig:
    """What the Resend webhook handler needs from settings."""
    settings.require(
        "resend_webhook_secret", "approval_token_secret", "resend_api_key", "database_url"
    )
    assert settings.resend_webhook_secret and settings.approval_token_secret
    assert settings.resend_api_key
    configure_resend(settings.resend_api_key.get_secret_value(), str(settings.resend_api_url))
    return InboundConfig(
        webhook_secret=settings.resend_webhook_secret.get_secret_value(),
        token_secret=settings.approval_token_secret.get_secret_value(),
        inbound_domain=settings.inbound_email_domain,
        sender=settings.email_from,
    )


@contextlib.asynccontextmanager
async def serving_ingress(
    pool: Pool, client: Client, settings: Settings, *, port: int | None = None
) -> AsyncIterator[InProcessServer]:
    """Serve the ingress inside this process's event loop while the block runs."""
    api = build_api(settings, pool, client)
    app = create_app(
        IngressDeps(
            pool=pool,
            client=client,
            inbound=inbound_config(settings),
            max_body_bytes=settings.ingress_max_body_bytes,
            api=api,
        )
    )
    server = InProcessServer(
        uvicorn.Config(
            app,
            host=settings.ingress_host,
            port=port or settings.ingress_port,
            log_level="warning",
            lifespan="off",
        )
    )
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
        await api.aclose()


async def run_ingress(settings: Settings) -> None:
    """Serve the ingress until SIGTERM/SIGINT, then finish the requests in flight and return
    (uvicorn's own handlers would re-raise the signal: an exit status of -15, not 0)."""
    inbound = inbound_config(settings)
    assert settings.database_url is not None
    pool = await open_pool(settings.database_url.get_secret_value(), min_size=1)
    client = await connect_client(settings)
    api = build_api(settings, pool, client)
    app = create_app(
        IngressDeps(
            pool=pool,
            client=client,
            inbound=inbound,
            max_body_bytes=settings.ingress_max_body_bytes,
            api=api,
        )
    )
    server = InProcessServer(
        uvicorn.Config(
            app,
            host=settings.ingress_host,
            port=settings.ingress_port,
            lifespan="off",
            log_level="warning",
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, setattr, server, "should_exit", True)
    try:
        await server.serve()
    finally:
        await api.aclose()
        await pool.close()


def ingress_main() -> None:
    """Entry point of ``orchestrator ingress``."""
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        register_secrets(settings.secret_values())
        asyncio.run(run_ingress(settings))
    except SettingsError as error:
        exit_on_settings_error(error)
