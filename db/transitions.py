"""The one mechanism behind every status change: tagged, compare-and-set, idempotent.

A transition function updates a row only if its status is one the transition may leave
from. If the row already has the target status, the call is a retry of a transition
that committed, and it returns the row without writing. Anything else is refused.
The database's own triggers enforce the same state machine and write the transition log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection, sql
from pydantic import BaseModel


class TransitionContext(BaseModel):
    """Who makes a change and why; recorded in ``status_transitions``."""

    reason: str | None = None
    workflow_id: str | None = None
    run_id: str | None = None


class InvalidTransition(RuntimeError):
    """The row is in a status the requested transition may not leave from."""

    def __init__(self, entity: str, entity_id: object, current: str, wanted: str) -> None:
        super().__init__(f"{entity} {entity_id} is {current!r}; cannot move to {wanted!r}")
        self.entity, self.entity_id, self.current, self.wanted = entity, entity_id, current, wanted


class RowNotFound(LookupError):
    """No row with that id."""

    def __init__(self, entity: str, entity_id: object) -> None:
        super().__init__(f"no {entity} row with id {entity_id}")


Conn = AsyncConnection[dict[str, Any]]
NOW = sql.SQL("now()")  # pass as a value to set a column to the database's clock

# The UPDATE tags itself: the row it changes must pass these set_config calls, which run
# before the row is written and so before the transition-log trigger (an AFTER trigger,
# fired at the end of the statement) reads them. They are local to the transaction: on an
# autocommit connection they last as long as the statement (a transition is one round
# trip), inside a caller's transaction until it ends.
_TAG = sql.SQL(
    "set_config('orchestrator.reason', %(reason)s, true) IS NOT NULL "
    "AND set_config('orchestrator.workflow_id', %(workflow_id)s, true) IS NOT NULL "
    "AND set_config('orchestrator.run_id', %(run_id)s, true) IS NOT NULL"
)


async def transition(
    conn: Conn,
    *,
    table: str,
    entity_id: object,
    to_status: str,
    from_statuses: Sequence[str],
    ctx: TransitionContext,
    values: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """Move ``table`` row ``entity_id`` to ``to_status`` in one tagged UPDATE.

    ``values`` sets further columns in the same UPDATE (``NOW`` for the database clock,
    or another SQL expression). Returns the row as it is after. Runs in the caller's
    transaction if there is one; on an autocommit connection it commits by itself.
    """
    assignments: list[sql.Composable] = [sql.SQL("status = %(to_status)s")]
    params: dict[str, object] = {
        "id": entity_id,
        "to_status": to_status,
        "from_statuses": list(from_statuses),
        "reason": ctx.reason or "",
        "workflow_id": ctx.workflow_id or "",
        "run_id": ctx.run_id or "",
    }
    for i, (column, value) in enumerate((values or {}).items()):
        target: sql.Composable
        if isinstance(value, sql.Composable):
            target = value  # an SQL expression such as NOW, not a value
        else:
            target = sql.Placeholder(f"v{i}")
            params[f"v{i}"] = value
        assignments.append(sql.SQL("{} = {}").format(sql.Identifier(column), target))
    query = sql.SQL(
        "UPDATE {table} SET {assignments} "
        "WHERE id = %(id)s AND status = ANY(%(from_statuses)s) AND {tag} RETURNING *"
    ).format(table=sql.Identifier(table), assignments=sql.SQL(", ").join(assignments), tag=_TAG)
    row = await (await conn.execute(query, params)).fetchone()
    if row is not None:
        return row
    current = await (
        await conn.execute(
            sql.SQL("SELECT * FROM {} WHERE id = %(id)s").format(sql.Identifier(table)),
            {"id": entity_id},
        )
    ).fetchone()
    if current is None:
        raise RowNotFound(table, entity_id)
    if current["status"] == to_status:
        return current  # a retry of a transition that already committed
    raise InvalidTransition(table, entity_id, str(current["status"]), to_status)
