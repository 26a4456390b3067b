"""Calling the API as an app does: a bearer token and an Idempotency-Key on each POST."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.harness import Stack


async def call(
    stack: Stack,
    method: str,
    path: str,
    token: str | None,
    body: Any = None,
    *,
    key: str | None = "new",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request to the ingress; ``key="new"`` sends a fresh Idempotency-Key."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if method == "POST" and key is not None:
        sent["Idempotency-Key"] = uuid.uuid4().hex if key == "new" else key
    async with httpx.AsyncClient(base_url=stack.ingress_url, timeout=30) as http:
        return await http.request(method, path, json=body, headers=sent)
