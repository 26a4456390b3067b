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
    Delegate,
    VoteView,
)
from ingress.api.pipeline import Pipeline
from ingress.decisions import DecisionOutcome, deliver_decision, deliver_delegation


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

    async def _voter(self, caller: Caller, approval_id: UUID) -> str | None:
        """Who the caller votes as: the address the approval asked them at (the owner's
        profile address for a gate without a route), else their Supabase Auth address."""
        seat = await app_api.seat_email(self.pool, approval_id, caller.user_id)
        return seat or await app_api.user_email(self.pool, caller.user_id)

    async def approval(self, caller: Caller, approval_id: UUID) -> ApprovalView:
        row = await self._approval_row(caller, approval_id)
        votes = await app_api.approval_votes(self.pool, row.id)
        view = ApprovalView.model_validate(row, from_attributes=True)
        view.votes = [VoteView.model_validate(v) for v in votes]
        return view

    async def delegate(
        self, caller: Caller, key: str, body: Delegate, params: dict[str, Any]
    ) -> tuple[int, Any]:
        """Hand the caller's seat on an approval to a colleague (channel ``app``)."""
        approval = await self._approval_row(caller, params["id"])
        email = await self._voter(caller, approval.id)
        update_id = f"app-{approval.id}-{idempotency.derived_id(caller.user_id, key, 'delegate')}"
        try:
            outcome: DecisionOutcome = await deliver_delegation(
                self.deps.client,
                approval,
                delegated_by=email or f"user {caller.user_id}",
                delegate_to=body.delegate_to,
                channel="app",
                update_id=update_id,
            )
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise ApiError(503, "temporarily_unavailable", "Temporal is busy; retry") from None
        if not outcome.applied:
            raise ApiError(409, "delegation_refused", outcome.message)
        return 200, (await self.approval(caller, approval.id)).model_dump(mode="json")

    async def decide(
        self, caller: Caller, key: str, body: Decide, params: dict[str, Any]
    ) -> tuple[int, Any]:
        approval = await self._approval_row(caller, params["id"])
        email = await self._voter(caller, approval.id)
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
