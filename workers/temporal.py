"""Temporal clients for every process: one data converter (encrypting every payload,
``workers/codec.py``), TLS/API key, search attributes."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, TLSConfig
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from workers.codec import data_converter
from workers.keys import Keyring
from workers.settings import Settings
from workflows.search_attributes import ALL_KEYS


async def connect_client(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """Connect to ``TEMPORAL_ADDRESS`` with the encrypting pydantic data converter."""
    settings.require("temporal_address")
    converter = data_converter(Keyring.from_settings(settings))
    assert settings.temporal_address is not None
    tls: TLSConfig | bool = settings.temporal_tls
    if settings.temporal_tls_cert_path and settings.temporal_tls_key_path:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert_path.read_bytes(),
            client_private_key=settings.temporal_tls_key_path.read_bytes(),
        )
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=converter,
        tls=tls or bool(api_key),
        api_key=api_key,
        runtime=runtime,
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
