"""The page a person decides on: the link in an approval email.

GET shows what will happen (the action, its description, the screenshot, the platform,
the job, who it is for, when the gate expires) with the choice and an optional note;
it never decides. POST decides: the signed token in the URL is what makes the request
genuine (a page elsewhere cannot know it), and its purpose is the decision, so each
button posts to the link of its own decision. An expired, forged or already decided gate
is said plainly. The screenshot is served under the same token, never from a public path.
The page works on a small screen and with a keyboard (native controls, visible focus) and
needs no script.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from string import Template
from urllib.parse import parse_qs
from uuid import UUID

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from activities import approval_tokens
from activities.approval_tokens import ApprovalToken, InvalidToken, Purpose
from activities.object_store import ObjectStore
from activities.screenshots import read_screenshot
from db import approvals
from db.approvals import DecisionContext
from db.pool import Pool
from db.transitions import RowNotFound
from ingress.approvers import token_holder
from ingress.decisions import deliver_decision
from workflows.models.approval import Decision

_PAGE = Template(resources.files("ingress").joinpath("templates/decision.html").read_text())
_HEADERS = {
    # The token is in the URL: no referrer leaves the page, nothing is cached or framed.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
_LINKS = {Purpose.APPROVE_LINK: "approve", Purpose.REJECT_LINK: "reject"}
e = html.escape


@dataclass
class DecisionPageDeps:
    """What the page needs: the rows, Temporal (to decide) and the token secret."""

    pool: Pool
    client: Client
    token_secret: str
    objects: ObjectStore | None = None  # where screenshots are when not in Postgres


class _Refused(Exception):
    """Answer with this page instead."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def decision_routes(deps: DecisionPageDeps) -> list[Route]:
    """The page (GET shows, POST decides) and its screenshot."""
    page = _DecisionPage(deps)
    return [
        Route("/approvals/{token:str}", page.page, methods=["GET", "POST"]),
        Route("/approvals/{token:str}/screenshot", page.screenshot, methods=["GET"]),
    ]


class _DecisionPage:
    def __init__(self, deps: DecisionPageDeps) -> None:
        self.deps = deps

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            gate, content, holder = await self._open(token)
        except _Refused as refused:
            return _render(refused.title, _message(refused.title, refused.message), refused.status)
        decision: Decision = "approve" if content.purpose is Purpose.APPROVE_LINK else "reject"
        if not _open_for_decision(gate):
            return _render("Nothing to decide", _closed(gate), 409)
        if request.method == "GET":
            other = self._sign(
                gate, content, holder, "reject" if decision == "approve" else "approve"
            )
            return _render(_title(gate), _decision_form(gate, token, decision, other), 200)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        note = (form.get("note") or [""])[0].strip()[:2000] or None
        # One delivery per approver and decision (the gate's own approver keeps the id
        # gates from before teams used).
        who = "" if holder == (gate.approver_email or "").lower() else f"{_digest(holder)}-"
        try:
            outcome = await deliver_decision(
                self.deps.client,
                gate,
                decision=decision,
                decided_by=holder,
                channel="link",
                note=note,
                update_id=f"link-{gate.id}-{who}{decision}",
            )
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
            body = _message("Try again", "The service is busy; nothing was decided. Try again.")
            return _render("Try again", body, 503)
        if not outcome.applied:
            return _render("Nothing changed", _message("Nothing changed", outcome.message), 409)
        decided = await self._context(gate.id) or gate
        return _render(_done_title(decided), _outcome(decided), 200)

    async def screenshot(self, request: Request) -> Response:
        try:
            gate, _, _ = await self._open(request.path_params["token"])
        except _Refused as refused:
            return Response(status_code=refused.status, headers=_HEADERS)
        url = str(gate.screenshot_url or "")
        try:
            if not url.startswith("blob:"):
                raise RowNotFound("blobs", url)
            async with self.deps.pool.connection() as conn:
                content_type, data = await read_screenshot(
                    conn, self.deps.objects, UUID(url.removeprefix("blob:"))
                )
        except (RowNotFound, LookupError, ValueError):
            return Response(status_code=404, headers=_HEADERS)
        if not content_type.startswith("image/"):
            return Response(status_code=404, headers=_HEADERS)
        headers = _HEADERS | {"Cache-Control": "private, no-store"}
        return Response(data, media_type=content_type, headers=headers)

    async def _context(self, approval_id: UUID) -> DecisionContext | None:
        async with self.deps.pool.connection() as conn:
            return await approvals.decision_context(conn, approval_id)

    async def _open(self, token: str) -> tuple[DecisionContext, ApprovalToken, str]:
        """The gate a genuine link names and the approver it was made for; ``_Refused``
        for a forged or expired link."""
        invalid = _Refused(
            403,
            "Link not valid",
            "This link is not valid. Use the link in the most recent email about this request.",
        )
        try:
            content = approval_tokens.peek(token)
        except InvalidToken:
            raise invalid from None
        if content.purpose not in _LINKS:
            raise invalid
        gate = await self._context(content.approval_id)
        if gate is None:
            raise invalid
        now = datetime.now(UTC)
        try:  # its signature first (at a moment it was valid), then its age
            _, holder = await token_holder(
                self.deps.pool,
                self.deps.token_secret,
                token,
                gate,
                purpose=content.purpose,
                now=min(now, content.expires_at - timedelta(seconds=1)),
            )
        except InvalidToken:
            raise invalid from None
        if now >= content.expires_at:
            raise _Refused(
                403,
                "Link expired",
                f"This link expired on {_when(content.expires_at)}. Nothing was decided.",
            )
        return gate, content, holder

    def _sign(
        self, gate: DecisionContext, content: ApprovalToken, holder: str, decision: str
    ) -> str:
        purpose = Purpose.APPROVE_LINK if decision == "approve" else Purpose.REJECT_LINK
        return approval_tokens.sign(
            self.deps.token_secret, gate.id, holder, purpose, content.expires_at
        )


