"""Real failures injected into the test database (not mocks): a trigger that makes the
first update of a column fail, as a worker crash after an external call would."""

from __future__ import annotations

from psycopg import AsyncConnection, sql

FAIL_FIRST_UPDATE = """
CREATE SEQUENCE fault_injection_seq;
CREATE FUNCTION fail_first_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('fault_injection_seq') = 1 THEN
        RAISE EXCEPTION 'injected failure after the external call';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fail_first_update BEFORE UPDATE OF {column} ON {table}
    FOR EACH ROW WHEN (NEW.{column} IS NOT NULL) EXECUTE FUNCTION fail_first_update();
"""


async def fail_first_update(conn: AsyncConnection, table: str, column: str) -> None:  # type: ignore[type-arg]
    """Make the first update that sets ``table.column`` fail once; count in the sequence."""
    await conn.execute(
        sql.SQL(FAIL_FIRST_UPDATE).format(
            table=sql.Identifier(table), column=sql.Identifier(column)
        )
    )


async def failures_injected(conn: AsyncConnection) -> int:  # type: ignore[type-arg]
    """How many updates went through the trigger (the first one failed)."""
    row = await (await conn.execute("SELECT last_value FROM fault_injection_seq")).fetchone()
    assert row is not None
    return int(row["last_value"] if isinstance(row, dict) else row[0])
