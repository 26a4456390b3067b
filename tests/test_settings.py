"""Settings: every value from the environment; a bad or missing one is one clear line."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from workers.settings import SettingsError, load_settings, settings_env

ORCHESTRATOR = [sys.executable, "-m", "workers.cli"]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [*ORCHESTRATOR, *args], env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_invalid_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="invalid setting DATABASE_POOL_MAX"):
        load_settings(database_pool_max="many")


def test_webhook_secret_must_be_in_resend_format() -> None:
    with pytest.raises(SettingsError, match=r"RESEND_WEBHOOK_SECRET: .*whsec_"):
        load_settings(resend_webhook_secret="plain")


def test_empty_cpu_target_means_fixed_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_ACTIVITY_CPU_TARGET", "")
    assert load_settings().worker_activity_cpu_target is None
    monkeypatch.setenv("WORKER_ACTIVITY_CPU_TARGET", "1.5")
    with pytest.raises(SettingsError, match="invalid setting WORKER_ACTIVITY_CPU_TARGET"):
        load_settings()


def test_settings_env_gives_a_process_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # What is turned off here (None over a default) stays off there.
    settings = load_settings(
        worker_activity_cpu_target=None, metrics_bind_address=None, database_pool_max=7
    )
    env = settings_env(settings)
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    again = load_settings()
    assert again.worker_activity_cpu_target is None and not again.metrics_bind_address
    assert again.database_pool_max == 7


def test_worker_without_database_url_exits_with_one_line() -> None:
    result = _run({"TEMPORAL_ADDRESS": "127.0.0.1:1"}, "worker")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "orchestrator: missing setting DATABASE_URL: set the environment variable DATABASE_URL"
    ]


def test_worker_with_bad_number_exits_with_one_line() -> None:
    result = _run({"WORKER_MAX_CONCURRENT_ACTIVITIES": "lots"}, "worker")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "WORKER_MAX_CONCURRENT_ACTIVITIES" in lines[0]


def test_secrets_never_print() -> None:
    settings = load_settings(approval_token_secret="super-secret-value")
    assert "super-secret-value" not in repr(settings)
    assert "super-secret-value" not in str(settings.model_dump())
    assert "super-secret-value" in settings.secret_values()


def test_each_old_encryption_key_is_a_secret_on_its_own() -> None:
    old = [base64.b64encode(bytes([i]) * 32).decode() for i in (1, 2)]
    settings = load_settings(encryption_old_keys=f"{old[0]}, {old[1]}")
    assert set(old) <= set(settings.secret_values())
    assert old[0] not in repr(settings)
