"""Approval gates: pause a workflow before a risky action until a person decides.

``ApprovalGate`` is the deterministic part any workflow embeds: persist the pending
approval (and the job's waiting status), send the request email, wait with a reminder
and a deadline, and return the outcome. ``ApprovalGateHost`` gives a workflow the
handlers through which decisions arrive (an update with a validator for the webhook,
the CLI and the Temporal UI; a signal for UIs that only send signals; a query).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from workflows.ending import failure_reason, out_of_time

with workflow.unsafe.imports_passed_through():
    from activities.approvals import (
        ApprovalActivities,
        CloseApprovalInput,
        OpenApprovalInput,
        RecordDecisionInput,
    )
    from activities.email import ApprovalEmailInput, EmailActivities
    from workflows.models.approval import (
        ApprovalDecisionInput,
        ApprovalDecisionResult,
        ApprovalPolicy,
        ApprovalRequest,
        GateOutcome,
        GateState,
    )
    from workflows.policies import DB_RETRY, DB_TIMEOUT

EMAIL_TIMEOUT = timedelta(seconds=30)
EMAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=30)
# Retries of an email end by this, and never after the gate's own deadline.
EMAIL_DEADLINE = timedelta(hours=6)  # Resend keeps idempotency keys for 24 h
EMAIL_MIN_WINDOW = timedelta(minutes=1)
# workflow.patched id: a gate that cannot run to a decision closes its row with the
# reason and raises GateFailed; a reminder that cannot be sent is logged, not fatal.
# Older runs let the exception through and left the row pending.
GATE_CLOSES_ON_FAILURE = "gate-closes-on-failure"


class GateFailed(Exception):
    """A gate closed without a decision because it could not run (its row says why)."""


class ApprovalGate:
    """One open gate inside a workflow."""

    def __init__(self, approval_id: UUID, request: ApprovalRequest, policy: ApprovalPolicy) -> None:
        self.approval_id = approval_id
        self.request = request
        self.policy = policy
        self.opened_at = workflow.now()
        self.expires_at = self.opened_at + policy.expires_after
        self.deciding = False  # a decision is being persisted: no other may start
        self.closed = False  # expired or cancelled: decisions are refused
        self.outcome: GateOutcome | None = None

    def state(self) -> GateState:
        """The gate's state for queries and current details."""
        status = self.outcome.status if self.outcome else "pending"
        return GateState(
            approval_id=self.approval_id,
            description=self.request.description,
            opened_at=self.opened_at,
            expires_at=self.expires_at,
            status=status,
        )

    def refuse_reason(self, decision: ApprovalDecisionInput) -> str | None:
        """Why ``decision`` cannot be applied now, or None if it can."""
        if self.outcome is not None:
            return f"approval {self.approval_id} was already {self.outcome.status}"
        if self.deciding:
            return f"approval {self.approval_id} is being decided by another request"
        if self.closed or workflow.now() >= self.expires_at:
            return f"approval {self.approval_id} has expired or was cancelled"
        return None

    async def run(self) -> GateOutcome:
        """Persist, notify, wait for a decision, a reminder, the deadline or cancellation."""
        await workflow.execute_local_activity_method(
            ApprovalActivities.open_approval,
            OpenApprovalInput(
                approval_id=self.approval_id,
                job_id=self.request.job_id,
                action_type=self.request.action_type,
                description=self.request.description,
                screenshot_blob_id=self.request.screenshot_blob_id,
                approver_email=self.policy.approver_email,
                expires_at=self.expires_at,
                step_index=self.request.step_index,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"open approval gate: {self.request.action_type}",
        )
        try:
            await self._send("request")
            reminder_at = min(self.policy.reminder_after, self.policy.expires_after)
            if not await self._wait_for_decision(reminder_at, "reminder"):
                if self.policy.reminder_after < self.policy.expires_after:
                    await self._remind()
                    remaining = self.expires_at - workflow.now()
                    if await self._wait_for_decision(remaining, "approval deadline"):
                        return self._decided()
                await self._close("expired", "no decision by the deadline")
            return self._decided()
        except asyncio.CancelledError:
            if self.outcome is None:
                await self._close("cancelled", "the workflow was cancelled")
            raise
        except Exception as failure:
            if not workflow.patched(GATE_CLOSES_ON_FAILURE):
                raise
            if is_cancelled_exception(failure):  # cancelled while an email was being sent
                if self.outcome is None:
                    await self._close("cancelled", "the workflow was cancelled")
                raise
            if self.deciding or self.outcome is not None:
                # A decision came in (UI, CLI) before the failure: it stands.
                await workflow.wait_condition(lambda: self.outcome is not None)
                return self._decided()
            status, why = _why_closed(failure)
            await self._close(status, why, resume_job=False)
            raise GateFailed(f"approval of '{self.request.description}' {status}: {why}") from None

    def _decided(self) -> GateOutcome:
        assert self.outcome is not None
        return self.outcome

    async def _wait_for_decision(self, wait_for: timedelta, what: str) -> bool:
        try:
            await workflow.wait_condition(
                lambda: self.outcome is not None,
                timeout=max(wait_for, timedelta(seconds=1)),
                timeout_summary=what,
            )
        except TimeoutError:
            if self.deciding:  # a decision arrived at the deadline: let it finish
                await workflow.wait_condition(lambda: self.outcome is not None)
                return True
            return False
        return True

    async def _send(self, kind: Literal["request", "reminder"]) -> None:
        left = max(self.expires_at - workflow.now(), EMAIL_MIN_WINDOW)
        await workflow.execute_activity_method(
            EmailActivities.send_approval_email,
            ApprovalEmailInput(approval_id=self.approval_id, kind=kind),
            start_to_close_timeout=EMAIL_TIMEOUT,
            schedule_to_close_timeout=min(EMAIL_DEADLINE, left),
            retry_policy=EMAIL_RETRY,
            summary=f"email approval {kind}",
        )

    async def _remind(self) -> None:
        """The reminder is a courtesy: the request went out, so the gate waits on without it."""
        try:
            await self._send("reminder")
        except ActivityError as failure:
            if not workflow.patched(GATE_CLOSES_ON_FAILURE):
                raise
            workflow.logger.warning(
                "approval reminder not sent",
                extra={"approval_id": str(self.approval_id), "reason": failure_reason(failure)},
            )

    async def _close(
        self, status: Literal["expired", "cancelled"], reason: str, *, resume_job: bool = True
    ) -> None:
        self.closed = True
        await workflow.execute_local_activity_method(
            ApprovalActivities.close_approval,
            CloseApprovalInput(
                approval_id=self.approval_id,
                status=status,
                resume_job=resume_job and status == "expired",
                reason=reason,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"approval {status}",
        )
        self.outcome = GateOutcome(approval_id=self.approval_id, status=status)

    async def decide(self, decision: ApprovalDecisionInput) -> ApprovalDecisionResult:
        """Persist an accepted decision and release the waiting workflow."""
        self.deciding = True
        record = await workflow.execute_local_activity_method(
            ApprovalActivities.record_approval_decision,
            RecordDecisionInput(
                approval_id=decision.approval_id,
                approved=decision.decision == "approve",
                decided_by=decision.decided_by,
                channel=decision.channel,
                note=decision.note,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"record {decision.decision} ({decision.channel})",
        )
        self.outcome = GateOutcome(
            approval_id=self.approval_id,
            status="approved" if decision.decision == "approve" else "rejected",
            decided_by=decision.decided_by,
            note=decision.note,
        )
        return ApprovalDecisionResult(
            approval_id=record.approval_id, status=record.status, decided_at=record.decided_at
        )


class ApprovalGateHost:
    """Mix into a workflow class that opens gates: decision handlers and a state query."""

    _gates: dict[UUID, ApprovalGate]

    def _init_gates(self) -> None:
        self._gates = {}

    async def open_gate(self, request: ApprovalRequest, policy: ApprovalPolicy) -> GateOutcome:
        """Open a gate and wait for its outcome."""
        gate = ApprovalGate(workflow.uuid4(), request, policy)
        self._gates[gate.approval_id] = gate
        return await gate.run()

    @workflow.update(
        name="decide_approval",
        description="Approve or reject an open approval gate; refused if already decided, "
        "expired or unknown.",
    )
    async def decide_approval(self, decision: ApprovalDecisionInput) -> ApprovalDecisionResult:
        """Apply the first decision on a gate."""
        gate = self._gates[decision.approval_id]
        if reason := gate.refuse_reason(decision):  # a duplicate admitted in the same task
            raise ApplicationError(reason, type="DecisionRefused")
        return await gate.decide(decision)

    @decide_approval.validator
    def _validate_decision(self, decision: ApprovalDecisionInput) -> None:
        gate = self._gates.get(decision.approval_id)
        if gate is None:
            raise ApplicationError(
                f"approval {decision.approval_id} is not open in this workflow",
                type="DecisionRefused",
            )
        if reason := gate.refuse_reason(decision):
            raise ApplicationError(reason, type="DecisionRefused")

    @workflow.signal(
        name="decide_approval_signal",
        description="Same as the decide_approval update, for clients that can only signal; "
        "a refused decision is logged and ignored.",
    )
    async def decide_approval_signal(self, decision: ApprovalDecisionInput) -> None:
        """Apply a decision sent as a signal, if it is valid."""
        gate = self._gates.get(decision.approval_id)
        reason = gate.refuse_reason(decision) if gate else "not open in this workflow"
        if gate is None or reason:
            workflow.logger.warning(
                "decision signal refused",
                extra={"approval_id": str(decision.approval_id), "reason": reason},
            )
            return
        await gate.decide(decision)

    @workflow.query(
        name="approval_state", description="The gates of this workflow and their state."
    )
    def approval_state(self) -> list[GateState]:
        """Every gate opened so far, the open one last."""
        return [gate.state() for gate in self._gates.values()]


def _why_closed(failure: Exception) -> tuple[Literal["expired", "cancelled"], str]:
    """How a gate that failed ends, and why, in words for the row and the job."""
    if isinstance(failure, ActivityError):
        if out_of_time(failure):
            return "expired", "the approval email could not be sent before its deadline"
        return "cancelled", f"the approval request could not be sent: {failure_reason(failure)}"
    return "cancelled", f"the approval gate failed: {failure}"
