"""`orchestrator migrate`: apply the database migrations, or show what they would change."""

from __future__ import annotations

import argparse
from typing import Any

from workers.cli.common import CliError, emit
from workers.settings import load_settings


def add_commands(sub: Any) -> None:
    """Add the ``migrate`` command."""
    mig = sub.add_parser("migrate", help="apply pending database migrations")
    mig.add_argument(
        "--plan",
        action="store_true",
        help="print what the migrations would change in the schema, and apply nothing",
    )
    mig.set_defaults(run=migrate_cmd)


async def migrate_cmd(args: argparse.Namespace) -> None:
    """Apply pending migrations (``--plan``: describe them and apply nothing)."""
    from db.migrate import MigrationError, plan, run_migrations

    settings = load_settings()
    settings.require("database_url")
    url = settings.migration_url
    assert url is not None
    try:
        report = await (plan(url) if args.plan else run_migrations(url))
    except MigrationError as exc:
        raise CliError(str(exc)) from None
    verb = "would apply" if args.plan else "applied"
    lines = [f"{verb} {name}" for name in report.applied] or ["database is up to date"]
    lines += report.changes + [f"note: {note}" for note in report.notes]
    emit(
        args,
        {
            "plan": args.plan,
            "applied": report.applied,
            "changes": report.changes,
            "notes": report.notes,
        },
        "\n".join(lines),
    )
