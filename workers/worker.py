"""The worker process: every workflow and activity on the project's task queue."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, timedelta
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
    Worker,
    WorkerTuner,
)

from activities.approvals import ApprovalActivities
from activities.browser import BrowserActivities
from activities.connectors import AdPlatformConfig
from activities.connectors.versions import check_configured_versions, log_version_checks
from activities.credentials import CredentialBox
from activities.email import EmailActivities, EmailConfig, configure_resend
from activities.generation_slots import SlotActivities
from activities.higgsfield import GenerationActivities, HiggsfieldConfig
from activities.jobs import JobActivities
from activities.memory import MemoryActivities
from activities.metric_schedules import ScheduleActivities
from activities.metric_sync import MetricSyncActivities
from activities.object_store import (
    ObjectStore,
)
from activities.sweep import SweepActivities
from db.migrate import migrate
from db.pool import Pool, open_pool
from db.transitions import InvalidTransition, RowNotFound
from workers import shared_code
from workers.dispatch.loop import running_dispatcher
from workers.families import FamilyStatus, family_statuses, refusing_activity, status_of
from workers.idle_eviction import CachedRuns, EvictingWorker, TrackingRunner
from workers.keys import Keyring, Use
from workers.logging import configure_logging, get_logger, register_secrets
from workers.object_storage import open_object_store
from workers.sdk_internals import sdk_patches
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
    agent_jobs: FamilyStatus  # without its keys, steel and supermemory are None
    steel: AsyncSteel | None
    supermemory: AsyncSupermemory | None
    email: EmailConfig
    credentials: CredentialBox  # decrypts stored user keys and connection tokens
    http: httpx.AsyncClient  # for vendors called through their HTTP APIs
    higgsfield: HiggsfieldConfig
    ad_platforms: AdPlatformConfig  # Meta / Google Ads URLs, developer token, lookback
    supermemory_http: httpx.AsyncClient  # the Supermemory client's connections
    # Object storage for results and screenshots (None: the local folder and Postgres).
    objects: ObjectStore | None = None

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
            if self.steel is not None:
                clients.push_async_callback(self.steel.close)


def ad_platform_config(settings: Settings, *, today: date | None = None) -> AdPlatformConfig:
    """The ad platforms' config of a worker process; logs the check of the configured API
    versions (a warning within 60 days of a version's sunset, an error past it)."""
    token = settings.google_ads_developer_token
    log_version_checks(
        check_configured_versions(
            settings.google_ads_api_version,
            settings.meta_graph_api_version,
            today or date.today(),
        )
    )
    return AdPlatformConfig(
        meta_graph_url=str(settings.meta_graph_url).rstrip("/"),
        meta_api_version=settings.meta_graph_api_version,
        meta_conversion_action_types=frozenset(settings.meta_conversion_action_types.split(",")),
        google_ads_url=str(settings.google_ads_url).rstrip("/"),
        google_ads_api_version=settings.google_ads_api_version,
        google_ads_developer_token=token.get_secret_value() if token else None,
        lookback=settings.metric_sync_lookback,
    )


def build_services(settings: Settings, pool: Pool) -> Services:
    """Clients for the outside services, from settings (base URLs included). A family
    whose keys are missing gets no clients (``workers/families.py``)."""
    keyring = Keyring.from_settings(settings)  # one key per use, derived from the master key
    agent_jobs = status_of(settings, "agent_jobs")
    if settings.resend_api_key is not None:
        configure_resend(settings.resend_api_key.get_secret_value(), str(settings.resend_api_url))
    supermemory_timeout = 15.0
    supermemory_http = httpx.AsyncClient(timeout=supermemory_timeout, follow_redirects=True)
    steel = supermemory = None
    if agent_jobs.enabled:
        assert settings.steel_api_key and settings.supermemory_api_key
        steel = AsyncSteel(
            steel_api_key=settings.steel_api_key.get_secret_value(),
            base_url=str(settings.steel_base_url).rstrip("/"),
            max_retries=0,  # Temporal's retry policy is the one retry mechanism
        )
        supermemory = AsyncSupermemory(
            api_key=settings.supermemory_api_key.get_secret_value(),
            base_url=str(settings.supermemory_base_url).rstrip("/"),
            max_retries=0,
            timeout=supermemory_timeout,
            httpx_client=supermemory_http,
        )
    return Services(
        pool=pool,
        agent_jobs=agent_jobs,
        steel=steel,
        supermemory=supermemory,
        email=EmailConfig(
            sender=settings.email_from,
            inbound_domain=settings.inbound_email_domain,
            ingress_url=settings.ingress_url,
            token_secret=keyring.signing_keys(Use.APPROVAL_TOKENS),
        ),
        credentials=keyring.credential_box(),
        http=httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0)),
        higgsfield=HiggsfieldConfig(
            base_url=str(settings.higgsfield_base_url).rstrip("/"),
            ingress_url=settings.ingress_url,
            token_secret=keyring.signing_keys(Use.WEBHOOK_TOKENS),
            asset_dir=settings.asset_storage_dir or settings.orchestrator_home / "assets",
        ),
        ad_platforms=ad_platform_config(settings),
        supermemory_http=supermemory_http,
    )


@contextlib.asynccontextmanager
async def open_services(settings: Settings, pool: Pool) -> AsyncIterator[Services]:
    """:func:`build_services`, closing the clients on the way out."""
    services = build_services(settings, pool)
    try:
        services.objects = await open_object_store(settings, pool)
        yield services
    finally:
        await services.aclose()


