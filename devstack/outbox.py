"""`orchestrator outbox`: the local Resend emulator's outbox, for the keyless dev stack;
the messages the Slack emulator received; and a refused browser step, to see a job fail.

Replies go through the same path as real ones: the emulator posts a Svix-signed
``email.received`` webhook to the ingress.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx


def add_commands(sub: Any) -> None:
    """Add the ``outbox`` command group."""
    box = sub.add_parser("outbox", help="emails sent in `orchestrator dev` (Resend emulator)")
    box_sub = box.add_subparsers(dest="action", required=True, metavar="ACTION")
    box_sub.add_parser("list", help="sent emails, newest first").set_defaults(run=outbox_list)
    reply = box_sub.add_parser("reply", help="reply to a sent email as its recipient")
    reply.add_argument("email_id", help="a sent email's id, or 'latest'")
    reply.add_argument("text", help="the reply, e.g. APPROVE or 'REJECT not now'")
    reply.set_defaults(run=outbox_reply)
    slack = box_sub.add_parser("slack", help="messages posted to Slack (the emulator)")
    slack.set_defaults(run=outbox_slack)
    fail = box_sub.add_parser(
        "fail-next-step", help="the Steel emulator refuses the next session call (422)"
    )
    fail.set_defaults(run=outbox_fail_next_step)


def _emulators(service: str = "resend") -> str:
    from workers.cli.common import CliError
    from workers.runtime_file import apply_runtime

    apply_runtime()
    url = os.environ.get("EMULATORS_URL")
    if not url:
        raise CliError("no local outbox: start the stack with `./run demo` (orchestrator dev)")
    return f"{url}/{service}"


async def _sent(base: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base}/_emulator/sent")
    response.raise_for_status()
    emails: list[dict[str, Any]] = response.json()["sent"]
    return sorted(emails, key=lambda e: str(e["created_at"]), reverse=True)


async def outbox_list(args: argparse.Namespace) -> None:
    """Print the emails the local stack sent."""
    from workers.cli.common import emit

    emails = await _sent(_emulators())
    lines = [f"{e['id']}  to {', '.join(e['to'])}  {e['subject']}" for e in emails]
    emit(args, emails, "\n".join(lines) or "no emails sent yet")


async def outbox_reply(args: argparse.Namespace) -> None:
    """Reply to a sent email (the emulator delivers the signed webhook)."""
    from workers.cli.common import CliError, emit

    base = _emulators()
    email_id = args.email_id
    if email_id == "latest":
        emails = await _sent(base)
        if not emails:
            raise CliError("no emails sent yet")
        email_id = emails[0]["id"]
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{base}/_emulator/emails/{email_id}/reply", json={"text": args.text}
        )
    if response.status_code == 404:
        raise CliError(f"no sent email {email_id}")
    response.raise_for_status()
    emit(args, response.json(), f"replied to {email_id}")


async def outbox_slack(args: argparse.Namespace) -> None:
    """Print the messages the Slack emulator received, oldest first."""
    from workers.cli.common import emit

    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{_emulators('slack')}/_emulator/messages")
    response.raise_for_status()
    messages: list[dict[str, Any]] = response.json()["messages"]
    lines = [f"{m['channel']}  {m['text']}" for m in messages]
    emit(args, messages, "\n".join(lines) or "no Slack messages yet")


async def outbox_fail_next_step(args: argparse.Namespace) -> None:
    """Make the Steel emulator refuse the next call on a session (its live details or a
    browser action), as Steel refuses a bad one: the job fails."""
    from workers.cli.common import emit

    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{_emulators('steel')}/_emulator/faults",
            json={"fail_next": 1, "status": 422, "path_prefix": "/v1/sessions/"},
        )
    response.raise_for_status()
    emit(args, response.json(), "the next Steel session call will be refused")
