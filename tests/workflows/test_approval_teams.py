"""Approvals decided by a team (issue 27): approvers resolved from the organization by
role and action type, a quorum of distinct approvers where a reject by anyone entitled
rejects, escalation on a bounce, delegation by reply, and each approver's links and reply
address bound to them alone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities import approval_tokens
from activities.approval_tokens import Purpose
from activities.notifications import store_channel
from tests.encryption import TEST_KEYRING
from tests.harness import Stack, running_stack
from tests.history_recording import record_history
from tests.waiting import eventually
from tests.workflows.approval_helpers import approval_email, approval_row, reply
from tests.workflows.team_helpers import (
    DELETE_STEP,
    links,
    make_agency,
    requests_to,
    set_route,
    tag,
    team_job,
)
from workers.keys import Keyring, Use
from workflows.models.approval import (
    ApprovalDecisionInput,
    DelegationInput,
    DelegationResult,
)


async def _state(handle: Any) -> dict[str, Any]:
    states = await eventually(lambda: handle.query("approval_state"), what="gate state")
    return dict(states[-1])


async def _votes(stack: Stack, approval_id: Any) -> list[tuple[str, str, str]]:
    found = await stack.fetchall(
        "SELECT voter, decision, channel FROM approval_votes WHERE approval_id = %s "
        "ORDER BY voted_at, id",
        approval_id,
    )
    return [(r["voter"], r["decision"], r["channel"]) for r in found]


async def _post(url: str) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.post(url)).status_code


async def test_payment_goes_to_managers_and_admins_and_not_to_members(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    t = tag()
    ann, max_, mia = f"ann-{t}@agency.test", f"max-{t}@agency.test", f"mia-{t}@agency.test"
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        agency = await make_agency(
            stack, [(ann, "admin", False), (max_, "manager", False), (mia, "member", False)]
        )
        await set_route(stack, agency, "payment", ["manager", "admin"])
        request, handle = await team_job(stack, agency, f"owen-{t}@agency.test")
        row = await approval_row(stack, request.job_id)
        await approval_email(stack, max_)
        await approval_email(stack, ann)
        assert sorted(requests_to(stack)) == sorted([ann, max_])
        assert row["org_id"] == agency.org_id and row["quorum"] == 1

        # Neither a plain member nor the job's owner may decide.
        for outsider in (mia, f"owen-{t}@agency.test"):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(
                    "decide_approval",
                    ApprovalDecisionInput(
                        approval_id=row["id"], decision="approve", decided_by=outsider,
                        channel="app",
                    ),
                )  # fmt: skip
            assert "is not an approver" in str(refused.value.cause)

        sent = await approval_email(stack, max_)
        await reply(stack, sent["id"], "Approve")
        result = await handle.result()
        assert result.status == "completed"
        row = await approval_row(stack, request.job_id)
        assert (row["status"], row["decided_by"]) == ("approved", max_)
        assert await _votes(stack, row["id"]) == [(max_, "approve", "email")]


async def test_quorum_counts_each_approver_once_and_shows_progress(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    t = tag()
    a, b, c = (f"{n}-{t}@agency.test" for n in ("a", "b", "c"))
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        agency = await make_agency(stack, [(m, "manager", False) for m in (a, b, c)])
        await set_route(stack, agency, "payment", ["manager"], quorum=2)
        request, handle = await team_job(stack, agency, f"o-{t}@agency.test")
        row = await approval_row(stack, request.job_id)
        a_mail = await approval_email(stack, a)
        assert await _post(links(a_mail["text"])["Approve"]) == 200
        # The same person again, by the same link (the same delivery: answered as before)
        # and by reply (refused): still one approval.
        await _post(links(a_mail["text"])["Approve"])
        await reply(stack, a_mail["id"], "Approve")
        assert await _votes(stack, row["id"]) == [(a, "approve", "link")]
        state = await _state(handle)
        assert (state["approvals"], state["quorum"]) == (1, 2)
        assert a not in state["approvers"] and {b, c} <= set(state["approvers"])
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert "Approvals: 1 of 2 approvals" in metadata.current_details
        assert (await approval_row(stack, request.job_id))["status"] == "pending"

        b_mail = await approval_email(stack, b)
        assert await _post(links(b_mail["text"])["Approve"]) == 200
        result = await handle.result()
        assert result.status == "completed"
        await record_history(handle, "agent_job_quorum_approved")
        assert await _votes(stack, row["id"]) == [(a, "approve", "link"), (b, "approve", "link")]
        row = await approval_row(stack, request.job_id)
        assert (row["status"], row["decided_by"]) == ("approved", b)
        # Too late for the third.
        c_mail = await approval_email(stack, c)
        assert await _post(links(c_mail["text"])["Reject"]) == 409


async def test_two_of_three_with_one_reject_is_rejected(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    t = tag()
    a, b, c = (f"{n}-{t}@agency.test" for n in ("a", "b", "c"))
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        agency = await make_agency(stack, [(m, "manager", False) for m in (a, b, c)])
        await set_route(stack, agency, "delete", ["manager"], quorum=2)
        request, handle = await team_job(stack, agency, f"o-{t}@agency.test", DELETE_STEP)
        row = await approval_row(stack, request.job_id)
        assert await _post(links((await approval_email(stack, a))["text"])["Approve"]) == 200
        await reply(stack, (await approval_email(stack, b))["id"], "Reject\nnot this one")
        result = await handle.result()
        assert result.status == "cancelled" and "rejected" in (result.reason or "")
        await record_history(handle, "agent_job_quorum_rejected")
        row = await approval_row(stack, request.job_id)
        assert (row["status"], row["decided_by"], row["decision_note"]) == (
            "rejected",
            b,
            "not this one",
        )
        assert await _votes(stack, row["id"]) == [(a, "approve", "link"), (b, "reject", "email")]
        assert await _post(links((await approval_email(stack, c))["text"])["Approve"]) == 409
        assert len(await _votes(stack, row["id"])) == 2


async def test_each_approvers_token_is_theirs_alone(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    t = tag()
    a, b, mia = f"a-{t}@agency.test", f"b-{t}@agency.test", f"mia-{t}@agency.test"
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        agency = await make_agency(
            stack, [(a, "manager", False), (b, "manager", False), (mia, "member", False)]
        )
        await set_route(stack, agency, "payment", ["manager"], quorum=2)
        request, handle = await team_job(stack, agency, f"o-{t}@agency.test")
        row = await approval_row(stack, request.job_id)
        a_mail = await approval_email(stack, a)
        # b answers from a's reply address: not a's vote, nor b's.
        await reply(stack, a_mail["id"], "Approve", from_addr=b)
        # A link signed for someone who is not an approver (a forged seat) is refused.
        forged = approval_tokens.sign(
            Keyring.from_settings(stack.settings).signing_keys(Use.APPROVAL_TOKENS).current,
            row["id"],
            mia,
            Purpose.APPROVE_LINK,
            row["expires_at"],
        )
        assert await _post(f"{stack.ingress_url}/approvals/{forged}") == 403
        # An expired token of a real approver changes nothing either.
        stale = approval_tokens.sign(
            Keyring.from_settings(stack.settings).signing_keys(Use.APPROVAL_TOKENS).current,
            row["id"],
            a,
            Purpose.APPROVE_LINK,
            datetime.now(UTC) - timedelta(minutes=1),
        )
        assert await _post(f"{stack.ingress_url}/approvals/{stale}") == 403
        assert await _votes(stack, row["id"]) == []
        assert (await _state(handle))["approvals"] == 0
        await handle.cancel()


async def test_a_bounce_escalates_to_the_backup_then_the_admins(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    t = tag()
    ann, max_, bea = f"ann-{t}@agency.test", f"max-{t}@agency.test", f"bea-{t}@agency.test"
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        agency = await make_agency(
            stack, [(ann, "admin", False), (max_, "manager", False), (bea, "member", True)]
        )
        await set_route(stack, agency, "payment", ["manager"])
        slack = stack.emulators.slack  # the agency's channel hears of the approval's trouble
        hook = slack.add_webhook(f"{stack.emulators.url}/slack", "#approvals")
        await store_channel(
            stack.pool,
            TEST_KEYRING.credential_box(),
            kind="slack_webhook",
            org_id=agency.org_id,
            secret=hook,
        )
        request, handle = await team_job(stack, agency, f"o-{t}@agency.test")
        row = await approval_row(stack, request.job_id)
        sent = await approval_email(stack, max_)
        assert requests_to(stack) == [max_]
        status = await asyncio.to_thread(
            stack.emulators.resend.deliver_event, "email.bounced", sent["id"]
        )
        assert status == 200
        bea_mail = await approval_email(stack, bea)  # the escalation is the request to bea
        # The same bounce delivered again escalates nothing more.
        await asyncio.to_thread(stack.emulators.resend.deliver_event, "email.bounced", sent["id"])
        complained = await asyncio.to_thread(
            stack.emulators.resend.deliver_event, "email.complained", bea_mail["id"]
        )
        assert complained == 200
        await approval_email(stack, ann)
        escalations = await eventually(
            lambda: _escalations(stack, row["id"], 2), what="two escalations"
        )
        assert escalations == [
            ("bounced", "backup", [bea]),
            ("complained", "admin", [ann]),
        ]
        assert requests_to(stack) == [max_, bea, ann]
        state = await _state(handle)
        assert state["escalations"] == 2
        await reply(stack, (await approval_email(stack, ann))["id"], "approve")
        assert (await handle.result()).status == "completed"
        await record_history(handle, "agent_job_escalated_notified")
        assert (await approval_row(stack, request.job_id))["decided_by"] == ann
        # Told once each: the bounce, and both escalations (the repeated bounce adds none).
        told = await eventually(
            lambda: (lambda m: m if len(m) >= 3 else None)(slack.messages()),
            what="three messages",
        )
        firsts = sorted(m["text"].split(" *")[0] for m in told)
        assert firsts == ["⏫ Approval of", "⏫ Approval of", "📭 Approval email for"], told
        assert sum("nobody else" in m["text"] for m in told) == 0
        await asyncio.sleep(1)
        assert len(slack.messages()) == 3


async def _escalations(stack: Stack, approval_id: Any, count: int) -> list[Any] | None:
    found = await stack.fetchall(
        "SELECT cause, tier, asked FROM approval_escalations WHERE approval_id = %s "
        "ORDER BY number",
        approval_id,
    )
    if len(found) < count:
        return None
    return [(r["cause"], r["tier"], r["asked"]) for r in found]


async def test_escalation_after_time_asks_backups_then_admins_and_is_recorded(
    db_url: str, time_env: WorkflowEnvironment, task_queue: str
) -> None:
    t = tag()
    ann, max_, bea = f"ann-{t}@agency.test", f"max-{t}@agency.test", f"bea-{t}@agency.test"
    async with running_stack(db_url, time_env.client, task_queue) as stack:
        agency = await make_agency(
            stack, [(ann, "admin", False), (max_, "manager", False), (bea, "member", True)]
        )
        await set_route(stack, agency, "payment", ["manager"], escalate_after_seconds=4 * 3600)
        request, handle = await team_job(stack, agency, f"o-{t}@agency.test")
        result = await handle.result()  # time skips: 4 h, 8 h, 12 h (nobody left), 24 h, 72 h
        assert result.status == "cancelled" and "expired" in (result.reason or "")
        await record_history(handle, "agent_job_escalated_after_time")
        row = await approval_row(stack, request.job_id)
        assert row["status"] == "expired"
        assert await _escalations(stack, row["id"], 3) == [
            ("no_decision", "backup", [bea]),
            ("no_decision", "admin", [ann]),
            ("no_decision", "none", []),
        ]
        assert requests_to(stack) == [max_, bea, ann]
        keys = stack.emulators.resend.sends_by_idempotency_key()
        reminders = {k for k in keys if k.startswith("approval-reminder/")}
        assert len(reminders) == 3 and all(v == 1 for v in keys.values())
        # Nothing after expiry, from any approver.
        await reply(stack, (await approval_email(stack, ann))["id"], "Approve")
        assert (await approval_row(stack, request.job_id))["status"] == "expired"
        assert await _votes(stack, row["id"]) == []


async def test_delegation_by_reply_hands_the_seat_on(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    t = tag()
    max_, mo, mia = f"max-{t}@agency.test", f"mo-{t}@agency.test", f"mia-{t}@agency.test"
    outsider = f"eve-{t}@elsewhere.test"
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        agency = await make_agency(
            stack,
            [
                (max_, "manager", False),
                (mo, "manager", False),
                (mia, "member", False),
                (f"ann-{t}@agency.test", "admin", False),  # the agency keeps an admin
            ],
        )
        await set_route(stack, agency, "payment", ["manager"], quorum=2)
        # mo is a manager too, so asked already: delegation goes to someone not asked.
        async with stack.pool.connection() as conn:
            await conn.execute(
                "UPDATE team_members SET role = 'admin' WHERE user_id = %s AND org_id = %s",
                (agency.members[mo], agency.org_id),
            )
        request, handle = await team_job(stack, agency, f"o-{t}@agency.test")
        row = await approval_row(stack, request.job_id)
        sent = await approval_email(stack, max_)
        assert requests_to(stack) == [max_]  # quorum 2 with one manager: waits for more

        for line, why in (
            (f"DELEGATE {outsider}", "not a member"),
            (f"DELEGATE {mia}", "this needs a manager"),
            (f"delegate {max_}", "themselves"),
        ):
            await reply(stack, sent["id"], line)
            told = await eventually(
                lambda why=why: _clarification(stack, max_, why),  # type: ignore[misc]
                what=f"refusal: {why}",
            )
            assert "Nothing changed" in told["text"]
        for line in ("Do not delegate", f"delegate {mo} or {mia}", "delegate to mo"):
            await reply(stack, sent["id"], line)
        assert requests_to(stack) == [max_]

        async with stack.pool.connection() as conn:
            await conn.execute(
                "UPDATE team_members SET role = 'manager' WHERE user_id = %s AND org_id = %s",
                (agency.members[mo], agency.org_id),
            )
        await reply(stack, sent["id"], f"DELEGATE {mo}")
        mo_mail = await approval_email(stack, mo)
        seats = await stack.fetchall(
            "SELECT email, asked_because, delegated_from, withdrawn_at IS NOT NULL AS withdrawn "
            "FROM approval_approvers WHERE approval_id = %s ORDER BY seat",
            row["id"],
        )
        assert [
            (s["email"], s["asked_because"], s["delegated_from"], s["withdrawn"]) for s in seats
        ] == [
            (max_, "route", None, True),
            (mo, "delegation", max_, False),
        ]
        # max handed it on: his approval no longer counts.
        assert await _post(links(sent["text"])["Approve"]) == 409
        assert await _post(links(mo_mail["text"])["Approve"]) == 200
        state = await _state(handle)
        assert (state["approvals"], state["quorum"]) == (1, 2)
        # Delegation in the app or the UI: mo cannot hand on a seat he voted with.
        with pytest.raises(WorkflowUpdateFailedError) as voted:
            await handle.execute_update(
                "delegate_approval",
                DelegationInput(approval_id=row["id"], delegated_by=mo, delegate_to=mia),
            )
        assert "already voted" in str(voted.value.cause)
        await handle.cancel()


async def _clarification(stack: Stack, to: str, words: str) -> dict[str, Any] | None:
    for email in stack.emulators.resend.sent_emails():
        key = email.get("idempotency_key") or ""
        if to in email["to"] and key.startswith("approval-clarify/") and words in email["text"]:
            return dict(email)
    return None


async def test_delegation_by_the_ui_update_asks_the_delegate(
    db_url: str, temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    t = tag()
    ann, mo = f"ann-{t}@agency.test", f"mo-{t}@agency.test"
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        agency = await make_agency(stack, [(ann, "admin", False), (mo, "member", False)])
        await set_route(stack, agency, "payment", ["admin"])
        request, handle = await team_job(stack, agency, f"o-{t}@agency.test")
        row = await approval_row(stack, request.job_id)
        await approval_email(stack, ann)
        with pytest.raises(WorkflowUpdateFailedError) as refused:  # mo is only a member
            await handle.execute_update(
                "delegate_approval",
                DelegationInput(approval_id=row["id"], delegated_by=ann, delegate_to=mo),
            )
        assert "this needs a admin" in str(refused.value.cause)
        await set_route(stack, agency, "*", ["member"])  # a route that names no action
        async with stack.pool.connection() as conn:
            await conn.execute(
                "UPDATE approval_routes SET approver_roles = '{admin,member}' "
                "WHERE org_id = %s AND action_type = 'payment'",
                (agency.org_id,),
            )
        result = await handle.execute_update(
            "delegate_approval",
            DelegationInput(approval_id=row["id"], delegated_by=ann, delegate_to=mo.upper()),
            result_type=DelegationResult,
        )
        assert (result.delegate_to, result.seat) == (mo, 1)
        await reply(stack, (await approval_email(stack, mo))["id"], "yes")
        assert (await handle.result()).status == "completed"
        await record_history(handle, "agent_job_delegated")
        assert (await approval_row(stack, request.job_id))["decided_by"] == mo