def all_activities(services: Services) -> list[Callable[..., Any]]:
    """Every activity, as bound methods of their classes."""
    jobs = JobActivities(services.pool)
    approvals = ApprovalActivities(services.pool)
    generation = GenerationActivities(
        services.pool, services.credentials, services.http, services.higgsfield, services.objects
    )
    metric_sync = MetricSyncActivities(
        services.pool, services.credentials, services.http, services.ad_platforms
    )
    schedules = ScheduleActivities(services.pool)
    slots = SlotActivities(services.pool)
    sweep = SweepActivities(services.pool)
    return [
        jobs.create_job,
        jobs.add_job_steps,
        jobs.skip_step,
        jobs.reserve_browser_session,
        jobs.finish_job,
        approvals.open_approval,
        approvals.record_approval_decision,
        approvals.close_approval,
        approvals.open_team_approval,
        approvals.escalate_approval,
        approvals.record_approval_vote,
        approvals.delegate_approval,
        *agent_job_vendor_activities(services),
        generation.create_generation,
        generation.take_slot,
        generation.submit_generation,
        generation.adopt_request,
        generation.check_generation,
        generation.cancel_on_higgsfield,
        generation.note_cancel_refused,
        generation.finish_generation,
        generation.save_results,
        slots.wake_slot_waiters,
        metric_sync.open_metric_sync,
        metric_sync.pull_metrics,
        metric_sync.close_metric_sync,
        schedules.reconcile_metric_schedules,
        sweep.sweep_ended_workflows,
    ]


def agent_job_vendor_activities(services: Services) -> list[Callable[..., Any]]:
    """The agent jobs' Steel, Supermemory and Resend activities; without their keys, one
    stand-in that fails each of them non-retryably with the reason (the job ends failed
    with it) and lets the release of a never-opened browser session succeed."""
    if services.steel is not None and services.supermemory is not None:
        email = EmailActivities(services.pool, services.email, services.objects)
        browser = BrowserActivities(services.pool, services.steel, services.objects)
        memory = MemoryActivities(services.pool, services.supermemory)
        return [
            email.send_approval_email,
            browser.open_session,
            browser.run_step,
            browser.capture_screenshot,
            browser.release_session,
            memory.recall_memories,
            memory.store_outcome_memory,
        ]
    refused = [
        EmailActivities.send_approval_email,
        BrowserActivities.open_session,
        BrowserActivities.run_step,
        BrowserActivities.capture_screenshot,
        MemoryActivities.recall_memories,
        MemoryActivities.store_outcome_memory,
    ]
    return [
        refusing_activity(
            services.agent_jobs.reason or "agent jobs are disabled on this worker",
            refused=[fn.__name__ for fn in refused],
            no_ops=[BrowserActivities.release_session.__name__],
        )
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


def build_worker(client: Client, settings: Settings, services: Services) -> Worker:
    """The worker with every workflow and activity registered; with the SDK patches
    (``WORKER_SDK_PATCHES``, :mod:`workers.sdk_internals`) where they apply."""
    options: dict[str, Any] = {
        "task_queue": settings.temporal_task_queue,
        "workflows": ALL_WORKFLOWS,
        "activities": all_activities(services),
        "interceptors": [LoggingInterceptor()],
        "tuner": worker_tuner(settings),
        "max_cached_workflows": settings.worker_sticky_cache_size,
        "graceful_shutdown_timeout": timedelta(seconds=settings.worker_graceful_shutdown_seconds),
    }
    patches = sdk_patches(settings.worker_sdk_patches)
    runner = patches.workflow_runner()
    idle_eviction = settings.worker_idle_eviction_seconds if patches.enabled else None
    said = {
        "reason": patches.reason,
        "workflow_runner": type(runner).__name__,
        "shared_code": patches.enabled,
        "idle_eviction_s": idle_eviction,
    }
    if patches.enabled:
        log.info("SDK patches on", **said)
    elif settings.worker_sdk_patches == "off":
        log.info("SDK patches off: the SDK as shipped", **said)
    else:  # wanted, but not verified on this temporalio: worth a look
        log.warning("SDK patches off: the SDK as shipped", **said)
    if not patches.enabled:
        return Worker(client, workflow_runner=runner, **options)
    shared_code.install()  # before the sandbox first imports a workflow module
    if idle_eviction is None:
        return Worker(client, workflow_runner=runner, **options)
    runs = CachedRuns()
    return EvictingWorker(
        client,
        runs=runs,
        idle_eviction=idle_eviction,
        workflow_runner=TrackingRunner(runner, runs),
        **options,
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
    settings.require("database_url")  # Temporal: workers/temporal.py says what is missing
    assert settings.database_url is not None
    database_url = settings.database_url.get_secret_value()
    if settings.migrate_on_start:
        applied = await migrate(settings.migration_url or database_url)
        log.info("migrations applied", applied=applied)
    pool = await open_pool(
        database_url,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        transaction_pooler=settings.database_transaction_pooler,
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
        for family in family_statuses(settings):
            if not family.enabled:
                log.warning("family disabled", family=family.name, reason=family.reason)
        log.info(
            "worker started",
            task_queue=settings.temporal_task_queue,
            families=[f.name for f in family_statuses(settings) if f.enabled],
        )
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
