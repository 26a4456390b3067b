"""Settings: every value from the environment; a bad or missing one is one clear line."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

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


MASTER = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting from the machine's environment."""
    from workers.settings import Settings

    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def test_secrets_are_read_from_files_as_compose_mounts_them(
    clean_env: None, tmp_path: Path
) -> None:
    # compose `secrets:` puts each one at /run/secrets/<name>; echo leaves a newline.
    (tmp_path / "encryption_master_key").write_text(MASTER + "\n")
    (tmp_path / "RESEND_API_KEY").write_text("re_from_file")  # names are case-insensitive
    settings = load_settings(secrets_dir=tmp_path)
    assert settings.encryption_master_key is not None
    assert settings.encryption_master_key.get_secret_value() == MASTER
    assert settings.resend_api_key is not None
    assert settings.resend_api_key.get_secret_value() == "re_from_file"
    assert MASTER in settings.secret_values()


def test_the_environment_wins_over_a_secret_file(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "steel_api_key").write_text("from-file")
    monkeypatch.setenv("STEEL_API_KEY", "from-env")
    steel = load_settings(secrets_dir=tmp_path).steel_api_key
    assert steel is not None and steel.get_secret_value() == "from-env"


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("encryption_master_key", "not base64!", "invalid setting ENCRYPTION_MASTER_KEY"),
        ("resend_webhook_secret", "plain", "invalid setting RESEND_WEBHOOK_SECRET"),
        ("database_pool_max", "many", "invalid setting DATABASE_POOL_MAX"),
    ],
)
def test_a_bad_secret_file_is_one_line_naming_the_setting(
    clean_env: None, tmp_path: Path, name: str, content: str, error: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(SettingsError, match=error):
        load_settings(secrets_dir=tmp_path)


def test_secret_files_outside_the_directory_or_of_other_names_are_ignored(
    clean_env: None, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.write_text("stolen")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "steel_api_key").symlink_to(outside)  # resolves outside the directory
    (secrets / "not_a_setting").write_text("x")
    (secrets / "supermemory_api_key").mkdir()  # a directory, not a file
    with pytest.warns(UserWarning):
        settings = load_settings(secrets_dir=secrets)
    assert settings.steel_api_key is None and settings.supermemory_api_key is None


def test_a_missing_secrets_directory_is_no_error(clean_env: None, tmp_path: Path) -> None:
    assert load_settings(secrets_dir=tmp_path / "absent").steel_api_key is None


def test_settings_env_leaves_defaults_to_the_other_process(clean_env: None) -> None:
    env = settings_env(load_settings(database_pool_max=7))
    assert env["DATABASE_POOL_MAX"] == "7"
    # Unset here, unset there: a Temporal profile file's namespace is not overridden.
    assert "TEMPORAL_NAMESPACE" not in env and "DATABASE_POOL_MIN" not in env
