"""The worker process: every workflow and activity on the project's task queue."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog
from steel import AsyncSteel
from supermemory import AsyncSupermemory
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    FixedSizeSlotSupplier,
    Interceptor,
    ResourceBasedSlotConfig,
    ResourceBasedSlotSupplier,
    ResourceBasedTunerConfig,
    WorkerTuner,
)

from activities.approvals import ApprovalActivities
from activities.browser import BrowserActivities
from activities.connectors import AdPlatformConfig
from activities.credentials import CredentialBox
from activities.email import EmailActivities, EmailConfig, configure_resend
from activities.higgsfield import GenerationActivities, HiggsfieldConfig
from activities.jobs import JobActivities
from activities.memory import MemoryActivities
from activities.metric_sync import MetricSyncActivities, ScheduleActivities
from db.migrate import migrate
from db.pool import Pool, open_pool
from db.transitions import InvalidTransition, RowNotFound
from workers import shared_code
from workers.dispatch.loop import running_dispatcher
from workers.idle_eviction import CachedRuns, EvictingWorker
from workers.logging import configure_logging, get_logger, register_secrets
from workers.sandbox_runner import CompiledSandboxRunner
from workers.settings import Settings, SettingsError, exit_on_settings_error, load_settings
from workers.temporal import connect_client
from workflows.agent_job import AgentJob
from workflows.generation import Generation
from workflows.generation_batch import GenerationBatch
from workflows.metric_sync import MetricSync, ScheduleReconcile

log = get_logger("workers.worker")

ALL_WORKFLOWS: list[type] = [AgentJob, Generation, GenerationBatch, MetricSync, ScheduleReconcile]


class _ActivityContext(ActivityInboundInterceptor):
    """Binds workflow id, run id and activity name to every log line of an activity, and
    makes a refused state transition final: retrying it cannot succeed."""

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            activity=info.activity_type,
            attempt=info.attempt,
        ):
            try:
                return await super().execute_activity(input)
            except (InvalidTransition, RowNotFound) as exc:
                raise ApplicationError(
                    str(exc), type=type(exc).__name__, non_retryable=True
                ) from exc


class LoggingInterceptor(Interceptor):
    """Worker interceptor that installs ``_ActivityContext``."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityContext(next)


@dataclass
class Services:
    """The clients the activities use; built once per process."""

    pool: Pool
    steel: AsyncSteel
    supermemory: AsyncSupermemory
    email: EmailConfig
    credentials: CredentialBox  # decrypts stored user keys and connection tokens
    http: httpx.AsyncClient  # for vendors called through their HTTP APIs
    higgsfield: HiggsfieldConfig
    ad_platforms: AdPlatformConfig  # Meta / Google Ads URLs, developer token, lookback
    supermemory_http: httpx.AsyncClient  # the Supermemory client's connections

    async def aclose(self) -> None:
        """Close the clients' connections (the pool is its owner's to close).

        A client left to the garbage collector is worse than a leak: Steel's SDK closes
        an open client from ``__del__`` by creating a task on whatever event loop is
        running, and the collector runs on whichever thread allocates. On a workflow
        thread that loop is a workflow run's: httpx's close then ran inside the sandbox,
        failed on its restrictions and left the connections open (the test suite's
        occasional warning "Module sniffio was imported after initial workflow load").
        """
        async with contextlib.AsyncExitStack() as clients:  # every one, even if one fails
            clients.push_async_callback(self.http.aclose)
            clients.push_async_callback(self.supermemory_http.aclose)
            clients.push_async_callback(self.steel.close)


def build_services(settings: Settings, pool: Pool) -> Services:
    """Clients for the outside services, from settings (base URLs included)."""
    settings.require(
        "approval_token_secret",
        "resend_api_key",
        "steel_api_key",
        "supermemory_api_key",
        "credentials_encryption_key",
    )
    assert settings.resend_api_key and settings.approval_token_secret
    assert settings.steel_api_key and settings.supermemory_api_key
    assert settings.credentials_encryption_key
    configure_resend(settings.resend_api_key.get_secret_value(), str(settings.resend_api_url))
    supermemory_timeout = 15.0
    supermemory_http = httpx.AsyncClient(timeout=supermemory_timeout, follow_redirects=True)
    return Services(
        pool=pool,
        steel=AsyncSteel(
            steel_api_key=settings.steel_api_key.get_secret_value(),
            base_url=str(settings.steel_base_url).rstrip("/"),
            max_retries=0,  # Temporal's retry policy is the one retry mechanism
        ),
        supermemory=AsyncSupermemory(
            api_key=settings.supermemory_api_key.get_secret_value(),
            base_url=str(settings.supermemory_base_url).rstrip("/"),
            max_retries=0,
            timeout=supermemory_timeout,
            httpx_client=supermemory_http,
        ),
        email=EmailConfig(
            sender=settings.email_from,
            inbound_domain=settings.inbound_email_domain,
            ingress_url=settings.ingress_url,
            token_secret=settings.approval_token_secret.get_secret_value(),
        ),
        credentials=CredentialBox(settings.credentials_encryption_key.get_secret_value()),
        http=httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)),
        higgsfield=HiggsfieldConfig(
            base_url=str(settings.higgsfield_base_url).rstrip("/"),
            ingress_url=settings.ingress_url,
            token_secret=settings.approval_token_secret.get_secret_value(),
            asset_dir=settings.asset_storage_dir or settings.orchestrator_home / "assets",
        ),
        ad_platforms=AdPlatformConfig.from_settings(settings),
        supermemory_http=supermemory_http,
    )


