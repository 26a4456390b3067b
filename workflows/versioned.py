"""The workflow types as a versioned worker registers them: the same code and names, each
with its Worker Deployment versioning behavior (docs/changing-workflows.md).

They are separate classes because the server refuses a workflow task completed with a
behavior by a worker that is not versioned ("versioning behavior cannot be specified
without deployment options being set with versioned mode"): an unversioned worker
registers the plain classes, a versioned one these (``workers/worker.py``). Each only
names its behavior and runs its base's ``run``: no command differs, so histories replay
on either.

- ``AgentJob`` is PINNED: it waits at approval gates for days and ends on the build that
  started it.
- The others are AUTO_UPGRADE: they last minutes to hours, and move to the current build
  at their next task (their changes are patched and replay-tested).
"""

from __future__ import annotations

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import VersioningBehavior

from workflows.agent_job import AgentJob
from workflows.dashboard_refresh import DashboardRefresh
from workflows.generation import Generation
from workflows.generation_batch import GenerationBatch
from workflows.metric_sync import MetricSync, ScheduleReconcile
from workflows.notification_delivery import NotificationDelivery
from workflows.retention import Retention
from workflows.token_refresh import TokenRefresh

with workflow.unsafe.imports_passed_through():
    from activities.metric_schedules import ReconcileResult
    from workflows.models.agent_job import AgentJobInput, AgentJobResult
    from workflows.models.generation import GenerationInput, GenerationResult
    from workflows.models.generation_batch import GenerationBatchInput, GenerationBatchResult
    from workflows.models.housekeeping import (
        DashboardRefreshInput,
        DashboardRefreshResult,
        RetentionInput,
        RetentionResult,
        TokenRefreshInput,
        TokenRefreshResult,
    )
    from workflows.models.metric_sync import (
        MetricSyncInput,
        MetricSyncResult,
        ScheduleReconcileInput,
    )
    from workflows.models.notification import DeliveryInput, DeliveryResult

PINNED = VersioningBehavior.PINNED
AUTO_UPGRADE = VersioningBehavior.AUTO_UPGRADE
FAILS_ON = [ValidationError]  # as the plain classes: a request that does not validate


@workflow.defn(name="AgentJob", failure_exception_types=FAILS_ON, versioning_behavior=PINNED)
class VersionedAgentJob(AgentJob):
    """``AgentJob``, pinned to the build that started it."""

    @workflow.run
    async def run(self, request: AgentJobInput) -> AgentJobResult:
        """As ``AgentJob.run``."""
        return await super().run(request)


@workflow.defn(
    name="Generation", failure_exception_types=FAILS_ON, versioning_behavior=AUTO_UPGRADE
)
class VersionedGeneration(Generation):
    """``Generation``, moved to the current build at its next task."""

    @workflow.run
    async def run(self, request: GenerationInput) -> GenerationResult:
        """As ``Generation.run``."""
        return await super().run(request)


@workflow.defn(
    name="GenerationBatch", failure_exception_types=FAILS_ON, versioning_behavior=AUTO_UPGRADE
)
class VersionedGenerationBatch(GenerationBatch):
    """``GenerationBatch``, moved to the current build at its next task."""

    @workflow.run
    async def run(self, request: GenerationBatchInput) -> GenerationBatchResult:
        """As ``GenerationBatch.run``."""
        return await super().run(request)


@workflow.defn(
    name="MetricSync", failure_exception_types=FAILS_ON, versioning_behavior=AUTO_UPGRADE
)
class VersionedMetricSync(MetricSync):
    """``MetricSync``, moved to the current build at its next task."""

    @workflow.run
    async def run(self, request: MetricSyncInput) -> MetricSyncResult:
        """As ``MetricSync.run``."""
        return await super().run(request)


@workflow.defn(
    name="ScheduleReconcile", failure_exception_types=FAILS_ON, versioning_behavior=AUTO_UPGRADE
)
class VersionedScheduleReconcile(ScheduleReconcile):
    """``ScheduleReconcile``, moved to the current build at its next task."""

    @workflow.run
    async def run(self, request: ScheduleReconcileInput) -> ReconcileResult:
        """As ``ScheduleReconcile.run``."""
        return await super().run(request)


@workflow.defn(
    name="TokenRefresh", failure_exception_types=FAILS_ON, versioning_behavior=AUTO_UPGRADE
)
class VersionedTokenRefresh(TokenRefresh):
    """``TokenRefresh``, moved to the current build at its next task."""

    @workflow.run
    async def run(self, request: TokenRefreshInput) -> TokenRefreshResult:
        """As ``TokenRefresh.run``."""
        return await super().run(request)


@workflow.defn(name="Retention", failure_exception_types=FAILS_ON, versioning_behavior=AUTO_UPGRADE)
class VersionedRetention(Retention):
    """``Retention``, moved to the current build at its next task."""

    @workflow.run
    async def run(self, request: RetentionInput) -> RetentionResult:
        """As ``Retention.run``."""
        return await super().run(request)


@workflow.defn(
    name="DashboardRefresh", failure_exception_types=FAILS_ON, versioning_behavior=AUTO_UPGRADE
)
class VersionedDashboardRefresh(DashboardRefresh):
    """``DashboardRefresh``, moved to the current build at its next task."""

    @workflow.run
    async def run(self, request: DashboardRefreshInput) -> DashboardRefreshResult:
        """As ``DashboardRefresh.run``."""
        return await super().run(request)


@workflow.defn(
    name="NotificationDelivery", failure_exception_types=FAILS_ON, versioning_behavior=AUTO_UPGRADE
)
class VersionedNotificationDelivery(NotificationDelivery):
    """``NotificationDelivery``, moved to the current build at its next task."""

    @workflow.run
    async def run(self, request: DeliveryInput) -> DeliveryResult:
        """As ``NotificationDelivery.run``."""
        return await super().run(request)


VERSIONED_WORKFLOWS: list[type] = [
    VersionedAgentJob,
    VersionedGeneration,
    VersionedGenerationBatch,
    VersionedMetricSync,
    VersionedScheduleReconcile,
    VersionedTokenRefresh,
    VersionedRetention,
    VersionedDashboardRefresh,
    VersionedNotificationDelivery,
]