def _digest(address: str) -> str:
    """A short stable name for an approver in an update id (no address in history ids)."""
    return hashlib.sha256(address.encode()).hexdigest()[:16]


def _open_for_decision(gate: DecisionContext) -> bool:
    expires = gate.expires_at
    return gate.status == "pending" and (expires is None or datetime.now(UTC) < expires)


def _what(gate: DecisionContext) -> str:
    return str(gate.description or gate.action_type or "an action")


def _title(gate: DecisionContext) -> str:
    return f"Approve or reject: {_what(gate)}"


def _details(gate: DecisionContext) -> str:
    owner = gate.owner_name or "a user"
    if gate.owner_email:
        owner += f" ({gate.owner_email})"
    rows = [
        ("Action", gate.action_type or "—"),
        ("Platform", gate.platform or "—"),
        ("Job", gate.job_title or "—"),
        ("Asked by", f"the assistant working for {owner}"),
        ("Asked on", _when(gate.created_at)),
    ]
    if gate.expires_at is not None and gate.status == "pending":
        rows.append(("Decide by", f"{_when(gate.expires_at)} ({_until(gate.expires_at)})"))
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    return f"<dl>{items}</dl>"


def _screenshot(gate: DecisionContext, token: str) -> str:
    if not str(gate.screenshot_url or "").startswith("blob:"):
        return "<p class='note'>No screenshot was taken for this step.</p>"
    return (
        f"<figure><img src='{e(token)}/screenshot' width='640' height='400' "
        f"alt='The page in the browser before: {e(_what(gate))}'>"
        "<figcaption>The page as the assistant sees it now.</figcaption></figure>"
    )


def _decision_form(gate: DecisionContext, token: str, decision: str, other: str) -> str:
    button = "<button type='submit' class='{0}' formaction='{{}}'>Confirm: {0}</button>"
    buttons = {choice: button.format(choice) for choice in ("approve", "reject")}
    chosen = buttons[decision].format(e(token))
    alternative = buttons["reject" if decision == "approve" else "approve"].format(e(other))
    consequence = (
        "If you approve, the assistant does it now. If you reject, it is not done."
        if decision == "approve"
        else "If you reject, the assistant does not do it. If you approve, it does it now."
    )
    return (
        f"<h1>{e(_what(gate))}</h1>"
        f"<p class='lead'>Your assistant asks before it does this. {consequence}</p>"
        f"<p><span class='state'>Waiting for your decision</span></p>"
        f"{_details(gate)}{_screenshot(gate, token)}"
        f"<form method='post' action='{e(token)}'>"
        "<label for='note'>Note (optional)</label>"
        "<textarea id='note' name='note' maxlength='2000' "
        "placeholder='Why, or what to do instead'></textarea>"
        f"<div class='choices'>{chosen}{alternative}</div></form>"
        "<p class='note'>Nothing is decided until you press a button. The first decision "
        "counts; a later one (a reply, another link) changes nothing.</p>"
    )


def _closed(gate: DecisionContext) -> str:
    status = gate.status
    if status in ("approved", "rejected"):
        how = f" by {gate.decided_by}" if gate.decided_by else ""
        via = f" (by {gate.decision_channel})" if gate.decision_channel else ""
        when = f" on {_when(gate.decided_at)}" if gate.decided_at else ""
        text = f"This request was already {status}{how}{when}{via}. Nothing changed."
    elif status == "cancelled":
        text = "The job was cancelled, so there is nothing to decide. Nothing changed."
    else:
        text = f"This request expired on {_when(gate.expires_at)}. Nothing was done."
    return (
        f"<h1>{e(_what(gate))}</h1><p class='outcome' role='status'>{e(text)}</p>{_details(gate)}"
    )


def _done_title(gate: DecisionContext) -> str:
    return "Approved" if gate.status == "approved" else "Rejected"


def _outcome(gate: DecisionContext) -> str:
    approved = gate.status == "approved"
    text = (
        f"Approved. The assistant will now: {_what(gate)}."
        if approved
        else f"Rejected. The assistant will not: {_what(gate)}."
    )
    note = f"<p>Your note: {e(gate.decision_note)}</p>" if gate.decision_note else ""
    when = _when(gate.decided_at) if gate.decided_at else "just now"
    return (
        f"<h1>{e(_done_title(gate))}</h1>"
        f"<p class='outcome' role='status'>{e(text)}</p>"
        f"<p>Your decision was recorded: {e(gate.status)}, {e(when)}.</p>{note}"
        f"{_details(gate)}<p class='note'>You can close this page.</p>"
    )


def _message(title: str, message: str) -> str:
    return f"<h1>{e(title)}</h1><p class='outcome' role='status'>{e(message)}</p>"


def _render(title: str, body: str, status: int) -> HTMLResponse:
    return HTMLResponse(_PAGE.substitute(title=e(title), body=body), status, headers=_HEADERS)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%a %d %b %Y, %H:%M UTC")


def _until(moment: datetime) -> str:
    left = moment - datetime.now(UTC)
    if left <= timedelta(0):
        return "passed"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count = int(left.total_seconds() // size)
        if count >= 1:
            return f"in {count} {unit}{'s' if count > 1 else ''}"
    return "in less than a minute"
