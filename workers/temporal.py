"""Temporal clients for every process: one data converter (encrypting every payload,
``workers/codec.py``), and the connection the standard way: ``temporalio.envconfig``
reads the ``TEMPORAL_*`` variables and the profile file every Temporal tool reads
(address, namespace, API key, mTLS client certificate and key, server CA, server name),
with our settings (the same names) on top."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, Plugin
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from workers.codec import data_converter
from workers.keys import Keyring
from workers.logging import get_logger
from workers.settings import (
    DEPRECATED_NAMES,
    Settings,
    SettingsError,
    deprecated_names_in_env,
)
from workflows.search_attributes import ALL_KEYS

log = get_logger("workers.temporal")

# Settings passed to envconfig under the variable it reads (the same name in upper case).
ENVCONFIG_SETTINGS = (
    "temporal_address",
    "temporal_namespace",
    "temporal_api_key",
    "temporal_tls",
    "temporal_tls_client_cert_path",
    "temporal_tls_client_key_path",
    "temporal_tls_server_ca_cert_path",
    "temporal_tls_server_name",
    "temporal_profile",
    "temporal_config_file",
)
DEFAULT_NAMESPACE = "default"


def _envconfig_env(settings: Settings) -> dict[str, str]:
    """The environment envconfig reads: the process's TEMPORAL_* variables it knows beyond
    our settings (TEMPORAL_GRPC_META_*, TEMPORAL_TLS_*_DATA, ...), then every Temporal
    setting that was set (a default is not "set": the profile file's value wins over it)."""
    ours = {name.upper() for name in ENVCONFIG_SETTINGS} | set(DEPRECATED_NAMES)
    env = {k: v for k, v in os.environ.items() if k.startswith("TEMPORAL_") and k not in ours}
    for name in ENVCONFIG_SETTINGS:
        value: Any = getattr(settings, name)
        if name not in settings.model_fields_set or value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[name.upper()] = str(value)
    return env


def connect_config(settings: Settings) -> ClientConnectConfig:
    """``Client.connect`` arguments from envconfig; ``SettingsError`` (one line) if the
    profile cannot be read or names no address."""
    for old, new in deprecated_names_in_env().items():
        log.warning("deprecated setting: use the standard name", setting=old, use=new)
    try:
        profile = ClientConfigProfile.load(
            override_env_vars=_envconfig_env(settings),
            config_file_strict=True,  # a misspelt key fails here, not silently
        )
        config = profile.to_client_connect_config()
    except Exception as exc:  # the core's ConfigError, a TLS file that cannot be read
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SettingsError(f"invalid Temporal client configuration: {first}") from None
    if not config.get("target_host"):
        raise SettingsError(
            "missing setting TEMPORAL_ADDRESS: set the environment variable TEMPORAL_ADDRESS "
            "(or an address in the profile of TEMPORAL_CONFIG_FILE)"
        )
    config.setdefault("namespace", DEFAULT_NAMESPACE)
    return config


async def connect_client(
    settings: Settings, *, runtime: Runtime | None = None, plugins: Sequence[Plugin] = ()
) -> Client:
    """Connect as ``connect_config`` says, with the encrypting pydantic data converter
    (and ``plugins``: tracing, ``workers/telemetry.py``)."""
    config = connect_config(settings)
    converter = data_converter(Keyring.from_settings(settings))
    return await Client.connect(
        **config, data_converter=converter, runtime=runtime, plugins=list(plugins)
    )


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    """Names of the project's search attributes the namespace does not have yet."""
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return [key.name for key in ALL_KEYS if key.name not in resp.custom_attributes]


async def register_search_attributes(
    client: Client, namespace: str, *, timeout: float = 30.0
) -> list[str]:
    """Add the missing search attributes and wait until the server lists them all.

    Registering right after a server starts can race its visibility store, so the
    call is repeated until every name is visible. Returns the names it added.
    """
    wanted = {k.name: IndexedValueType.ValueType(int(k.indexed_value_type)) for k in ALL_KEYS}
    try:
        missing = await missing_search_attributes(client, namespace)
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        # The time-skipping test server cannot list them, but accepts additions.
        await _add(client, namespace, wanted)
        return list(wanted)
    if missing:
        await _add(client, namespace, {name: wanted[name] for name in missing})
    deadline = asyncio.get_running_loop().time() + timeout
    while still := await missing_search_attributes(client, namespace):
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"search attributes not visible after {timeout}s: {still}")
        await asyncio.sleep(0.2)
    return missing


async def _add(
    client: Client, namespace: str, attributes: dict[str, IndexedValueType.ValueType]
) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(namespace=namespace, search_attributes=attributes)
    )
