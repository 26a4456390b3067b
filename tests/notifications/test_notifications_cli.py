"""`orchestrator notifications add|list`: a channel's secret from stdin, stored encrypted
and never printed; deliveries listed as the dashboard shows them; bad input refused."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.notifications import raise_event
from tests.harness import running_stack
from tests.notifications.test_delivery import all_final, event, new_user
from tests.waiting import eventually
from workers.cli import _parser
from workers.cli.common import CliError


async def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    args = _parser().parse_args(["--json", *argv])
    await args.run(args)
    return json.loads(capsys.readouterr().out)


async def test_a_channel_added_from_the_cli_gets_the_next_event(
    db_url: str,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_stack(db_url, temporal_env.client, task_queue) as stack:
        key = stack.settings.encryption_master_key
        assert key is not None and stack.settings.database_url is not None
        env = {
            "DATABASE_URL": stack.settings.database_url.get_secret_value(),
            "TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
            "ENCRYPTION_MASTER_KEY": key.get_secret_value(),
            "ORCHESTRATOR_HOME": "/nonexistent-orchestrator-home",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        user_id = await new_user(stack)
        webhook = stack.emulators.slack.add_webhook(f"{stack.emulators.url}/slack")
        monkeypatch.setattr("sys.stdin", io.StringIO(webhook + "\n"))
        added = await _run(
            capsys, "notifications", "add", "slack_webhook", "--user", str(user_id),
            "--secret", "-", "--events", "generation.nsfw,job.failed",
        )  # fmt: skip
        assert webhook not in json.dumps(added)
        await raise_event(stack.pool, stack.client, event(user_id), task_queue=task_queue)
        await eventually(lambda: all_final(stack, user_id, 1), what="delivery")
        listed = await _run(capsys, "notifications", "list", "--user", str(user_id))
        assert [(r["event_type"], r["kind"], r["outcome"]) for r in listed] == [
            ("generation.nsfw", "slack_webhook", "sent")
        ]
        assert len(stack.emulators.slack.messages()) == 1


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["slack_webhook", "--secret", "hooks.slack.com/x"], "webhook's URL"),
        (["slack_webhook"], "needs --secret"),
        (["slack_bot", "--secret", "xoxb-1"], "needs --channel"),
        (["email", "--secret", "x"], "takes --to"),
        (["email", "--per-minute", "0"], "between 1 and 600"),
    ],
)
async def test_cli_refuses_an_incomplete_channel(
    capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    user = "00000000-0000-4000-8000-000000000001"
    with pytest.raises(CliError, match=error):
        await _run(capsys, "notifications", "add", *argv, "--user", user)


@pytest.mark.parametrize(
    "argv",
    [
        ["add", "sms", "--user", "00000000-0000-4000-8000-000000000001"],
        ["add", "email"],  # no owner
        ["add", "email", "--user", "not-a-uuid"],
        ["add", "email", "--user", "00000000-0000-4000-8000-000000000001", "--events", "job.x"],
        [
            "add",
            "email",
            "--user",
            "00000000-0000-4000-8000-000000000001",
            "--org",
            "00000000-0000-4000-8000-000000000009",
        ],
    ],
)
def test_cli_refuses_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["notifications", *argv])
