"""Housekeeping schedules, mirrored from the tables like the metric-sync ones.

- ``token-refresh-connection-<id>``: daily, per Meta connection whose token expires;
- ``token-refresh-threads-<id>``: daily, per Threads account (seed 003);
- ``retention-<task queue>``: the deployment's one daily retention run;
- ``dashboard-refresh-<view>``: per active ``dashboard_refreshes`` row whose materialized
  view exists, every ``every_minutes``.

``reconcile_housekeeping`` creates the missing ones, updates changed ones, pauses those
whose holder is inactive or whose credentials failed for good (and resumes them after a
reconnect), and deletes the ones nothing calls for any more. Every schedule skips a run
while the previous one is still going (``SKIP``), carries a summary and a note for the
Temporal UI, and its task queue in the memo (deployments sharing a namespace leave each
other's alone). Workflows are named by their registered names, not imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from activities.metric_schedules import (
    Change,
    ReconcileResult,
    converge,
    delete_schedule_id,
    listed_schedules,
    revoked_note,
)
from db import dashboards, metrics, retention, tokens
from db.dashboards import DashboardRow
from db.metrics import ConnectionRow
from db.pool import Pool
from db.tokens import ThreadsAccountRow
from workflows.models.housekeeping import (
    DashboardRefreshInput,
    Holder,
    RetentionInput,
    TokenRefreshInput,
)
from workflows.search_attributes import CONNECTION_ID, PLATFORM

# The registered names of the workflows (workflows/token_refresh.py, retention.py, ...).
TOKEN_REFRESH_WORKFLOW = "TokenRefresh"  # noqa: S105 - a workflow name
RETENTION_WORKFLOW = "Retention"
DASHBOARD_REFRESH_WORKFLOW = "DashboardRefresh"
TOKEN_PREFIX = "token-refresh-"  # noqa: S105 - a schedule id prefix
DASHBOARD_PREFIX = "dashboard-refresh-"
RETENTION_PREFIX = "retention-"
KIND_MEMO = "housekeeping"  # memo key naming the kind of a housekeeping schedule
TOKEN_CHECK_EVERY = timedelta(days=1)
TOKEN_JITTER = timedelta(hours=1)  # spread the daily checks of many accounts
TOKEN_TIMEOUT = timedelta(hours=1)
RETENTION_EVERY = timedelta(days=1)
RETENTION_TIMEOUT = timedelta(hours=20)  # a stuck run must not block SKIP forever
DASHBOARD_TIMEOUT = timedelta(hours=2)


class HousekeepingResult(ReconcileResult):
    """Which housekeeping schedules changed (by schedule id), and what was left out."""

    notes: list[str] = []  # e.g. a configured view that does not exist


@dataclass(frozen=True)
class Desired:
    """A schedule reconcile wants, with what it is stamped with. ``follows_pause``: its
    paused state is the row's (token refresh), not the operator's (retention, dashboards)."""

    id: str
    schedule: Schedule
    kind: str
    follows_pause: bool = False
    search_attributes: TypedSearchAttributes = field(
        default_factory=lambda: TypedSearchAttributes([])
    )


def token_schedule_id(holder: Holder, holder_id: object) -> str:
    """``token-refresh-connection-<id>`` / ``token-refresh-threads-<id>``."""
    return f"{TOKEN_PREFIX}{holder}-{holder_id}"


def dashboard_schedule_id(view_name: str) -> str:
    """``dashboard-refresh-<view>``."""
    return f"{DASHBOARD_PREFIX}{view_name}"


def _attributes(holder_id: UUID, platform: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(CONNECTION_ID, str(holder_id)),
            SearchAttributePair(PLATFORM, platform),
        ]
    )


def _desired(
    sid: str,
    kind: str,
    workflow: str,
    arg: object,
    task_queue: str,
    *,
    timeout: timedelta,
    summary: str,
    details: str,
    every: timedelta,
    note: str,
    jitter: timedelta | None = None,
    paused: bool = False,
    attributes: TypedSearchAttributes | None = None,
) -> Desired:
    """A housekeeping schedule: its workflow with ``arg`` every ``every`` (a run still
    going makes the next a skip), with a summary and details for the UI and a note."""
    attributes = attributes or TypedSearchAttributes([])
    return Desired(
        id=sid,
        kind=kind,
        search_attributes=attributes,
        follows_pause=kind == "token-refresh",
        schedule=Schedule(
            action=ScheduleActionStartWorkflow(
                workflow,
                arg,
                id=sid,
                task_queue=task_queue,
                execution_timeout=timeout,
                typed_search_attributes=attributes,
                static_summary=summary[:200],
                static_details=details,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)], jitter=jitter),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=every),
            state=ScheduleState(note=note[:1000], paused=paused),
        ),
    )


def _token_schedule(
    holder: Holder,
    holder_id: UUID,
    label: str,
    platform: str,
    task_queue: str,
    *,
    paused_note: str | None,
) -> Desired:
    what = "exchanges the Meta token again" if holder == "connection" else "refreshes the token"
    return _desired(
        token_schedule_id(holder, holder_id),
        "token-refresh",
        TOKEN_REFRESH_WORKFLOW,
        TokenRefreshInput(holder=holder, holder_id=holder_id),
        task_queue,
        timeout=TOKEN_TIMEOUT,
        summary=f"Token refresh · {label}",
        details=(
            f"Checks daily whether the long-lived token of {label} expires within a week "
            f"and, if so, {what}. A refresh that fails for good pauses the account's "
            "schedules and emails its owner."
        ),
        every=TOKEN_CHECK_EVERY,
        jitter=TOKEN_JITTER,
        note=paused_note
        or (
            f"Keeps the token of {label} fresh. Managed by `orchestrator schedules "
            "reconcile`: edit the account's row, not this schedule."
        ),
        paused=paused_note is not None,
        attributes=_attributes(holder_id, platform),
    )


def connection_token_schedule(row: ConnectionRow, task_queue: str) -> Desired | None:
    """The token-refresh schedule of a connection: Meta tokens that expire only."""
    if row.platform != "meta" or row.token_expires_at is None:
        return None
    note = None
    if row.credentials_status == "revoked":
        note = revoked_note(row.label, row.credentials_error)
    elif not row.is_active:
        note = f"Paused: {row.label} is inactive (platform_connections.is_active = false)."
    return _token_schedule("connection", row.id, row.label, "meta", task_queue, paused_note=note)


def threads_token_schedule(row: ThreadsAccountRow, task_queue: str) -> Desired:
    """The token-refresh schedule of a Threads account."""
    note = None
    if row.credentials_status == "revoked":
        note = revoked_note(row.label, row.credentials_error)
    elif row.is_active is False:
        note = f"Paused: {row.label} is inactive (threads_accounts.is_active = false)."
    return _token_schedule("threads", row.id, row.label, "threads", task_queue, paused_note=note)


def retention_schedule_id(task_queue: str) -> str:
    """``retention-<task queue>``: one per deployment (several may share a namespace)."""
    return f"{RETENTION_PREFIX}{task_queue}"


def retention_schedule(task_queue: str) -> Desired:
    """The daily retention run."""
    return _desired(
        retention_schedule_id(task_queue),
        "retention",
        RETENTION_WORKFLOW,
        RetentionInput(),
        task_queue,
        timeout=RETENTION_TIMEOUT,
        summary="Retention: archive and delete old rows",
        details=(
            "Archives and deletes what retention_policies says (activity log, "
            "notifications, transition log, webhook deliveries, screenshots of finished "
            "jobs) in small batches; stamps last_archived_at / last_purged_at."
        ),
        every=RETENTION_EVERY,
        note=(
            "Daily. Edit retention_policies (days per kind), not this schedule. Managed by "
            "`orchestrator schedules reconcile`."
        ),
    )


def dashboard_schedule(row: DashboardRow, task_queue: str) -> Desired:
    """The refresh schedule of a configured materialized view."""
    return _desired(
        dashboard_schedule_id(row.view_name),
        "dashboard-refresh",
        DASHBOARD_REFRESH_WORKFLOW,
        DashboardRefreshInput(view_name=row.view_name),
        task_queue,
        timeout=DASHBOARD_TIMEOUT,
        summary=f"Dashboard refresh · {row.view_name}",
        details=(
            f"REFRESH MATERIALIZED VIEW (CONCURRENTLY when it has a unique index) "
            f"{row.view_name}, every {row.every_minutes} min; a run still going makes the "
            "next one a skip."
        ),
        every=timedelta(minutes=row.every_minutes),
        note=(
            f"Refreshes {row.view_name} every {row.every_minutes} min (replaces seed 002's "
            "pg_cron job). Edit dashboard_refreshes, not this schedule."
        ),
    )


async def desired_schedules(pool: Pool, task_queue: str) -> tuple[list[Desired], list[str]]:
    """Every housekeeping schedule the tables call for, and notes on what they leave out."""
    async with pool.connection() as conn:
        connections = await metrics.list_connections(conn)
        accounts = await tokens.list_threads_accounts(conn)
        views = await dashboards.list_dashboards(conn)
        policies = await retention.policies(conn)
    wanted = [retention_schedule(task_queue)] if policies else []
    wanted += [d for r in connections if (d := connection_token_schedule(r, task_queue))]
    wanted += [threads_token_schedule(a, task_queue) for a in accounts]
    notes = []
    for view in views:
        if not view.is_active:
            continue
        if not view.present:
            notes.append(f"dashboard_refreshes names {view.view_name}: no such materialized view")
            continue
        wanted.append(dashboard_schedule(view, task_queue))
    return wanted, notes


async def apply_schedule(client: Client, desired: Desired, task_queue: str) -> Change:
    """Create the schedule, or update it to match (the metric syncs' converge sequence)."""
    return await converge(
        client,
        desired.id,
        desired.schedule,
        memo={"task_queue": task_queue, KIND_MEMO: desired.kind},
        search_attributes=desired.search_attributes,
        follows_pause=desired.follows_pause,
    )


def _ours(schedule_id: str) -> bool:
    return schedule_id.startswith((RETENTION_PREFIX, TOKEN_PREFIX, DASHBOARD_PREFIX))


async def reconcile_housekeeping(client: Client, pool: Pool, task_queue: str) -> HousekeepingResult:
    """Create, update, pause and delete this task queue's housekeeping schedules."""
    wanted, notes = await desired_schedules(pool, task_queue)
    result = HousekeepingResult(notes=notes)
    for desired in wanted:
        change = await apply_schedule(client, desired, task_queue)
        if change == "unchanged":
            result.unchanged += 1
        else:
            getattr(result, change).append(desired.id)
    keep = {d.id for d in wanted}
    # Listing is eventually consistent: an orphan created moments ago waits for the next run.
    async for listed, memo in listed_schedules(client, task_queue, ""):
        if not _ours(listed) or listed in keep or KIND_MEMO not in memo:
            continue  # not a housekeeping schedule, or still called for
        if await delete_schedule_id(client, listed):
            result.deleted.append(listed)
    return result


async def reconcile_holder(
    client: Client, pool: Pool, task_queue: str, holder: Holder, holder_id: UUID
) -> Change | None:
    """Reconcile one holder's token-refresh schedule now (after a reconnect); None if it
    calls for none."""
    async with pool.connection() as conn:
        if holder == "connection":
            desired = connection_token_schedule(
                await metrics.get_connection(conn, holder_id), task_queue
            )
        else:
            desired = threads_token_schedule(
                await tokens.get_threads_account(conn, holder_id), task_queue
            )
    if desired is None:
        return None
    return await apply_schedule(client, desired, task_queue)


class HousekeepingReconcileInput(BaseModel):
    """The task queue whose housekeeping schedules are reconciled."""

    task_queue: str


class HousekeepingScheduleActivities:
    """Keeps the housekeeping schedules in step with the tables."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    @activity.defn
    async def reconcile_housekeeping_schedules(
        self, request: HousekeepingReconcileInput
    ) -> HousekeepingResult:
        """Create, update, pause and delete housekeeping schedules to match the tables."""
        return await reconcile_housekeeping(activity.client(), self.pool, request.task_queue)
