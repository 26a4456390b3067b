"""Resend, Steel and Supermemory, live: read-only where the API allows it."""

from __future__ import annotations

import os
import uuid

import pytest
import resend
from steel import AsyncSteel
from supermemory import AsyncSupermemory

from activities.browser import BrowserActivities
from activities.email import configure_resend
from tests.live.conftest import keys_for, real_url

pytestmark = pytest.mark.live


async def test_resend_lists_the_domains_of_the_key() -> None:
    keys = keys_for("resend")
    configure_resend(keys["RESEND_API_KEY"], real_url("resend_api_url"))

    domains = await resend.Domains.list_async()

    names = {d["name"]: d for d in domains["data"]}
    if test_domain := os.environ.get("LIVE_RESEND_TEST_DOMAIN"):
        assert test_domain in names, f"{test_domain} is not a domain of this Resend key"
        assert names[test_domain]["status"] == "verified"


async def test_steel_session_navigates_and_its_live_details_show_the_page() -> None:
    """The check production relies on: a session's browser has an address bar that
    Ctrl+L focuses, and live-details reports where its page is."""
    keys = keys_for("steel")
    client = AsyncSteel(
        steel_api_key=keys["STEEL_API_KEY"], base_url=real_url("steel_base_url"), max_retries=0
    )
    session = await client.sessions.create(session_id=str(uuid.uuid4()), api_timeout=120_000)
    try:
        browser = BrowserActivities(None, client)  # type: ignore[arg-type]  # no database
        output, image = await browser._navigate(session.id, "https://example.com/")
        assert output is not None and "example.com" in output
        assert image is not None
    finally:
        await client.sessions.release(session.id)
        await client.close()


async def test_supermemory_search_answers_in_the_shape_recall_reads() -> None:
    keys = keys_for("supermemory")
    client = AsyncSupermemory(
        api_key=keys["SUPERMEMORY_API_KEY"],
        base_url=real_url("supermemory_base_url"),
        max_retries=0,
    )
    response = await client.search(f"live-test-{uuid.uuid4()}", query="nothing here", limit=1)

    assert isinstance(response.results, list)
    for result in response.results:
        assert hasattr(result, "memory") and hasattr(result, "chunk")
