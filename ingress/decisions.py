"""Delivering a person's decision to the workflow that waits on the gate."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from temporalio.client import Client, WorkflowQueryRejectedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from db.approvals import ApprovalRow, Channel
from workflows.models.approval import (
    ApprovalDecisionInput,
    ApprovalDecisionResult,
    Decision,
    DelegationInput,
    DelegationResult,
    DeliveryProblem,
    GateState,
)

R = TypeVar("R")  # an update's result


class DecisionOutcome(BaseModel):
    """Whether the decision was applied, and the gate's status after it."""

    applied: bool
    status: str
    message: str


async def deliver_decision(
    client: Client,
    approval: ApprovalRow,
    *,
    decision: Decision,
    decided_by: str,
    channel: Channel,
    note: str | None,
    update_id: str,
) -> DecisionOutcome:
    """Send the decision as the ``decide_approval`` update; first decision wins.

    ``update_id`` names the delivery (an email id, a link click): Temporal applies an
    update id once, so a redelivered webhook changes nothing. A refused decision is
    returned, not raised; an unreachable Temporal raises so the caller can retry.
    """
    if approval.status in ("approved", "rejected") and approval.temporal_workflow_id:
        await redeliver_recorded_decision(client, approval)
    result = await _update_gate(
        client,
        approval,
        "decide_approval",
        ApprovalDecisionInput(
            approval_id=approval.id,
            decision=decision,
            decided_by=decided_by,
            channel=channel,
            note=note,
        ),
        update_id,
        ApprovalDecisionResult,
    )
    if isinstance(result, DecisionOutcome):
        return result
    message = f"approval {approval.id} {result.status}"
    if result.status == "pending" and result.quorum:
        message += f": {result.approvals} of {result.quorum} approvals"
    return DecisionOutcome(applied=True, status=result.status, message=message)


async def deliver_delegation(
    client: Client,
    approval: ApprovalRow,
    *,
    delegated_by: str,
    delegate_to: str,
    channel: Channel,
    update_id: str,
) -> DecisionOutcome:
    """Hand ``delegated_by``'s decision to ``delegate_to`` (the ``delegate_approval``
    update, applied once per ``update_id``); a refusal is returned, not raised."""
    result = await _update_gate(
        client,
        approval,
        "delegate_approval",
        DelegationInput(
            approval_id=approval.id,
            delegated_by=delegated_by,
            delegate_to=delegate_to,
            channel=channel,
        ),
        update_id,
        DelegationResult,
    )
    if isinstance(result, DecisionOutcome):
        return result
    return DecisionOutcome(
        applied=True,
        status="pending",
        message=f"approval {approval.id} delegated to {result.delegate_to}",
    )


async def _update_gate(
    client: Client,
    approval: ApprovalRow,
    update: str,
    arg: BaseModel,
    update_id: str,
    result_type: type[R],
) -> R | DecisionOutcome:
    """Send ``update`` to the gate's workflow (once per ``update_id``): its result, or why
    nothing changed (the gate not pending, no workflow, a refusal). An unreachable
    Temporal raises."""
    if approval.status != "pending":
        return DecisionOutcome(
            applied=False,
            status=approval.status,
            message=f"approval {approval.id} was already {approval.status}; nothing changed",
        )
    if not approval.temporal_workflow_id:
        return DecisionOutcome(applied=False, status="pending", message="no workflow waits on it")
    handle = client.get_workflow_handle(approval.temporal_workflow_id)
    try:
        return await handle.execute_update(update, arg, id=update_id, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        return DecisionOutcome(applied=False, status="refused", message=message)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return DecisionOutcome(
                applied=False, status="closed", message="the job is no longer running"
            )
        raise


async def redeliver_recorded_decision(client: Client, approval: ApprovalRow) -> bool:
    """Hand the workflow the decision its row records, if its gate still waits.

    The gate persists a decision inside the update's handler; if the workflow task that
    ran it fails and the update is lost (a worker crash, a server restart), the row says
    decided while the workflow still waits, and the person's redelivered reply finds the
    row decided. The recorded decision (not this delivery's) is delivered under one
    update id per approval. Returns whether it was delivered now.
    """
    if not (approval.temporal_workflow_id and approval.decided_by):
        return False
    handle = client.get_workflow_handle(approval.temporal_workflow_id)
    try:
        gates = await handle.query("approval_state", result_type=list[GateState])
        waiting = any(g.approval_id == approval.id and g.status == "pending" for g in gates)
        if not waiting:
            return False
        await handle.execute_update(
            "decide_approval",
            ApprovalDecisionInput(
                approval_id=approval.id,
                decision="approve" if approval.status == "approved" else "reject",
                decided_by=approval.decided_by,
                channel=approval.decision_channel or "ui",
                note=approval.decision_note,
            ),
            id=f"recorded-decision/{approval.id}",
            result_type=ApprovalDecisionResult,
        )
    except WorkflowUpdateFailedError:
        return False  # the gate closed or was decided meanwhile
    except (RPCError, WorkflowQueryRejectedError) as exc:
        if isinstance(exc, RPCError) and exc.status not in (
            RPCStatusCode.NOT_FOUND,
            RPCStatusCode.FAILED_PRECONDITION,
        ):
            raise
        return False  # the workflow is no longer running
    return True


async def report_delivery_problem(
    client: Client, approval: ApprovalRow, *, email: str, status: str
) -> str:
    """Tell the gate its request to ``email`` bounced or was marked as spam (it escalates);
    what happened, in words for the webhook record."""
    if not approval.temporal_workflow_id or status not in ("bounced", "complained"):
        return ""
    handle = client.get_workflow_handle(approval.temporal_workflow_id)
    try:
        await handle.signal(
            "approval_delivery_failed",
            DeliveryProblem(
                approval_id=approval.id,
                email=email,
                status="bounced" if status == "bounced" else "complained",
            ),
        )
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return "; the job is no longer running"
        raise
    return "; the gate was told"
