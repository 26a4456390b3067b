"""Approval gates: pause a workflow before a risky action until a person decides.

``ApprovalGate`` is the deterministic part any workflow embeds: persist the pending
approval (and the job's waiting status), send the request email, wait with a reminder
and a deadline, and return the outcome. ``ApprovalGateHost`` gives a workflow the
handlers through which decisions arrive (an update with a validator for the webhook,
the CLI and the Temporal UI; a signal for UIs that only send signals; a query).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from workflows.ending import failure_reason, out_of_time
from workflows.notify import NOTIFIES, notify
from workflows.task_queues import EMAIL, activity_queue

with workflow.unsafe.imports_passed_through():
    from activities.approvals import (
        ApprovalActivities,
        ApproverSeat,
        CloseApprovalInput,
        DelegateInput,
        EscalateInput,
        OpenApprovalInput,
        OpenTeamApprovalInput,
        RecordDecisionInput,
        VoteInput,
    )
    from activities.email import ApprovalEmailInput, EmailActivities
    from workflows.models.approval import (
        ApprovalDecisionInput,
        ApprovalDecisionResult,
        ApprovalPolicy,
        ApprovalRequest,
        DelegationInput,
        DelegationResult,
        DeliveryProblem,
        GateOutcome,
        GateState,
    )
    from workflows.models.notification import NotificationEvent
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
# workflow.patched id: closing a gate whose row already holds a decision keeps that
# decision (its update was accepted and persisted, then lost with a failed workflow task
# before it reached the history). Older runs failed the close on the decided row.
GATE_KEEPS_RECORDED_DECISION = "gate-keeps-recorded-decision"
# workflow.patched id (issue 27): the gate's approvers come from the organization (route
# by action type, quorum, escalation, delegation); each approver votes with their own
# links and reply address. Older runs ask the one approver on the row, as before.
APPROVAL_TEAMS = "approval-teams"
# Who may decide outright, whatever the quorum: an operator in the Temporal UI or the CLI.
OPERATOR_CHANNELS = frozenset({"ui", "cli"})


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
        # Team gates (APPROVAL_TEAMS): who is asked (by address, with their seat), who
        # handed their seat on, the votes so far, the quorum and the escalations.
        self.teams = False
        self.seats: dict[str, int] = {}
        self.withdrawn: set[str] = set()
        self.votes: dict[str, bool] = {}  # voter -> approved
        self.quorum = 1
        self.escalations = 0
        self.undelivered: list[DeliveryProblem] = []  # bounces not yet escalated
        self.reported: set[str] = set()  # approvers whose email bounced
        self.delegating: set[str] = set()
        self.on_change: Callable[[], None] = lambda: None

    def state(self) -> GateState:
        """The gate's state for queries and current details."""
        status = self.outcome.status if self.outcome else "pending"
        return GateState(
            approval_id=self.approval_id,
            description=self.request.description,
            opened_at=self.opened_at,
            expires_at=self.expires_at,
            status=status,
            approvals=self.approvals(),
            quorum=self.quorum,
            approvers=self.voters(),
            escalations=self.escalations,
        )

    def approvals(self) -> int:
        """Distinct approvals so far."""
        return sum(1 for approved in self.votes.values() if approved)

    def voters(self) -> list[str]:
        """Who may vote now: asked, not withdrawn, not voted yet."""
        return [
            email for email in self.seats if email not in self.withdrawn and email not in self.votes
        ]

    def refuse_reason(self, decision: ApprovalDecisionInput) -> str | None:
        """Why ``decision`` cannot be applied now, or None if it can."""
        if self.outcome is not None:
            return f"approval {self.approval_id} was already {self.outcome.status}"
        if self.deciding:
            return f"approval {self.approval_id} is being decided by another request"
        if self.closed or workflow.now() >= self.expires_at:
            return f"approval {self.approval_id} has expired or was cancelled"
        if self.teams and decision.channel not in OPERATOR_CHANNELS:
            voter = decision.decided_by.strip().lower()
            if voter in self.votes:
                return f"{voter} has already voted on approval {self.approval_id}"
            if voter not in self.seats or voter in self.withdrawn:
                return f"{voter} is not an approver of approval {self.approval_id}"
            if voter in self.delegating:
                return f"{voter} is handing approval {self.approval_id} to someone else"
        return None

    def refuse_delegation(self, request: DelegationInput) -> str | None:
        """Why ``request`` cannot be applied now, or None if it can."""
        if not self.teams:
            return f"approval {self.approval_id} cannot be delegated (it predates teams)"
        if self.outcome is not None or self.deciding:
            return f"approval {self.approval_id} is already decided"
        if self.closed or workflow.now() >= self.expires_at:
            return f"approval {self.approval_id} has expired or was cancelled"
        by, to = request.delegated_by.strip().lower(), request.delegate_to.strip().lower()
        if by not in self.seats or by in self.withdrawn:
            return f"{by} is not an approver of approval {self.approval_id}"
        if by in self.votes:
            return f"{by} has already voted on approval {self.approval_id}"
        if by in self.delegating:
            return f"{by} is already handing approval {self.approval_id} on"
        if to == by:
            return "an approver cannot delegate to themselves"
        if to in self.seats:
            return f"{to} is already asked to decide approval {self.approval_id}"
        return None

    async def run(self) -> GateOutcome:
        """Persist, notify, wait for a decision, a reminder, the deadline or cancellation."""
        if workflow.patched(APPROVAL_TEAMS):
            self.teams = True
            return await self._run_for_team()
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
            if self.outcome is not None and self.outcome.status in ("approved", "rejected"):
                return self._decided()  # decided before it failed: the decision stands
            raise GateFailed(f"approval of '{self.request.description}' {status}: {why}") from None

    async def _run_for_team(self) -> GateOutcome:
        """The gate of an organization: resolve its approvers, ask each of them, then wait
        for the quorum or a reject, escalating on a bounce and after ``escalate_after``."""
        plan = await workflow.execute_local_activity_method(
            ApprovalActivities.open_team_approval,
            OpenTeamApprovalInput(
                approval_id=self.approval_id,
                job_id=self.request.job_id,
                action_type=self.request.action_type,
                description=self.request.description,
                screenshot_blob_id=self.request.screenshot_blob_id,
                approver_email=self.policy.approver_email,
                expires_at=self.expires_at,
                step_index=self.request.step_index,
                escalate_after=self.policy.escalate_after,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"open approval gate: {self.request.action_type}",
        )
        self.quorum = plan.quorum
        self.seats = {seat.email: seat.seat for seat in plan.approvers}
        self.on_change()
        try:
            if not plan.approvers:
                raise ApplicationError(
                    f"no approver: nobody may decide '{self.request.action_type}' (set the "
                    "owner's email address, or give a member a role the route names)",
                    type="NoApprover",
                )
            await self._ask(plan.approvers, everyone_may_fail=False)
            return await self._wait_for_team(plan.escalate_after)
        except asyncio.CancelledError:
            if self.outcome is None:
                await self._close("cancelled", "the workflow was cancelled")
            raise
        except Exception as failure:
            if is_cancelled_exception(failure):  # cancelled while an email was being sent
                if self.outcome is None:
                    await self._close("cancelled", "the workflow was cancelled")
                raise
            if self.deciding or self.outcome is not None:
                await workflow.wait_condition(lambda: self.outcome is not None)
                return self._decided()
            status, why = _why_closed(failure)
            await self._close(status, why, resume_job=False)
            if self.outcome is not None and self.outcome.status in ("approved", "rejected"):
                return self._decided()  # decided before it failed: the decision stands
            raise GateFailed(f"approval of '{self.request.description}' {status}: {why}") from None

    async def _ask(self, seats: list[ApproverSeat], *, everyone_may_fail: bool) -> None:
        """Send the request to each of ``seats``. One that cannot be reached is escalated
        like a bounce; if none of the first approvers can be, the gate fails."""
        failures: list[tuple[ApproverSeat, ActivityError]] = []
        for seat in seats:
            try:
                await self._send("request", seat.seat)
            except ActivityError as refused:
                if is_cancelled_exception(refused):
                    raise
                failures.append((seat, refused))
        if failures and len(failures) == len(seats) and not everyone_may_fail:
            raise failures[0][1]
        for seat, why in failures:
            workflow.logger.warning(
                "approval request not sent",
                extra={"approval_id": str(self.approval_id), "reason": failure_reason(why)},
            )
            self.reported.add(seat.email)
            self.undelivered.append(
                DeliveryProblem(approval_id=self.approval_id, email=seat.email, status="bounced")
            )

    async def _wait_for_team(self, escalate_after: timedelta | None) -> GateOutcome:
        policy = self.policy
        reminder_at = (
            self.opened_at + policy.reminder_after
            if policy.reminder_after < policy.expires_after
            else None
        )
        next_escalation = self.opened_at + escalate_after if escalate_after else None
        while True:
            wake, what = self.expires_at, "approval deadline"
            if reminder_at is not None and reminder_at < wake:
                wake, what = reminder_at, "reminder"
            if next_escalation is not None and next_escalation < wake:
                wake, what = next_escalation, "escalation"
            if await self._wait_until(wake, what):
                return self._decided()
            if self.undelivered:
                problem = self.undelivered.pop(0)
                cause: Literal["bounced", "complained"] = problem.status
                await self._escalate(cause, f"the request to {problem.email} {problem.status}")
                continue
            now = workflow.now()
            if now >= self.expires_at:
                await self._close("expired", "no decision by the deadline")
                return self._decided()
            if reminder_at is not None and now >= reminder_at:
                reminder_at = None
                await self._remind_voters()
            elif next_escalation is not None and escalate_after and now >= next_escalation:
                hours = escalate_after.total_seconds() / 3600
                asked = await self._escalate("no_decision", f"no decision after {hours:g} h")
                next_escalation = next_escalation + escalate_after if asked else None

    async def _wait_until(self, wake: datetime, what: str) -> bool:
        """Wait for a decision, a delivery problem or ``wake``; True once decided."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self.outcome is not None or bool(self.undelivered),
                timeout=max(wake - workflow.now(), timedelta(seconds=1)),
                timeout_summary=what,
            )
        if self.deciding:  # a decision is being persisted: let it finish
            await workflow.wait_condition(lambda: self.outcome is not None)
        return self.outcome is not None

    async def _escalate(
        self, cause: Literal["bounced", "complained", "no_decision"], why: str
    ) -> bool:
        """Ask the next approvers (backups, then admins); the escalation is recorded by the
        activity. True if anyone new was asked."""
        self.escalations += 1
        record = await workflow.execute_local_activity_method(
            ApprovalActivities.escalate_approval,
            EscalateInput(
                approval_id=self.approval_id, number=self.escalations, cause=cause, reason=why
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"escalate approval ({cause})",
        )
        for seat in record.asked:
            self.seats[seat.email] = seat.seat
        self.on_change()
        if record.asked:
            await self._ask(record.asked, everyone_may_fail=True)
        if workflow.patched(NOTIFIES):  # the owner hears of each escalation, once
            asked = f"asked {len(record.asked)} more" if record.asked else "nobody else to ask"
            await notify(
                NotificationEvent(
                    event_type="approval.escalated",
                    entity_type="approval",
                    entity_id=self.approval_id,
                    title=self.request.description[:500],
                    old_status="pending",
                    new_status="escalated",
                    reason=f"{why}; {asked}"[:2000],
                    occurrence=str(record.number),
                )
            )
        return bool(record.asked)

    async def _remind_voters(self) -> None:
        """Remind everyone who may still vote; a reminder that cannot be sent is logged."""
        for email in self.voters():
            try:
                await self._send("reminder", self.seats[email])
            except ActivityError as failure:
                if is_cancelled_exception(failure):
                    raise
                workflow.logger.warning(
                    "approval reminder not sent",
                    extra={"approval_id": str(self.approval_id), "reason": failure_reason(failure)},
                )

    async def delegate(self, request: DelegationInput) -> DelegationResult:
        """Hand the delegator's seat to the colleague they named, and ask them."""
        by, to = request.delegated_by.strip().lower(), request.delegate_to.strip().lower()
        self.delegating.add(by)
        try:
            record = await workflow.execute_local_activity_method(
                ApprovalActivities.delegate_approval,
                DelegateInput(approval_id=self.approval_id, delegated_by=by, delegate_to=to),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
                summary=f"delegate approval ({request.channel})",
            )
        finally:
            self.delegating.discard(by)
        if record.seat is None:
            raise ApplicationError(record.refused or "delegation refused", type="DelegationRefused")
        self.withdrawn.add(by)
        self.seats[record.seat.email] = record.seat.seat
        self.on_change()
        if self.outcome is None and not self.closed and not self.deciding:
            await self._ask([record.seat], everyone_may_fail=True)
        return DelegationResult(
            approval_id=self.approval_id, delegate_to=record.seat.email, seat=record.seat.seat
        )

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

    async def _send(self, kind: Literal["request", "reminder"], seat: int | None = None) -> None:
        left = max(self.expires_at - workflow.now(), EMAIL_MIN_WINDOW)
        await workflow.execute_activity_method(
            EmailActivities.send_approval_email,
            ApprovalEmailInput(approval_id=self.approval_id, kind=kind, seat=seat),
            start_to_close_timeout=EMAIL_TIMEOUT,
            schedule_to_close_timeout=min(EMAIL_DEADLINE, left),
            retry_policy=EMAIL_RETRY,
            summary=f"email approval {kind}",
            task_queue=activity_queue(EMAIL),
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
        keep = workflow.patched(GATE_KEEPS_RECORDED_DECISION)
        record = await workflow.execute_local_activity_method(
            ApprovalActivities.close_approval,
            CloseApprovalInput(
                approval_id=self.approval_id,
                status=status,
                resume_job=resume_job and status == "expired",
                reason=reason,
                keep_recorded_decision=keep,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"approval {status}",
        )
        if record.status in ("approved", "rejected"):  # only returned when `keep`
            self.outcome = GateOutcome(
                approval_id=self.approval_id,
                status="approved" if record.status == "approved" else "rejected",
                decided_by=record.decided_by,
                note=record.note,
            )
            return
        self.outcome = GateOutcome(approval_id=self.approval_id, status=status)

    async def vote(self, decision: ApprovalDecisionInput) -> ApprovalDecisionResult:
        """Keep an approver's vote; a reject, the quorum's last approval or an operator's
        decision decides the gate."""
        voter = decision.decided_by.strip().lower()
        approved = decision.decision == "approve"
        self.votes[voter] = approved
        approvals = self.approvals()
        final = decision.channel in OPERATOR_CHANNELS or not approved or approvals >= self.quorum
        if final:
            self.deciding = True
        record = await workflow.execute_local_activity_method(
            ApprovalActivities.record_approval_vote,
            VoteInput(
                approval_id=self.approval_id,
                voter=voter,
                approved=approved,
                channel=decision.channel,
                note=decision.note,
                final=final,
            ),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=f"record {decision.decision} vote ({decision.channel})",
        )
        if final:
            self.outcome = GateOutcome(
                approval_id=self.approval_id,
                status="approved" if approved else "rejected",
                decided_by=decision.decided_by,
                note=decision.note,
            )
        self.on_change()
        return ApprovalDecisionResult(
            approval_id=record.approval_id,
            status=record.status,
            decided_at=record.decided_at,
            approvals=approvals,
            quorum=self.quorum,
        )

    async def decide(self, decision: ApprovalDecisionInput) -> ApprovalDecisionResult:
        """Persist an accepted decision and release the waiting workflow."""
        if self.teams:
            return await self.vote(decision)
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

    def _gate_changed(self) -> None:
        """A gate's approvers or votes changed (a workflow shows it in its details)."""

    def open_gate_state(self) -> GateState | None:
        """The state of the gate waiting for a decision, if any."""
        for gate in reversed(self._gates.values()):
            if gate.outcome is None and not gate.closed:
                return gate.state()
        return None

    async def open_gate(self, request: ApprovalRequest, policy: ApprovalPolicy) -> GateOutcome:
        """Open a gate and wait for its outcome."""
        gate = ApprovalGate(workflow.uuid4(), request, policy)
        gate.on_change = self._gate_changed
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

    @workflow.update(
        name="delegate_approval",
        description="An approver hands their decision to a colleague of the organization; "
        "refused if they may not, or the gate is decided or expired.",
    )
    async def delegate_approval(self, request: DelegationInput) -> DelegationResult:
        """Hand an approver's seat on."""
        gate = self._gates[request.approval_id]
        if reason := gate.refuse_delegation(request):
            raise ApplicationError(reason, type="DelegationRefused")
        return await gate.delegate(request)

    @delegate_approval.validator
    def _validate_delegation(self, request: DelegationInput) -> None:
        gate = self._gates.get(request.approval_id)
        if gate is None:
            raise ApplicationError(
                f"approval {request.approval_id} is not open in this workflow",
                type="DelegationRefused",
            )
        if reason := gate.refuse_delegation(request):
            raise ApplicationError(reason, type="DelegationRefused")

    @workflow.signal(
        name="approval_delivery_failed",
        description="A request email bounced or was marked as spam: the gate escalates to "
        "the next approvers (sent by the Resend webhook).",
    )
    def approval_delivery_failed(self, problem: DeliveryProblem) -> None:
        """Queue an escalation for the first delivery problem of each approver."""
        gate = self._gates.get(problem.approval_id)
        email = problem.email.strip().lower()
        if gate is None or not gate.teams or gate.outcome is not None or gate.closed:
            return
        if email not in gate.seats or email in gate.reported:
            return
        gate.reported.add(email)
        gate.undelivered.append(problem.model_copy(update={"email": email}))

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
