"""The production compose file and Dockerfile: pinned images, ordered start-up, and every
orchestrator service's settings, built as compose builds them, load.

No Docker engine runs here, so this reads docker-compose.yml as data and does what compose
does with it: interpolates ``${X:?}`` / ``${X:-d}`` from a test ``.env``, reads
``env_file`` entries, lets ``environment`` win over them, and mounts each ``secrets:``
file at ``/run/secrets/<name>`` (a directory the settings read). ``docker compose config``
runs too where the compose plugin is installed.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from workers.families import family_statuses
from workers.keys import Keyring
from workers.processes import inbound_config
from workers.settings import Settings, SettingsError, load_settings
from workers.temporal import connect_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / "orchestrator.env.example"

SERVICES = {
    "postgres",
    "temporal-schema",
    "temporal",
    "temporal-namespace",
    "temporal-ui",
    "setup",
    "worker",
    "ingress",
}
ORCHESTRATOR_SERVICES = ("setup", "worker", "ingress")
ONE_SHOT = ("temporal-schema", "temporal-namespace", "setup")
HEALTHCHECKED = ("postgres", "temporal", "worker", "ingress")
WAIT_CONDITIONS = {"service_healthy", "service_completed_successfully"}

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
DOTENV = {"POSTGRES_PASSWORD": "0123456789abcdef"}
SECRET_FILES = {
    "encryption_master_key": MASTER_KEY + "\n",  # as `openssl rand -base64 32 >` writes it
    "resend_api_key": "re_test_key",
    "resend_webhook_secret": "whsec_dGVzdC13ZWJob29rLXNlY3JldA==",
}

# name:tag or name@sha256:digest; the tag must name a version, so it carries a digit.
PINNED_IMAGE = re.compile(
    r"^[a-z0-9][a-z0-9._/-]*(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]*))?(@sha256:[0-9a-f]{64})?$"
)
INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class ComposeError(Exception):
    """What `docker compose up` would refuse with."""


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``$$``, ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}`` from ``env``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        current = env.get(name)
        if op == ":-":
            return current if current else interpolate(arg, env)
        if op == ":?":
            if not current:
                raise ComposeError(f"required variable {name} is missing a value: {arg}")
            return current
        return current or ""

    return INTERPOLATION.sub(replace, value)


def resolved(node: Any, env: dict[str, str]) -> Any:
    """The whole file interpolated, as compose does before anything else."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolved(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolved(value, env) for key, value in node.items()}
    return node


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; comments and blank lines skipped (compose's env_file format)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@dataclass
class Project:
    """A directory laid out as an operator lays it out next to docker-compose.yml."""

    directory: Path
    dotenv: dict[str, str]

    def compose(self) -> dict[str, Any]:
        raw = yaml.safe_load(COMPOSE_FILE.read_text())
        return resolved(raw, self.dotenv)

    def container(self, service: str, run_secrets: Path) -> dict[str, str]:
        """The environment compose gives ``service``; its secrets copied into
        ``run_secrets`` as they are mounted at /run/secrets."""
        compose = self.compose()
        spec = compose["services"][service]
        env: dict[str, str] = {}
        for entry in spec.get("env_file") or []:
            entry = {"path": entry} if isinstance(entry, str) else entry
            path = self.directory / entry["path"]
            if path.exists():
                env |= parse_env_file(path)
            elif entry.get("required", True):
                raise ComposeError(f"env file {path} not found")
        for name, value in (spec.get("environment") or {}).items():
            if value is None:  # a bare NAME: from the host; no host here
                env.pop(name, None)
            else:
                env[name] = str(value)
        run_secrets.mkdir(parents=True, exist_ok=True)
        for secret in spec.get("secrets") or []:
            source = secret if isinstance(secret, str) else secret["source"]
            target = source if isinstance(secret, str) else secret.get("target", source)
            definition = compose["secrets"][source]
            path = self.directory / definition["file"]
            if not path.is_file():
                raise ComposeError(f"secret {source}: file {path} does not exist")
            shutil.copy(path, run_secrets / target)
        return env


@pytest.fixture
def project(tmp_path: Path) -> Project:
    directory = tmp_path / "deployment"
    (directory / "secrets").mkdir(parents=True)
    for name, content in SECRET_FILES.items():
        (directory / "secrets" / name).write_text(content)
    return Project(directory, dict(DOTENV))


@pytest.fixture
def container_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run load_settings inside a service's environment (and nothing else)."""

    def enter(env: dict[str, str]) -> None:
        for name in list(os.environ):
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return enter


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
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


def _command(service: dict[str, Any]) -> str:
    command = service.get("command") or []
    return " ".join(command) if isinstance(command, list) else command


# -- each orchestrator service's settings, as compose gives them ------------------------


@pytest.mark.parametrize("service", ORCHESTRATOR_SERVICES)
def test_service_settings_load_with_only_the_required_values(
    project: Project, container_env: Any, tmp_path: Path, service: str
) -> None:
    run_secrets = tmp_path / "run-secrets"
    container_env(project.container(service, run_secrets))
    settings = load_settings(secrets_dir=run_secrets)

    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == (
        "postgresql://orchestrator:0123456789abcdef@postgres:5432/orchestrator"
    )
    config = connect_config(settings)
    assert (config["target_host"], config["namespace"]) == ("temporal:7233", "default")
    assert "tls" not in config and "api_key" not in config
    assert (settings.log_format, settings.metrics_bind_address) == ("json", "0.0.0.0:9464")
    for name, content in SECRET_FILES.items():
        secret = getattr(settings, name)
        assert secret is not None and secret.get_secret_value() == content.strip()
    Keyring.from_settings(settings)  # the worker's first need
    inbound_config(settings)  # the ingress's: Resend's key and webhook secret
    families = {f.name: f for f in family_statuses(settings)}
    # No Steel or Supermemory key: agent jobs off, the rest on; the worker still starts.
    assert not families["agent_jobs"].enabled
    assert families["generations"].enabled and families["metric_syncs"].enabled


def test_optional_settings_come_from_orchestrator_env(
    project: Project, container_env: Any, tmp_path: Path
) -> None:
    example = parse_env_file(ENV_EXAMPLE)
    filled = {**example, "STEEL_API_KEY": "steel_live", "SUPERMEMORY_API_KEY": "sm_live"}
    (project.directory / "orchestrator.env").write_text(
        "".join(f"{k}={v}\n" for k, v in filled.items())
    )
    run_secrets = tmp_path / "run-secrets"
    container_env(project.container("worker", run_secrets))
    settings = load_settings(secrets_dir=run_secrets)
    assert all(f.enabled for f in family_statuses(settings))
    # The example's empty values are unset, not empty keys.
    assert settings.google_ads_developer_token is None and settings.temporal_api_key is None


def test_the_example_env_file_names_only_settings() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    names = set(parse_env_file(ENV_EXAMPLE))
    commented = set(re.findall(r"^# ([A-Z_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert names and (names | commented) <= fields, sorted((names | commented) - fields)


def test_environment_wins_over_orchestrator_env(
    project: Project, container_env: Any, tmp_path: Path
) -> None:
    # Compose gives `environment:` precedence over `env_file:`: the in-compose Postgres
    # stays the database even if orchestrator.env names another.
    (project.directory / "orchestrator.env").write_text("DATABASE_URL=postgresql://elsewhere/db\n")
    container_env(project.container("worker", tmp_path / "s"))
    url = load_settings(secrets_dir=tmp_path / "s").database_url
    assert url is not None and "@postgres:5432/" in url.get_secret_value()


def test_temporal_cloud_is_chosen_in_dotenv_and_orchestrator_env(
    project: Project, container_env: Any, tmp_path: Path
) -> None:
    project.dotenv |= {
        "TEMPORAL_ADDRESS": "agency.a1b2c.tmprl.cloud:7233",
        "TEMPORAL_NAMESPACE": "agency.a1b2c",
    }
    (project.directory / "orchestrator.env").write_text("TEMPORAL_API_KEY=tmprl_key\n")
    container_env(project.container("worker", tmp_path / "s"))
    config = connect_config(load_settings(secrets_dir=tmp_path / "s"))
    assert config["target_host"] == "agency.a1b2c.tmprl.cloud:7233"
    assert (config["namespace"], config["api_key"], config["tls"]) == (
        "agency.a1b2c",
        "tmprl_key",
        True,
    )


def test_missing_postgres_password_stops_compose_naming_it(project: Project) -> None:
    project.dotenv.pop("POSTGRES_PASSWORD")
    with pytest.raises(ComposeError, match="POSTGRES_PASSWORD"):
        project.compose()


@pytest.mark.parametrize("secret", sorted(SECRET_FILES))
def test_missing_secret_file_stops_compose_naming_it(
    project: Project, tmp_path: Path, secret: str
) -> None:
    (project.directory / "secrets" / secret).unlink()
    with pytest.raises(ComposeError, match=f"secrets/{secret} does not exist"):
        project.container("worker", tmp_path / "s")


def test_unmounted_master_key_is_one_line_naming_it(
    project: Project, container_env: Any, tmp_path: Path
) -> None:
    run_secrets = tmp_path / "s"
    container_env(project.container("worker", run_secrets))
    (run_secrets / "encryption_master_key").unlink()
    with pytest.raises(SettingsError) as raised:
        Keyring.from_settings(load_settings(secrets_dir=run_secrets))
    assert raised.value.code == (
        "missing setting ENCRYPTION_MASTER_KEY: set the environment variable ENCRYPTION_MASTER_KEY"
    )


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("not-base64!", "invalid setting ENCRYPTION_MASTER_KEY: .*base64"),
        (base64.b64encode(b"short").decode(), "invalid setting ENCRYPTION_MASTER_KEY: .*32"),
        ("", "invalid setting ENCRYPTION_MASTER_KEY: .*32 bytes, not 0"),  # an empty file
    ],
)
def test_bad_master_key_file_is_one_line(
    project: Project, container_env: Any, tmp_path: Path, content: str, error: str
) -> None:
    (project.directory / "secrets" / "encryption_master_key").write_text(content)
    container_env(project.container("worker", tmp_path / "s"))
    with pytest.raises(SettingsError, match=error):
        Keyring.from_settings(load_settings(secrets_dir=tmp_path / "s"))


@pytest.mark.parametrize("name", ORCHESTRATOR_SERVICES)
def test_orchestrator_environment_names_are_settings_fields(
    compose: dict[str, Any], name: str
) -> None:
    fields = {field.upper() for field in Settings.model_fields}
    unknown = set(_environment(compose["services"][name])) - fields
    assert not unknown, f"{name}: not settings fields (typo?): {sorted(unknown)}"


@pytest.mark.parametrize("name", ORCHESTRATOR_SERVICES)
def test_secrets_are_mounted_by_their_setting_names(compose: dict[str, Any], name: str) -> None:
    fields = set(Settings.model_fields)
    for secret in compose["services"][name]["secrets"]:
        assert secret in fields, f"/run/secrets/{secret} is no setting"
        assert _is_secret(Settings.model_fields[secret].annotation), secret
        assert secret.upper() not in _environment(compose["services"][name]), secret


# -- images, order, health --------------------------------------------------------------


def test_compose_defines_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_image_is_pinned_to_a_version(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    image = service.get("image")
    if "build" in service:
        assert image and ":" in image and not image.endswith(":latest"), image
    else:
        assert image and _is_pinned(image), f"{name}: image {image!r} is not pinned to a version"


def test_no_deprecated_auto_setup_image(compose: dict[str, Any]) -> None:
    images = {s.get("image", "") for s in compose["services"].values()}
    assert not any(i.startswith("temporalio/auto-setup") for i in images)
    temporal = compose["services"]["temporal"]["image"]
    tools = {compose["services"][n]["image"] for n in ("temporal-schema", "temporal-namespace")}
    # The schema tool of the server's own version.
    assert tools == {temporal.replace("temporalio/server", "temporalio/admin-tools")}


def test_postgres_matches_the_dev_stack_and_keeps_its_data(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    # Postgres 18 and pgvector 0.8.6, like the embedded server `orchestrator dev` runs.
    assert re.fullmatch(r"pgvector/pgvector:0\.8\.6-pg18(-\w+)?", postgres["image"])
    volumes = [v.split(":") for v in postgres["volumes"]]
    # 18+ keeps PGDATA in /var/lib/postgresql/18/docker: the volume is its parent.
    assert [(source, target) for source, target in volumes] == [
        ("postgres-data", "/var/lib/postgresql")
    ]
    assert "postgres-data" in compose["volumes"]


def test_schema_job_sets_up_both_databases_the_server_uses(compose: dict[str, Any]) -> None:
    job = compose["services"]["temporal-schema"]
    server = _environment(compose["services"]["temporal"])
    env = _environment(job)
    assert env["SQL_PLUGIN"] == server["DB"] == "postgres12"
    assert env["SQL_HOST"] == server["POSTGRES_SEEDS"] == "postgres"
    assert env["SQL_USER"] == server["POSTGRES_USER"]
    assert env["SQL_PASSWORD"] == server["POSTGRES_PWD"]
    script = _command(job)
    for db, schema in ((server["DBNAME"], "temporal"), (server["VISIBILITY_DBNAME"], "visibility")):
        assert f"--db {db} setup-schema -v 0.0" in script
        assert f"--db {db} update-schema -d" in script and f"/{schema}/versioned" in script
    assert "schema=/etc/temporal/schema/postgresql/v12" in script
    assert compose["services"]["temporal"]["depends_on"] == {
        "temporal-schema": {"condition": "service_completed_successfully"}
    }


def test_temporal_dynamic_config_is_valid_yaml_at_the_configured_path(
    compose: dict[str, Any],
) -> None:
    temporal = compose["services"]["temporal"]
    path = _environment(temporal)["DYNAMIC_CONFIG_FILE_PATH"]
    (mount,) = temporal["configs"]
    assert mount["target"] == path
    values = yaml.safe_load(compose["configs"][mount["source"]]["content"])
    assert values["history.transferProcessorMaxPollRPS"] == [{"value": 1000, "constraints": {}}]


def test_namespace_job_creates_the_namespace_the_orchestrator_uses(
    compose: dict[str, Any],
) -> None:
    job = compose["services"]["temporal-namespace"]
    assert (
        _environment(job)["TEMPORAL_NAMESPACE"]
        == compose["x-orchestrator"]["environment"]["TEMPORAL_NAMESPACE"]
    )
    assert "temporal operator namespace create" in _command(job)
    assert job["depends_on"] == {"temporal": {"condition": "service_healthy"}}
    setup = compose["services"]["setup"]["depends_on"]
    assert setup["temporal-namespace"] == {"condition": "service_completed_successfully"}


def test_every_service_but_postgres_waits_on_a_condition(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "postgres":
            continue
        depends_on = service.get("depends_on")
        assert isinstance(depends_on, dict) and depends_on, f"{name}: depends_on without conditions"
        for dependency, spec in depends_on.items():
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"
            assert spec.get("condition") in WAIT_CONDITIONS, f"{name} -> {dependency}: {spec}"


def test_one_shot_jobs_are_waited_for_as_completed_and_retry_boundedly(
    compose: dict[str, Any],
) -> None:
    for name in ONE_SHOT:
        assert re.fullmatch(r"on-failure:\d+", compose["services"][name]["restart"]), name
        for other in compose["services"].values():
            spec = (other.get("depends_on") or {}).get(name)
            if spec:
                assert spec["condition"] == "service_completed_successfully"


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name in HEALTHCHECKED:
        healthcheck = compose["services"][name].get("healthcheck") or {}
        assert healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"


def test_worker_healthcheck_proves_it_polls(compose: dict[str, Any]) -> None:
    check = compose["services"]["worker"]["healthcheck"]
    assert check["test"] == ["CMD", "orchestrator", "health"]
    # The check's timeout fits a connect and two DescribeTaskQueue calls; it starts after
    # the worker had time to connect and poll.
    assert check["start_period"] == "60s" and check["retries"] >= 2


def test_setup_migrates_and_registers_search_attributes_before_worker_and_ingress(
    compose: dict[str, Any],
) -> None:
    command = _command(compose["services"]["setup"])
    assert "orchestrator migrate" in command
    assert "orchestrator search-attributes register" in command
    for name in ("worker", "ingress"):
        depends_on = compose["services"][name]["depends_on"]
        assert depends_on["setup"]["condition"] == "service_completed_successfully"


def test_orchestrator_services_share_one_environment_and_secrets(compose: dict[str, Any]) -> None:
    shared = compose["x-orchestrator"]
    for name in ORCHESTRATOR_SERVICES:
        service = compose["services"][name]
        for key in ("environment", "secrets", "env_file", "image", "build"):
            assert service[key] == shared[key], f"{name}: {key}"


# -- the image ---------------------------------------------------------------------------


def test_dockerfile_base_image_is_pinned_and_runs_as_non_root() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    bases = [line.split()[1] for line in lines if line.upper().startswith("FROM ")]
    assert bases, "Dockerfile has no FROM"
    for base in bases:
        assert _is_pinned(base), f"FROM {base} is not pinned to a version"
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, "the image must end as a non-root user"


def test_image_copies_no_dev_only_code() -> None:
    copied = [
        line.split()[1:-1]
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ")
    ]
    sources = {source for sources in copied for source in sources}
    assert not sources & {"devstack", "tests", "benchmarks", "requirements/dev.txt"}, sources
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") - 1].startswith("#") and "*" in ignore  # deny by default
    assert not any(line.startswith(("!devstack", "!tests", "!benchmarks")) for line in ignore)


# -- docker compose itself, where installed ------------------------------------------------


def _docker_compose(
    directory: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
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
        [docker, "compose", "--project-directory", str(directory), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def _host_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST")}


def test_docker_compose_config_accepts_the_file(project: Project) -> None:
    (project.directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in DOTENV.items()))
    result = _docker_compose(project.directory, "config", "-q", env=_host_env())
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_names_a_missing_required_value(project: Project) -> None:
    result = _docker_compose(project.directory, "config", "-q", env=_host_env())
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr
