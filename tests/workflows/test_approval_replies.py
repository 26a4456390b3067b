"""Approval gates decided by email reply: real Resend webhooks (signed by the emulator)
through the ingress into the waiting workflow."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from devstack.emulators.resend import sign_svix
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.replies.samples import german, gmail, gmail_html, outlook, outlook_html
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_row, last_delivery, reply, waiting_job
from tests.workflows.jobs_fixtures import DELETE_STEP, SAFE_STEPS

STEPS = [SAFE_STEPS[0], DELETE_STEP, SAFE_STEPS[2]]


async def test_reply_with_approve_resumes_job(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        email = "alice@example.com"
        request, handle, sent = await waiting_job(stack, STEPS, email)

        async def recorded() -> dict | None:  # Resend's id is stored just after the send
            row = await approval_row(stack, request.job_id)
            return row if row["resend_message_id"] else None

        pending = await eventually(recorded, what="the email's id on the approval")
        assert pending["status"] == "pending" and pending["resend_message_id"] == sent["id"]
        job = await stack.fetchrow("SELECT status FROM jobs WHERE id = %s", request.job_id)
        assert job == {"status": "waiting_approval"}
        # The email says what, where, until when, and how to answer.
        assert "Delete 'Old Specs'" in sent["subject"] and "Notion" in sent["subject"]
        assert "APPROVE or REJECT" in sent["text"] and "Decide by" in sent["text"]
        assert sent["reply_to"][0].startswith("approval+")
        assert sent["attachments"][0]["content_id"] == "screenshot"

        await reply(stack, sent["id"], "Approve")
        result = await handle.result()
        assert result.status == "completed"
        await record_history(handle, "agent_job_approved_by_reply")
        row = await approval_row(stack, request.job_id)
        assert row["status"] == "approved"
        assert row["decided_by"] == email and row["decision_channel"] == "email"
        assert row["decided_at"] is not None
        assert stack.emulators.resend.sends_by_idempotency_key() == {
            f"approval-request/{row['id']}": 1
        }


async def test_reply_with_reject_and_note_stops_job(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "bob@example.com")
        await reply(stack, sent["id"], "REJECT\nWe still need those specs.")
        result = await handle.result()
        assert result.status == "cancelled"
        assert "rejected by bob@example.com" in (result.reason or "")
        await record_history(handle, "agent_job_rejected_by_reply")
        row = await approval_row(stack, request.job_id)
        assert row["status"] == "rejected"
        assert row["decision_note"] == "We still need those specs."
        job = await stack.fetchrow(
            "SELECT status, error_message FROM jobs WHERE id = %s", request.job_id
        )
        assert job is not None and job["status"] == "cancelled"
        assert "We still need those specs." in job["error_message"]
        steel = stack.emulators.steel
        assert len(steel.released_ids()) == 1


async def test_quoted_original_with_both_words_reads_only_the_reply(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "carol@example.com")
        # The emulator quotes the original ("... APPROVE or REJECT ...") under the reply:
        # only the reply's own lines may become the decision and its note.
        await reply(stack, sent["id"], "yes, go ahead")
        assert (await handle.result()).status == "completed"
        row = await approval_row(stack, request.job_id)
        assert row["decision_note"] == "go ahead"


async def test_ambiguous_reply_asks_to_clarify_and_keeps_the_gate_open(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "dan@example.com")
        await reply(stack, sent["id"], "approve? no, reject... not sure")
        clarify = await eventually(
            lambda: [
                e
                for e in stack.emulators.resend.sent_emails()
                if (e.get("idempotency_key") or "").startswith("approval-clarify/")
            ],
            what="clarification email",
        )
        assert clarify[0]["to"] == ["dan@example.com"]
        assert clarify[0]["reply_to"] == sent["reply_to"]
        assert (await approval_row(stack, request.job_id))["status"] == "pending"
        await reply(stack, sent["id"], "approve")
        assert (await handle.result()).status == "completed"


async def test_auto_reply_changes_nothing(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "erin@example.com")
        await reply(stack, sent["id"], "Approve", headers={"Auto-Submitted": "auto-replied"})
        assert last_delivery(stack)["status"] == 200
        await reply(stack, sent["id"], "Yes", headers={"Precedence": "auto_reply"})
        assert (await approval_row(stack, request.job_id))["status"] == "pending"
        await handle.cancel()


async def test_reply_from_someone_else_changes_nothing(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "frank@example.com")
        await reply(stack, sent["id"], "Approve", from_addr="mallory@example.com")
        assert last_delivery(stack)["status"] == 200
        assert (await approval_row(stack, request.job_id))["status"] == "pending"
        await handle.cancel()


async def test_forged_signature_and_stale_timestamp_are_refused(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "gina@example.com")
        forged = "whsec_" + "Zm9yZ2VkLXNlY3JldC1rZXktMTIzNDU2"
        await reply(stack, sent["id"], "Approve", sign_with=forged)
        assert last_delivery(stack)["status"] == 401
        await reply(stack, sent["id"], "Approve", timestamp=int(time.time()) - 3600)
        assert last_delivery(stack)["status"] == 401
        async with httpx.AsyncClient() as http:
            unsigned = await http.post(f"{stack.ingress_url}/webhooks/resend", json={"x": 1})
            assert unsigned.status_code == 401
        assert (await approval_row(stack, request.job_id))["status"] == "pending"
        events = await stack.fetchall("SELECT * FROM webhook_events")
        assert events == []
        await handle.cancel()


async def test_replayed_delivery_changes_nothing(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "hank@example.com")
        # Capture a genuine delivery by sending it ourselves with the real secret.
        reply_id = await asyncio.to_thread(
            stack.emulators.resend.deliver_inbound,
            "hank@example.com",
            sent["reply_to"],
            "Re: approval",
            "Reject",
        )
        secret = stack.settings.resend_webhook_secret.get_secret_value()  # type: ignore[union-attr]
        body = json.dumps(
            {
                "type": "email.received",
                "created_at": "2026-01-01T00:00:00Z",
                "data": {"email_id": reply_id, "to": sent["reply_to"], "from": "hank@example.com"},
            }
        )
        svix_id = "msg_replayed"
        ts = int(time.time())
        headers = {
            "svix-id": svix_id,
            "svix-timestamp": str(ts),
            "svix-signature": sign_svix(secret, svix_id, ts, body),
            "content-type": "application/json",
        }
        async with httpx.AsyncClient() as http:
            url = f"{stack.ingress_url}/webhooks/resend"
            first = await http.post(url, content=body, headers=headers)
            second = await http.post(url, content=body, headers=headers)
        assert first.status_code == second.status_code == 200
        assert second.json()["duplicate"] is True
        assert (await handle.result()).status == "cancelled"
        row = await approval_row(stack, request.job_id)
        transitions = await stack.fetchall(
            "SELECT to_status FROM status_transitions WHERE entity_id = %s", row["id"]
        )
        assert [t["to_status"] for t in transitions] == ["pending", "rejected"]


async def test_tampered_or_foreign_token_changes_nothing(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "ivy@example.com")
        address = sent["reply_to"][0]
        local, domain = address.split("@")
        token = local.removeprefix("approval+")
        tampered = token[:-2] + ("aa" if not token.endswith("aa") else "bb")
        for bad in (f"approval+{tampered}@{domain}", f"approval+{'a' * 53}@{domain}"):
            await asyncio.to_thread(
                stack.emulators.resend.deliver_inbound, "ivy@example.com", [bad], "Re", "Approve"
            )
            assert last_delivery(stack)["status"] == 200
        # A genuine token of another approval (another job) cannot decide this one.
        other_request, other_handle, other_sent = await waiting_job(
            stack, STEPS, "ivy2@example.com"
        )
        await asyncio.to_thread(
            stack.emulators.resend.deliver_inbound,
            "ivy@example.com",
            other_sent["reply_to"],
            "Re",
            "Approve",
        )
        assert (await approval_row(stack, request.job_id))["status"] == "pending"
        assert (await approval_row(stack, other_request.job_id))["status"] == "pending"
        await handle.cancel()
        await other_handle.cancel()


async def test_second_decision_is_refused_first_wins(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "jack@example.com")
        await reply(stack, sent["id"], "approve")
        await reply(stack, sent["id"], "reject")
        assert last_delivery(stack)["status"] == 200
        assert (await handle.result()).status == "completed"
        row = await approval_row(stack, request.job_id)
        assert row["status"] == "approved"
        outcomes = await stack.fetchall(
            "SELECT outcome FROM webhook_events WHERE provider = 'resend' ORDER BY received_at"
        )
        assert outcomes[0]["outcome"].startswith("applied")
        assert "already approved" in outcomes[1]["outcome"]


def clarifications(stack: Stack, to: str) -> list[dict[str, Any]]:
    """The clarification emails the emulator sent to ``to``."""
    return [
        e
        for e in stack.emulators.resend.sent_emails()
        if to in e["to"] and (e.get("idempotency_key") or "").startswith("approval-clarify/")
    ]


async def reply_outcome(stack: Stack, reply_id: str) -> str:
    """What the ingress recorded for a received reply (waits for it)."""

    async def find() -> str | None:
        row = await stack.fetchrow(
            "SELECT outcome FROM webhook_events WHERE provider = 'resend-email' AND event_id = %s",
            reply_id,
        )
        return row["outcome"] if row else None

    return await eventually(find, what=f"outcome of reply {reply_id}")


@dataclass(frozen=True)
class EndToEnd:
    """A reply sent through the emulator, and what the gate and the outbox show after it."""

    name: str
    text: str | None
    status: str  # of the approvals row afterwards
    outcome: str  # a part of webhook_events.outcome
    note: str | None = None
    html: str | None = None
    headers: dict[str, str] | None = None
    clarified: bool = False


DMARC_FAIL = (
    "mx.resend.net; spf=pass; dkim=pass header.d=mailer.example.net; "
    "dmarc=fail (p=reject) header.from=example.com"
)
END_TO_END = [
    EndToEnd("do not approve", gmail("Do not approve"), "pending", "unclear", clarified=True),
    EndToEnd("not approved, sorry", "Not approved, sorry", "pending", "unclear", clarified=True),
    EndToEnd("html-only approve", None, "approved", "applied", html=gmail_html("Approve")),
    EndToEnd(
        "outlook-quoted reject",
        outlook("Reject\r\nWrong folder."),
        "rejected",
        "applied",
        note="Wrong folder.",
    ),
    EndToEnd(
        "dmarc-fail approve",
        gmail("Approve"),
        "pending",
        "refused: DMARC fail for example.com",
        headers={"Authentication-Results": DMARC_FAIL},
    ),
    EndToEnd(
        "german-quoted approve", german("Approve\nDanke!"), "approved", "applied", note="Danke!"
    ),
    EndToEnd(
        "full-width approve",
        "\uff21\uff30\uff30\uff32\uff2f\uff36\uff25",
        "pending",
        "unclear",
        clarified=True,
    ),
    EndToEnd("html-only outlook no", None, "rejected", "applied", html=outlook_html("No")),
]


async def test_replies_through_resend_decide_only_what_was_clearly_said(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        resend_emulator = stack.emulators.resend
        waiting = []
        for index, case in enumerate(END_TO_END):
            email = f"e2e-{index}-{uuid.uuid4().hex[:6]}@example.com"
            waiting.append((case, email, *(await waiting_job(stack, STEPS, email))))
        for case, email, request, handle, sent in waiting:
            reply_id = await asyncio.to_thread(
                resend_emulator.reply_to_email,
                sent["id"],
                case.text,
                headers=case.headers,
                html=case.html,
                quote=False,  # the samples quote the original the way their client does
            )
            assert case.outcome in await reply_outcome(stack, reply_id), case.name
            if case.status != "pending":
                await handle.result()
            row = await approval_row(stack, request.job_id)
            assert (row["status"], row["decision_note"]) == (case.status, case.note), case.name
            asked = clarifications(stack, email)
            assert len(asked) == int(case.clarified), case.name
            if case.status == "pending":
                await handle.cancel()
        # Nothing was refused or retried on the way: one request email per job.
        keys = resend_emulator.sends_by_idempotency_key()
        assert sum(1 for k in keys if k.startswith("approval-request/")) == len(END_TO_END)


async def test_emails_thread_on_the_message_id_resend_gave_them(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        request, handle, sent = await waiting_job(stack, STEPS, "kim@example.com")
        row = await eventually(
            lambda: approval_row_with_message_id(stack, request.job_id), what="message id"
        )
        # Resend's Message-ID, not one we made up: ours would be replaced on the way out.
        assert row["email_message_id"] == sent["message_id"]
        assert "message-id" not in {k.lower() for k in sent["requested_headers"]}
        job = await stack.fetchrow(
            "SELECT last_resend_thread_id FROM jobs WHERE id = %s", request.job_id
        )
        assert job == {"last_resend_thread_id": sent["message_id"]}

        reply_id = await reply(stack, sent["id"], "Approve?")
        reply_message_id = next(
            e["message_id"] for e in stack.emulators.resend.received_emails() if e["id"] == reply_id
        )
        [clarify] = await eventually(
            lambda: clarifications(stack, "kim@example.com"), what="clarification"
        )
        assert clarify["headers"]["In-Reply-To"] == reply_message_id
        assert clarify["headers"]["References"] == f"{sent['message_id']} {reply_message_id}"
        # Answering the clarification (same reply address) decides the gate.
        await reply(stack, clarify["id"], "Approve")
        assert (await handle.result()).status == "completed"


async def approval_row_with_message_id(stack: Stack, job_id: object) -> dict[str, Any] | None:
    row = await approval_row(stack, job_id)
    return row if row["email_message_id"] else None


async def test_failing_to_read_the_message_id_sends_no_second_email(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        # GET /emails/{id} fails once after the send: the retried activity sends again with
        # the same idempotency key, gets the same email back, and records Resend's id.
        stack.emulators.resend.faults.fail_next(1, status=503, path_prefix="/emails/")
        request, handle, sent = await waiting_job(stack, STEPS, "lee@example.com")
        row = await eventually(
            lambda: approval_row_with_message_id(stack, request.job_id), what="message id"
        )
        assert stack.emulators.resend.faults.injected_count() == 1
        assert row["email_message_id"] == sent["message_id"]
        assert row["resend_message_id"] == sent["id"]
        assert len(stack.emulators.resend.sent_emails()) == 1
        await handle.cancel()