@contextlib.asynccontextmanager
async def open_services(settings: Settings, pool: Pool) -> AsyncIterator[Services]:
    """:func:`build_services`, closing the clients on the way out."""
    services = build_services(settings, pool)
    try:
        yield services
    finally:
        await services.aclose()


def all_activities(services: Services) -> list[Callable[..., Any]]:
    """Every activity, as bound methods of their classes."""
    jobs = JobActivities(services.pool)
    approvals = ApprovalActivities(services.pool)
    email = EmailActivities(services.pool, services.email)
    browser = BrowserActivities(services.pool, services.steel)
    memory = MemoryActivities(services.pool, services.supermemory)
    generation = GenerationActivities(
        services.pool, services.credentials, services.http, services.higgsfield
    )
    metric_sync = MetricSyncActivities(
        services.pool, services.credentials, services.http, services.ad_platforms
    )
    schedules = ScheduleActivities(services.pool)
    return [
        jobs.create_job,
        jobs.add_job_steps,
        jobs.skip_step,
        jobs.reserve_browser_session,
        jobs.finish_job,
        approvals.open_approval,
        approvals.record_approval_decision,
        approvals.close_approval,
        email.send_approval_email,
        browser.open_session,
        browser.run_step,
        browser.capture_screenshot,
        browser.release_session,
        memory.recall_memories,
        memory.store_outcome_memory,
        generation.create_generation,
        generation.take_slot,
        generation.submit_generation,
        generation.adopt_request,
        generation.check_generation,
        generation.cancel_on_higgsfield,
        generation.note_cancel_refused,
        generation.finish_generation,
        generation.save_results,
        metric_sync.open_metric_sync,
        metric_sync.pull_metrics,
        metric_sync.close_metric_sync,
        schedules.reconcile_metric_schedules,
    ]


ACTIVITY_SLOTS_MIN = 4  # activities that always run at once, however busy the machine
LOCAL_ACTIVITY_SLOTS = 100
MEMORY_TARGET = 0.9  # activity slots also stop growing above this share of memory


def worker_tuner(settings: Settings) -> WorkerTuner:
    """Fixed slots for workflow tasks and local activities; activity slots that grow
    (up to ``worker_max_concurrent_activities``) only while CPU stays under the target.

    Measured on two cores at 10 replies/s: the reply-to-resume p50 went from 2.4 s with
    100 fixed activity slots to under 0.1 s, because resumed jobs' activities no longer crowd
    out the workflow tasks that apply the next decisions. The default target is 0.7: with
    the cheaper compiled sandbox runner, 0.8 let in enough activities to push the p99 past
    0.8 s again (README, Performance).
    """
    if settings.worker_activity_cpu_target is None:
        return WorkerTuner.create_fixed(
            workflow_slots=settings.worker_max_concurrent_workflow_tasks,
            activity_slots=settings.worker_max_concurrent_activities,
            local_activity_slots=LOCAL_ACTIVITY_SLOTS,
        )
    return WorkerTuner.create_composite(
        workflow_supplier=FixedSizeSlotSupplier(settings.worker_max_concurrent_workflow_tasks),
        activity_supplier=ResourceBasedSlotSupplier(
            ResourceBasedSlotConfig(
                minimum_slots=min(ACTIVITY_SLOTS_MIN, settings.worker_max_concurrent_activities),
                maximum_slots=settings.worker_max_concurrent_activities,
            ),
            ResourceBasedTunerConfig(
                target_memory_usage=MEMORY_TARGET,
                target_cpu_usage=settings.worker_activity_cpu_target,
            ),
        ),
        local_activity_supplier=FixedSizeSlotSupplier(LOCAL_ACTIVITY_SLOTS),
        nexus_supplier=FixedSizeSlotSupplier(1),  # no Nexus operations here
    )


def build_worker(client: Client, settings: Settings, services: Services) -> EvictingWorker:
    """The worker with every workflow and activity registered."""
    shared_code.install()  # before the sandbox first imports a workflow module
    runs = CachedRuns()
    return EvictingWorker(
        client,
        runs=runs,
        idle_eviction=settings.worker_idle_eviction_seconds,
        task_queue=settings.temporal_task_queue,
        workflows=ALL_WORKFLOWS,
        activities=all_activities(services),
        interceptors=[LoggingInterceptor()],
        workflow_runner=CompiledSandboxRunner(runs=runs),
        tuner=worker_tuner(settings),
        max_cached_workflows=settings.worker_sticky_cache_size,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
    )


def telemetry_runtime(settings: Settings) -> Runtime | None:
    """A runtime exporting SDK metrics on Prometheus, or None when disabled."""
    if not settings.metrics_bind_address:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.metrics_bind_address),
            global_tags={"service": "agency-orchestrator-worker"},
        )
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then drain in-flight activities and exit."""
    settings.require("database_url", "temporal_address")
    assert settings.database_url is not None
    database_url = settings.database_url.get_secret_value()
    if settings.migrate_on_start:
        applied = await migrate(database_url)
        log.info("migrations applied", applied=applied)
    pool = await open_pool(
        database_url, min_size=settings.database_pool_min, max_size=settings.database_pool_max
    )
    client = await connect_client(settings, runtime=telemetry_runtime(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with (
        open_services(settings, pool) as services,
        build_worker(client, settings, services),
        running_dispatcher(settings, pool, client),
    ):
        log.info("worker started", task_queue=settings.temporal_task_queue)
        await stop.wait()
        log.info("worker draining", timeout_s=settings.worker_graceful_shutdown_seconds)
    await pool.close()
    log.info("worker stopped")


def main() -> None:
    """Entry point of ``orchestrator worker``."""
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        register_secrets(settings.secret_values())
        asyncio.run(run_worker(settings))
    except SettingsError as error:
        exit_on_settings_error(error)
