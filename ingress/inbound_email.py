"""Resend webhooks: replies to approval emails and delivery events.

The webhook is verified on its raw body (Svix signature, timestamp tolerance) before
anything is read; each delivery (svix-id) and each inbound email is handled once.
A reply decides only if its token verifies against the approval's recorded approver,
it comes from that approver, no receiving server reported DMARC or DKIM failing for the
sender's domain, and its first line clearly approves or rejects (``ingress/replies``);
an unclear reply gets a clarification email; everything else is logged and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import resend
import structlog
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities import approval_tokens
from activities.approval_tokens import InvalidToken, Purpose
from activities.email import APPROVAL_TAG, SEAT_TAG, call_resend, send_email
from activities.notifications import raise_event
from db import approval_teams, approvals, webhook_events
from db.approvals import ApprovalRow
from db.pool import Pool
from db.transitions import RowNotFound
from ingress import replies
from ingress.approvers import token_holder
from ingress.decisions import deliver_decision, deliver_delegation, report_delivery_problem
from workflows.models.notification import NotificationEvent

log = structlog.stdlib.get_logger(__name__)
# Resend's limit is per second: a 429 asking for this much or less is waited out inline.
INLINE_THROTTLE_WAIT = timedelta(seconds=2)


@dataclass(frozen=True)
class InboundConfig:
    """Secrets and addresses the webhook handler needs."""

    webhook_secret: str
    token_secret: str
    inbound_domain: str
    sender: str
    task_queue: str = "agency-orchestrator"  # where notification deliveries run


class WebhookRejected(Exception):
    """The request is not a valid Resend webhook; nothing was changed."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def verify_webhook(raw_body: bytes, headers: dict[str, str], secret: str) -> dict[str, Any]:
    """Check the Svix signature and timestamp with the Resend SDK; return the event."""
    svix = {k: headers.get(f"svix-{k}", "") for k in ("id", "timestamp", "signature")}
    if not all(svix.values()):
        raise WebhookRejected(401, "missing svix-id, svix-timestamp or svix-signature header")
    try:
        payload = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected(400, "body is not UTF-8") from None
    try:
        event = resend.Webhooks.verify(
            {"payload": payload, "headers": svix, "webhook_secret": secret}  # type: ignore[typeddict-item]
        )
    except ValueError as exc:
        raise WebhookRejected(401, f"webhook verification failed: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise WebhookRejected(400, "webhook body is not a Resend event")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("email_id"), str):
        raise WebhookRejected(400, "webhook event has no data.email_id")
    for field in ("to", "received_for"):
        addresses = data.get(field, [])
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            raise WebhookRejected(400, f"webhook event data.{field} is not a list of addresses")
    return dict(event)


async def handle_resend_webhook(
    pool: Pool, client: Client, config: InboundConfig, raw_body: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    """Verify and handle one delivery; returns the JSON answer (errors raise)."""
    event = verify_webhook(raw_body, headers, config.webhook_secret)
    delivery_id = headers["svix-id"]
    async with pool.connection() as conn:
        if (outcome := await webhook_events.seen(conn, "resend", delivery_id)) is not None:
            return {"duplicate": True, "outcome": outcome}
    kind, data = str(event["type"]), event["data"]
    email_id = str(data["email_id"])
    subject_id: str | None = None
    if kind == "email.received":
        subject_id, outcome = await _handle_reply(pool, client, config, email_id, data)
    elif kind in ("email.bounced", "email.complained"):
        subject_id, outcome = await _handle_delivery_problem(
            pool, client, config, email_id, data, kind.removeprefix("email.")
        )
    else:
        outcome = "ignored"
    async with pool.connection() as conn:
        await webhook_events.record(
            conn, "resend", delivery_id, event_type=kind, subject_id=subject_id, outcome=outcome
        )
    return {"outcome": outcome}


async def _tell_bounced(
    pool: Pool, client: Client, config: InboundConfig, row: ApprovalRow
) -> None:
    """Notify the job's owner that the approval request email bounced."""
    event = NotificationEvent(
        event_type="approval.bounced",
        entity_type="approval",
        entity_id=row.id,
        title=(row.description or row.action_type or "an approval")[:500],
        old_status="sent",
        new_status="bounced",
        reason="the approval request email bounced: the approver has not received it",
    )
    await raise_event(pool, client, event, task_queue=config.task_queue)


async def _handle_delivery_problem(
    pool: Pool,
    client: Client,
    config: InboundConfig,
    email_id: str,
    data: dict[str, Any],
    status: str,
) -> tuple[str | None, str]:
    """Mark the approval (and the approver's seat) the email was for, and tell its gate,
    which escalates to the next approvers."""
    tagged, seat = _tagged_approval(data), _tagged_seat(data)
    async with pool.connection() as conn:
        row = None
        if not seat:  # the approval's own approver (seat 0, or a gate from before teams)
            row = await approvals.record_delivery_event(
                conn, resend_message_id=email_id, approval_id=tagged, delivery_status=status
            )
        approver = await approval_teams.record_approver_delivery_event(
            conn,
            resend_message_id=email_id,
            approval_id=tagged,
            seat=seat,
            delivery_status=status,
        )
        if row is None and approver is not None:
            row = await approvals.get_approval(conn, approver.approval_id)
    if row is None:
        return None, "not an approval email"
    log.warning("approval email delivery problem", status=status, approval_id=str(row.id))
    address = approver.email if approver is not None else row.approver_email
    told = ""
    bounce = data.get("bounce")
    soft = isinstance(bounce, dict) and bounce.get("type") == "Transient"
    if soft:
        told = "; a soft bounce, not escalated"  # a full mailbox: Resend retries it
    elif address and row.status == "pending":
        told = await report_delivery_problem(client, row, email=address, status=status)
    if status == "bounced" and not soft:
        # Before the event is recorded as handled: if this fails, Resend redelivers it,
        # and a repeat raises nothing twice (one event per approval).
        await _tell_bounced(pool, client, config, row)
    return str(row.id), f"recorded {status}{told}"


async def _handle_reply(
    pool: Pool, client: Client, config: InboundConfig, email_id: str, data: dict[str, Any]
) -> tuple[str | None, str]:
    async with pool.connection() as conn:
        if (outcome := await webhook_events.seen(conn, "resend-email", email_id)) is not None:
            return None, f"email already handled: {outcome}"
    recipients = [str(a) for a in [*data.get("to", []), *data.get("received_for", [])]]
    token = approval_tokens.find_reply_token(recipients)
    if token is None:
        return None, "no approval address among the recipients"
    try:
        approval_id = approval_tokens.peek(token).approval_id
        async with pool.connection() as conn:
            approval = await approvals.get_approval(conn, approval_id)
        _, holder = await token_holder(
            pool,
            config.token_secret,
            token,
            approval,
            purpose=Purpose.REPLY,
            now=datetime.now(UTC),
        )
    except (InvalidToken, RowNotFound) as exc:
        log.warning("reply with an invalid approval token", reason=str(exc))
        return None, f"invalid token: {exc}"
    outcome = await _decide_from_email(pool, client, config, approval, holder, email_id, token)
    async with pool.connection() as conn:
        await webhook_events.record(
            conn,
            "resend-email",
            email_id,
            event_type="email.received",
            subject_id=str(approval.id),
            outcome=outcome,
        )
    return str(approval.id), outcome


async def _decide_from_email(
    pool: Pool,
    client: Client,
    config: InboundConfig,
    approval: approvals.ApprovalRow,
    holder: str,
    email_id: str,
    token: str,
) -> str:
    """Decide (or delegate) as ``holder``, the approver the reply address belongs to."""
    try:
        # A short 429 (the team's per-second window) is waited out here: a reply must not
        # wait for the webhook's redelivery, minutes later.
        email = await call_resend(
            lambda: resend.Emails.Receiving.get_async(email_id), wait_up_to=INLINE_THROTTLE_WAIT
        )
    except resend.exceptions.ResendError as exc:
        # Not recorded as handled: Resend redelivers, and a later attempt may find it.
        if str(exc.code) == "404":
            raise WebhookRejected(404, f"Resend has no received email {email_id}") from None
        raise WebhookRejected(503, "cannot read the reply from Resend; retry later") from None
    sender = replies.sender_address(str(email.get("from") or ""))
    # Resend's Receiving API may return null headers and null text (an HTML-only reply).
    raw_headers = email.get("headers") or {}
    headers = {str(k): str(v) for k, v in raw_headers.items() if isinstance(v, str)}
    if reason := replies.is_automatic(headers, sender):
        log.info("automatic reply dropped", approval_id=str(approval.id), reason=reason)
        return f"dropped: {reason}"
    if sender != holder:
        log.warning("reply from someone other than the approver", approval_id=str(approval.id))
        return "ignored: sender is not the approver"
    if failure := replies.sender_failure(raw_headers, replies.sender_domain(sender)):
        log.warning(
            "reply failed sender authentication", approval_id=str(approval.id), reason=failure
        )
        return f"refused: {failure}; the gate stays open"
    reading = replies.read_reply(email.get("text"), email.get("html"))
    if reading.decision == "unclear":
        # The reason may quote the reply's words: it goes to webhook_events, not the log.
        log.info("unclear reply", approval_id=str(approval.id))
        await _ask_to_clarify(config, approval, sender, token, email_id, email)
        return f"unclear ({reading.reason}): asked the approver to clarify"
    if reading.decision == "delegate":
        handed = await deliver_delegation(
            client,
            approval,
            delegated_by=sender,
            delegate_to=reading.delegate_to or "",
            channel="email",
            update_id=f"email-{email_id}",
        )
        if not handed.applied:
            await _ask_to_clarify(
                config, approval, sender, token, email_id, email, refused=handed.message
            )
        return f"{'applied' if handed.applied else 'refused'}: {handed.message}"
    decision, note = reading.decision, reading.note
    result = await deliver_decision(
        client,
        approval,
        decision=decision,
        decided_by=sender,
        channel="email",
        note=note,
        update_id=f"email-{email_id}",
    )
    return f"{'applied' if result.applied else 'refused'}: {result.message}"


async def _ask_to_clarify(
    config: InboundConfig,
    approval: approvals.ApprovalRow,
    approver: str,
    token: str,
    email_id: str,
    email: Any,
    *,
    refused: str | None = None,
) -> None:
    """Ask the approver again (an unclear reply), or say why a delegation was refused."""
    subject = str(email.get("subject") or "your approval")
    # Thread under the person's reply and the request email, by the Message-IDs their mail
    # client saw (Resend's own for the request, recorded when it was sent).
    reply_id = str(email.get("message_id") or "")
    thread = [m for m in (approval.email_message_id, reply_id) if m]
    params: dict[str, Any] = {
        "from": config.sender,
        "to": [approver],
        "subject": subject if subject.lower().startswith("re:") else f"Re: {subject}",
        "text": (
            f"I could not hand this request on: {refused}. Nothing changed; it still waits "
            "for your decision. Reply with APPROVE, REJECT or DELEGATE <colleague's address> "
            "alone on the first line."
            if refused
            else "I could not tell whether you approve or reject. Please reply with APPROVE or "
            "REJECT alone on the first line (a note may follow on the next lines)."
        ),
        "reply_to": [approval_tokens.reply_address(token, config.inbound_domain)],
    }
    if thread:
        params["headers"] = {
            "In-Reply-To": thread[-1],
            "References": " ".join(dict.fromkeys(thread)),
        }
    try:
        await send_email(params, f"approval-clarify/{email_id}", wait_up_to=INLINE_THROTTLE_WAIT)
    except (resend.exceptions.ResendError, ApplicationError) as exc:
        if isinstance(exc, ApplicationError) and exc.non_retryable:
            raise  # Resend refused the email itself: retrying cannot help
        # Throttled or unavailable, nothing recorded yet: the redelivery reads the reply
        # again and sends this (once: the idempotency key) when Resend takes it.
        raise WebhookRejected(503, "cannot ask the approver to clarify yet; retry later") from None
    log.info("asked approver to clarify", approval_id=str(approval.id))


def _tagged_seat(data: dict[str, Any]) -> int | None:
    """The approver's seat an event's email was sent to (teams, issue 27)."""
    tags = data.get("tags")
    value = tags.get(SEAT_TAG) if isinstance(tags, dict) else None
    if isinstance(value, str) and value.isdigit() and len(value) <= 3:
        return int(value)
    return None


def _tagged_approval(data: dict[str, Any]) -> UUID | None:
    """The approval an event's email was sent for, from the tag we set on it (Resend sends
    ``tags`` as an object of names to values in its email events)."""
    tags = data.get("tags")
    value = tags.get(APPROVAL_TAG) if isinstance(tags, dict) else None
    try:
        return UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None
