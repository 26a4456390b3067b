"""The production compose file and Dockerfile: pinned images, ordered start-up, settings wired.

These read docker-compose.yml as data (no Docker engine needed); ``docker compose config`` runs
only where the compose plugin is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from workers.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = {"postgres", "temporal", "temporal-ui", "setup", "worker", "ingress"}
ORCHESTRATOR_SERVICES = ("setup", "worker", "ingress")
HEALTHCHECKED = ("postgres", "temporal", "worker", "ingress")
WAIT_CONDITIONS = {"service_healthy", "service_completed_successfully"}

# Secrets a production deployment cannot run without: compose must refuse to start if unset.
REQUIRED_SECRETS = {
    "ENCRYPTION_MASTER_KEY",
    "RESEND_API_KEY",
    "RESEND_WEBHOOK_SECRET",
}
DUMMY_SECRETS = {
    "ENCRYPTION_MASTER_KEY": "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
    "RESEND_API_KEY": "re_test_key",
    "RESEND_WEBHOOK_SECRET": "whsec_dGVzdC13ZWJob29rLXNlY3JldA==",
}
# Variables the orchestrator services may carry that are not settings fields (none so far).
NON_SETTINGS_ENV: frozenset[str] = frozenset()

# name:tag or name@sha256:digest; the tag must name a version, so it carries a digit.
PINNED_IMAGE = re.compile(
    r"^[a-z0-9][a-z0-9._/-]*(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]*))?(@sha256:[0-9a-f]{64})?$"
)
INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return compose["services"][name]


def _environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {name: None if value is None else str(value) for name, value in env.items()}


def _is_pinned(image: str) -> bool:
    match = PINNED_IMAGE.match(image)
    if match is None or "$" in image:
        return False
    tag = match.group("tag")
    if "@sha256:" in image:
        return tag != "latest"
    return tag is not None and tag != "latest" and any(ch.isdigit() for ch in tag)


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(arg) for arg in typing.get_args(annotation))


def _interpolate(value: str, host_env: dict[str, str]) -> str:
    """Compose's ``$$``, ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` from ``host_env``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        current = host_env.get(name)
        if op == ":-":
            return current if current else _interpolate(arg, host_env)
        if op == ":?":
            if not current:
                raise LookupError(f"{name}: {arg}")
            return current
        return current or ""

    return INTERPOLATION.sub(replace, value)


def test_compose_defines_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_image_is_pinned_to_a_version(compose: dict[str, Any], name: str) -> None:
    service = _service(compose, name)
    image = service.get("image")
    if "build" in service:
        # Built here: the tag names this build, never the floating `latest`.
        assert image and ":" in image and not image.endswith(":latest"), image
    else:
        assert image and _is_pinned(image), f"{name}: image {image!r} is not pinned to a version"


def test_dockerfile_base_image_is_pinned_and_runs_as_non_root() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert bases, "Dockerfile has no FROM"
    for base in bases:
        assert _is_pinned(base), f"FROM {base} is not pinned to a version"
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, "the image must end as a non-root user"


def test_every_service_but_postgres_waits_on_a_condition(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "postgres":
            continue
        depends_on = service.get("depends_on")
        assert isinstance(depends_on, dict) and depends_on, f"{name}: depends_on without conditions"
        for dependency, spec in depends_on.items():
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"
            assert spec.get("condition") in WAIT_CONDITIONS, f"{name} -> {dependency}: {spec}"


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name in HEALTHCHECKED:
        healthcheck = _service(compose, name).get("healthcheck") or {}
        assert healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"


def test_setup_migrates_and_registers_search_attributes_before_worker_and_ingress(
    compose: dict[str, Any],
) -> None:
    command = _service(compose, "setup")["command"]
    command = " ".join(command) if isinstance(command, list) else command
    assert "orchestrator migrate" in command
    assert "orchestrator search-attributes register" in command
    for name in ("worker", "ingress"):
        depends_on = _service(compose, name)["depends_on"]
        assert depends_on["setup"]["condition"] == "service_completed_successfully"


def test_orchestrator_services_share_one_environment(compose: dict[str, Any]) -> None:
    shared = compose["x-orchestrator-env"]
    for name in ORCHESTRATOR_SERVICES:
        env = _service(compose, name)["environment"]
        assert env == {**env, **shared}, f"{name} does not carry the shared environment"


def test_worker_environment_carries_every_required_and_secret_setting(
    compose: dict[str, Any],
) -> None:
    env = _environment(_service(compose, "worker"))
    needed = {
        name.upper()
        for name, field in Settings.model_fields.items()
        if field.is_required() or _is_secret(field.annotation)
    }
    assert needed <= set(env), f"missing from the worker environment: {sorted(needed - set(env))}"


def test_required_secrets_fail_fast_when_unset(compose: dict[str, Any]) -> None:
    env = _environment(_service(compose, "worker"))
    for name in REQUIRED_SECRETS:
        assert (env.get(name) or "").startswith(f"${{{name}:?"), f"{name} must be ${{{name}:?...}}"


@pytest.mark.parametrize("name", ORCHESTRATOR_SERVICES)
def test_orchestrator_environment_names_are_settings_fields(
    compose: dict[str, Any], name: str
) -> None:
    fields = {field.upper() for field in Settings.model_fields}
    unknown = set(_environment(_service(compose, name))) - fields - NON_SETTINGS_ENV
    assert not unknown, f"{name}: not settings fields (typo?): {sorted(unknown)}"


def test_worker_environment_with_only_required_secrets_is_valid_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
    for name, raw in _environment(_service(compose, "worker")).items():
        if raw is not None:  # a bare NAME is passed through from the host: unset here
            monkeypatch.setenv(name, _interpolate(raw, DUMMY_SECRETS))

    settings = load_settings()

    assert settings.temporal_address == "temporal:7233"
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value().endswith("@postgres:5432/orchestrator")
    assert settings.log_format == "json"
    assert settings.metrics_bind_address == "0.0.0.0:9464"
    for name, value in DUMMY_SECRETS.items():
        secret = getattr(settings, name.lower())
        assert secret is not None and secret.get_secret_value() == value


def test_temporal_registers_the_namespace_the_worker_uses(compose: dict[str, Any]) -> None:
    temporal_env = _environment(_service(compose, "temporal"))
    worker_env = _environment(_service(compose, "worker"))
    assert temporal_env["DEFAULT_NAMESPACE"] == worker_env["TEMPORAL_NAMESPACE"]


def test_postgres_keeps_its_data_on_a_named_volume(compose: dict[str, Any]) -> None:
    volumes = _service(compose, "postgres")["volumes"]
    sources = {volume.split(":", 1)[0] for volume in volumes if isinstance(volume, str)}
    assert sources & set(compose.get("volumes") or {}), "postgres data is not on a named volume"


def _docker_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker client not installed")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no output"])[0]
        pytest.skip(f"docker compose plugin not available ({reason})")
    return subprocess.run(
        # No .env: only the variables given here decide the outcome.
        [docker, "compose", "--env-file", os.devnull, "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
        env=env,
    )


def _host_env_without_secrets() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in REQUIRED_SECRETS}


def test_docker_compose_config_accepts_the_file() -> None:
    result = _docker_compose("config", "-q", env={**_host_env_without_secrets(), **DUMMY_SECRETS})
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_names_a_missing_required_secret() -> None:
    env = {**_host_env_without_secrets(), **DUMMY_SECRETS}
    del env["RESEND_API_KEY"]
    result = _docker_compose("config", "-q", env=env)
    assert result.returncode != 0
    assert "RESEND_API_KEY" in result.stderr
