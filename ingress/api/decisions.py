"""Approvals: read one and decide it in the app (channel ``app``), as its job's owner or
its named approver."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from db import app_api
from db.approvals import ApprovalRow
from ingress.api import idempotency
from ingress.api.auth import Caller
from ingress.api.errors import ApiError
from ingress.api.models import (
    ApprovalView,
    Decide,
)
from ingress.api.pipeline import Pipeline
from ingress.decisions import deliver_decision


class ApprovalHandlers(Pipeline):
    """The handlers of ``/v1/approvals``."""

    async def _approval_row(self, caller: Caller, approval_id: UUID) -> ApprovalRow:
        """The approval if the caller owns its job or is its approver."""
        async with app_api.as_user(self.pool, caller.claims) as conn:
            row = await app_api.get_approval(conn, approval_id)
        if row is None:
            row = await app_api.approval_for_approver(self.pool, approval_id, caller.user_id)
        if row is None:
            raise ApiError(404, "not_found", f"no approval {approval_id} of yours")
        return row

    async def approval(self, caller: Caller, approval_id: UUID) -> ApprovalView:
        row = await self._approval_row(caller, approval_id)
        return ApprovalView.model_validate(row, from_attributes=True)

    async def decide(
        self, caller: Caller, key: str, body: Decide, params: dict[str, Any]
    ) -> tuple[int, Any]:
        approval = await self._approval_row(caller, params["id"])
        email = await app_api.user_email(self.pool, caller.user_id)
        update_id = f"app-{approval.id}-{idempotency.derived_id(caller.user_id, key, 'decide')}"
        try:
            outcome = await deliver_decision(
                self.deps.client,
                approval,
                decision=body.decision,
                decided_by=email or f"user {caller.user_id}",
                channel="app",
                note=body.note,
                update_id=update_id,
            )
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise ApiError(503, "temporarily_unavailable", "Temporal is busy; retry") from None
        if not outcome.applied:
            raise ApiError(409, "decision_refused", outcome.message)
        return 200, (await self.approval(caller, approval.id)).model_dump(mode="json")
