"""The worker process: the workflows' task queue and the vendor families' queues
(``workflows/task_queues.py``), each with its own worker options, in one process or
several (``orchestrator worker --queues``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

import httpx
import structlog
from steel import AsyncSteel
from supermemory import AsyncSupermemory
from temporalio import activity
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.exceptions import ApplicationError
from temporalio.runtime import Runtime
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    FixedSizeSlotSupplier,
    Interceptor,
    ResourceBasedSlotConfig,
    ResourceBasedSlotSupplier,
    ResourceBasedTunerConfig,
    Worker,
    WorkerDeploymentConfig,
    WorkerTuner,
)

from activities.approvals import ApprovalActivities
from activities.browser import BrowserActivities
from activities.connectors import AdPlatformConfig
from activities.connectors.versions import check_configured_versions, log_version_checks
from activities.credential_suspension import CredentialSuspension
from activities.credentials import CredentialBox
from activities.email import EmailActivities, EmailConfig, configure_resend
from activities.generation_slots import SlotActivities
from activities.google_tokens import GoogleAccessTokens
from activities.higgsfield import GenerationActivities, HiggsfieldConfig
from activities.jobs import JobActivities
from activities.memory import MemoryActivities
from activities.metric_schedules import ScheduleActivities
from activities.metric_sync import MetricSyncActivities
from activities.notifications import NotificationActivities, NotificationConfig
from activities.object_store import (
    ObjectStore,
)
from activities.platform_tokens import TokenEndpoints
from activities.sweep import SweepActivities
from db.migrate import migrate
from db.pool import Pool, open_pool
from db.transitions import InvalidTransition, RowNotFound
from workers import shared_code
from workers.dispatch.loop import running_dispatcher
from workers.entry import run_process
from workers.families import FamilyStatus, family_statuses, refusing_activity, status_of
from workers.housekeeping import (
    credential_suspension,
    google_access_tokens,
    housekeeping_activities,
    token_endpoints,
)
from workers.idle_eviction import CachedRuns, EvictingWorker, TrackingRunner
from workers.keys import Keyring, Use
from workers.logging import get_logger
from workers.object_storage import open_object_store
from workers.sdk_internals import sdk_patches
from workers.settings import Settings
from workers.telemetry import client_meter, client_plugins, configure_tracing
from workers.telemetry import telemetry_runtime as _runtime
from workers.telemetry_metrics import BusinessMetrics, collecting_gauges
from workers.temporal import connect_client
from workflows.agent_job import AgentJob
from workflows.dashboard_refresh import DashboardRefresh
from workflows.generation import Generation
from workflows.generation_batch import GenerationBatch
from workflows.metric_sync import MetricSync, ScheduleReconcile
from workflows.notification_delivery import NotificationDelivery
from workflows.retention import Retention
from workflows.task_queues import AGENT_JOBS, EMAIL, GENERATIONS, SYNCS, Family, family_queue
from workflows.token_refresh import TokenRefresh
from workflows.versioned import VERSIONED_WORKFLOWS

log = get_logger("workers.worker")

ALL_WORKFLOWS: list[type] = [
    AgentJob,
    Generation,
    GenerationBatch,
    MetricSync,
    ScheduleReconcile,
    TokenRefresh,
    Retention,
    DashboardRefresh,
    NotificationDelivery,
]


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
    notifications: NotificationConfig  # email (Resend) and Slack notifications
    # Object storage for results and screenshots (None: the local folder and Postgres).
    objects: ObjectStore | None = None
    # Renewing credentials (issue 28): token endpoints, Google's token cache, suspensions.
    token_endpoints: TokenEndpoints | None = None
    google_tokens: GoogleAccessTokens | None = None
    suspension: CredentialSuspension | None = None

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
        write_values=settings.metric_sync_write_values,
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
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
    endpoints = token_endpoints(settings)
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
        http=http,
        higgsfield=HiggsfieldConfig(
            base_url=str(settings.higgsfield_base_url).rstrip("/"),
            ingress_url=settings.ingress_url,
            token_secret=keyring.signing_keys(Use.WEBHOOK_TOKENS),
            asset_dir=settings.asset_storage_dir or settings.orchestrator_home / "assets",
        ),
        ad_platforms=ad_platform_config(settings),
        supermemory_http=supermemory_http,
        token_endpoints=endpoints,
        google_tokens=google_access_tokens(http, endpoints),
        suspension=credential_suspension(settings, pool),
        notifications=NotificationConfig(
            sender=settings.email_from,
            email_enabled=status_of(settings, "email_notifications").enabled,
            slack_api_url=str(settings.slack_api_url),
        ),
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
    """Every activity, as bound methods of their classes: the workflows' queue registers
    them all (runs started before the family queues schedule every activity there)."""
    jobs = JobActivities(services.pool)
    approvals = ApprovalActivities(services.pool)
    slots = SlotActivities(services.pool)
    generation = generation_activities(services)
    metric_sync = metric_sync_activities(services)
    schedules = ScheduleActivities(services.pool)
    sweep = SweepActivities(services.pool)
    notifications = notification_activities(services)
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
        *agent_job_vendor_activities(services, (AGENT_JOBS, EMAIL)),
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
        *housekeeping_activities(
            services.pool,
            services.credentials,
            services.http,
            services.token_endpoints or TokenEndpoints(google_oauth_url=""),
            services.suspension or CredentialSuspension(services.pool, sender=None),
            services.objects,
        ),
        notifications.notify,
        notifications.reserve_send_slot,
        notifications.deliver_notification,
        notifications.close_notification,
    ]


def generation_activities(services: Services) -> GenerationActivities:
    """The Higgsfield activities' class."""
    return GenerationActivities(
        services.pool, services.credentials, services.http, services.higgsfield, services.objects
    )


