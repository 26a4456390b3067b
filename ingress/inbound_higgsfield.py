"""Higgsfield webhooks: unsigned by Higgsfield, so the URL carries our token, and the
body is only a hint that makes the workflow read the status now."""

from __future__ import annotations

import hmac
import json
from uuid import UUID

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.approval_tokens import verifying_secrets
from activities.higgsfield import webhook_token
from workflows.models.generation import WebhookHint


class WebhookRefused(Exception):
    """Not a valid webhook for this generation; nothing changed."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code, self.message = status_code, message


def parse_hint(
    secret: str, generation_id: str, token: str, body: bytes
) -> tuple[UUID, WebhookHint]:
    """Check the URL token and read the request id and status from the body."""
    try:
        gid = UUID(generation_id)
    except ValueError:
        raise WebhookRefused(404, "unknown generation") from None
    expected = [webhook_token(s, gid) for s in verifying_secrets(secret)]
    if not any(hmac.compare_digest(token, e) for e in expected):
        raise WebhookRefused(403, "invalid webhook token")
    try:
        data = json.loads(body)
        hint = WebhookHint(request_id=str(data["request_id"]), status=str(data["status"]))
    except (ValueError, KeyError, TypeError):
        raise WebhookRefused(400, "body is not a Higgsfield webhook") from None
    return gid, hint


async def deliver_hint(client: Client, generation_id: UUID, hint: WebhookHint) -> str:
    """Signal the generation's workflow; a finished one needs nothing more."""
    handle = client.get_workflow_handle(f"generation-{generation_id}")
    try:
        await handle.signal("higgsfield_webhook", hint)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return "generation already finished"
        raise
    return "delivered"