def metric_sync_activities(services: Services) -> MetricSyncActivities:
    """The ad platforms' activities' class."""
    return MetricSyncActivities(
        services.pool,
        services.credentials,
        services.http,
        services.ad_platforms,
        google_tokens=services.google_tokens,
        suspension=services.suspension,
    )


def notification_activities(services: Services) -> NotificationActivities:
    """The notifications' activities' class (email and Slack)."""
    return NotificationActivities(services.pool, services.credentials, services.notifications)


def family_activities(services: Services, family: Family) -> list[Callable[..., Any]]:
    """The activities a family's task queue runs: its vendor calls
    (``workflows/task_queues.py`` says which workflow call goes where)."""
    if family == EMAIL:  # approval emails and email notifications
        return [
            *agent_job_vendor_activities(services, (EMAIL,)),
            notification_activities(services).deliver_notification,
        ]
    if family == AGENT_JOBS:
        return agent_job_vendor_activities(services, (AGENT_JOBS,))
    if family == GENERATIONS:
        generation = generation_activities(services)
        return [
            generation.submit_generation,
            generation.check_generation,
            generation.cancel_on_higgsfield,
            generation.save_results,
        ]
    return [metric_sync_activities(services).pull_metrics]


def agent_job_vendor_activities(
    services: Services, families: tuple[Family, ...] = (AGENT_JOBS, EMAIL)
) -> list[Callable[..., Any]]:
    """The agent jobs' Steel and Supermemory activities (family ``agent-jobs``) and the
    Resend one (``email``); without their keys, one stand-in that fails each of them
    non-retryably with the reason (the job ends failed with it) and lets the release of a
    never-opened browser session succeed."""
    if services.steel is not None and services.supermemory is not None:
        found: list[Callable[..., Any]] = []
        if EMAIL in families:
            email = EmailActivities(services.pool, services.email, services.objects)
            found.append(email.send_approval_email)
        if AGENT_JOBS in families:
            browser = BrowserActivities(services.pool, services.steel, services.objects)
            memory = MemoryActivities(services.pool, services.supermemory)
            found += [
                browser.open_session,
                browser.run_step,
                browser.capture_screenshot,
                browser.release_session,
                memory.recall_memories,
                memory.store_outcome_memory,
            ]
        return found
    refused: list[Callable[..., Any]] = []
    if EMAIL in families:
        refused.append(EmailActivities.send_approval_email)
    if AGENT_JOBS in families:
        refused += [
            BrowserActivities.open_session,
            BrowserActivities.run_step,
            BrowserActivities.capture_screenshot,
            MemoryActivities.recall_memories,
            MemoryActivities.store_outcome_memory,
        ]
    no_ops = [BrowserActivities.release_session.__name__] if AGENT_JOBS in families else []
    return [
        refusing_activity(
            services.agent_jobs.reason or "agent jobs are disabled on this worker",
            refused=[fn.__name__ for fn in refused],
            no_ops=no_ops,
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


class QueueWorkers:
    """The workers of one process, one per task queue it polls (``WORKER_QUEUES``), run
    together: ``async with`` starts them all and shuts them all down."""

    def __init__(
        self,
        workers: dict[str, Worker],
        *,
        beside: Callable[[], contextlib.AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self.workers = workers  # queue kind (workflows, agent-jobs, ...) → its worker
        self._beside = beside  # runs while the workers do (the state gauges)
        self._stack = contextlib.AsyncExitStack()

    @property
    def workflow_worker(self) -> Worker:
        """The worker of the workflows' own task queue."""
        return self.workers["workflows"]

    async def __aenter__(self) -> QueueWorkers:
        async with contextlib.AsyncExitStack() as stack:
            for worker in self.workers.values():
                await stack.enter_async_context(worker)
            if self._beside is not None:
                await stack.enter_async_context(self._beside())
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def build_worker(client: Client, settings: Settings, services: Services) -> QueueWorkers:
    """A worker for each task queue this process polls: the workflows' (every workflow and
    activity) and the vendor families' (their activities, with each family's options)."""
    deployment = deployment_config(settings)
    meter = client_meter(client)
    interceptors: list[Interceptor] = [LoggingInterceptor(), BusinessMetrics(meter, services.pool)]
    workers: dict[str, Worker] = {}
    for queue in settings.queues:
        if queue == "workflows":
            workers[queue] = workflow_worker(client, settings, services, interceptors, deployment)
            continue
        family = cast(Family, queue)
        options = family_worker_options(settings, family)
        if deployment is not None:
            options["deployment_config"] = deployment
        workers[queue] = Worker(
            client,
            task_queue=family_queue(settings.temporal_task_queue, family),
            activities=family_activities(services, family),
            interceptors=interceptors,
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
            **options,
        )
    gauges = None
    if "workflows" in workers:  # the state gauges, read where the workflows run
        gauges = functools.partial(collecting_gauges, meter, services.pool)
    return QueueWorkers(workers, beside=gauges)


def family_worker_options(settings: Settings, family: Family) -> dict[str, Any]:
    """A family queue's worker options: its concurrency on this worker and, for email, the
    server-enforced activity rate of the whole queue (every worker polling it together)."""
    if family == EMAIL:
        return {
            "max_concurrent_activities": settings.email_max_concurrent,
            "max_task_queue_activities_per_second": settings.email_activities_per_second,
        }
    concurrency = {
        AGENT_JOBS: settings.agent_jobs_max_concurrent,
        GENERATIONS: settings.generations_max_concurrent,
        SYNCS: settings.syncs_max_concurrent,
    }
    return {"max_concurrent_activities": concurrency[family]}


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """Worker Deployment versioning when WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID are set:
    each workflow type says whether its runs stay on the build that started them (PINNED)
    or move to the current one (AUTO_UPGRADE): ``workflows/versioned.py``."""
    version = settings.deployment_version()
    if version is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=version[0], build_id=version[1]),
        use_worker_versioning=True,
        # Every versioned type names its own; one that forgets it is pinned (the safe side).
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


def workflow_worker(
    client: Client,
    settings: Settings,
    services: Services,
    interceptors: list[Interceptor],
    deployment: WorkerDeploymentConfig | None,
) -> Worker:
    """The worker of the workflows' queue, with every workflow and activity registered;
    with the SDK patches (``WORKER_SDK_PATCHES``, :mod:`workers.sdk_internals`) where they
    apply."""
    options: dict[str, Any] = {
        "task_queue": settings.temporal_task_queue,
        # A versioned worker registers the same types with their versioning behaviors
        # (workflows/versioned.py); the server refuses behaviors from an unversioned one.
        "workflows": ALL_WORKFLOWS if deployment is None else VERSIONED_WORKFLOWS,
        "activities": all_activities(services),
        "interceptors": interceptors,
        "tuner": worker_tuner(settings),
        "max_cached_workflows": settings.worker_sticky_cache_size,
        "graceful_shutdown_timeout": timedelta(seconds=settings.worker_graceful_shutdown_seconds),
    }
    if deployment is not None:
        options["deployment_config"] = deployment
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
    """A runtime serving the SDK's metrics and ours on Prometheus (None when disabled)."""
    return _runtime(settings.metrics_bind_address, "agency-orchestrator-worker")


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
    configure_tracing("agency-orchestrator-worker")
    client = await connect_client(
        settings, runtime=telemetry_runtime(settings), plugins=client_plugins()
    )
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
            queues=list(settings.queues),
            deployment_version=".".join(settings.deployment_version() or ()) or None,
            families=[f.name for f in family_statuses(settings) if f.enabled],
        )
        await stop.wait()
        log.info("worker draining", timeout_s=settings.worker_graceful_shutdown_seconds)
    await pool.close()
    log.info("worker stopped")


def main(*, queues: str | None = None) -> None:
    """Entry point of ``orchestrator worker``; ``queues`` (``--queues``) overrides
    WORKER_QUEUES."""
    run_process(run_worker, **({} if queues is None else {"worker_queues": queues}))
