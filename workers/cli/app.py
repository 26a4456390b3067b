"""`orchestrator token` and `orchestrator sql`: work as the app does, with a user's API
token and SQL as that user."""

from __future__ import annotations

import argparse
from typing import Any

from workers.cli.common import (
    CliError,
    apply_dev_secrets_if_local,
    emit,
    operator_context,
    uuid_arg,
)


def add_commands(sub: Any) -> None:
    """Add the ``token`` and ``sql`` commands."""
    token = sub.add_parser(
        "token",
        help="an access token for a user of the HTTP API (signed with SUPABASE_JWT_SECRET)",
    )
    token.add_argument("--user", required=True, type=uuid_arg, help="the user (auth.users.id)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds it is valid (default 3600)")
    token.add_argument(
        "--export",
        action="store_true",
        help="print shell exports of ORCHESTRATOR_API and ORCHESTRATOR_TOKEN",
    )
    token.set_defaults(run=token_cmd)
    sql = sub.add_parser(
        "sql",
        help="run one SQL statement as a signed-in user, as the app does through PostgREST",
    )
    sql.add_argument("--as-user", required=True, type=uuid_arg, help="the user (auth.users.id)")
    sql.add_argument("statement", help="the statement; row level security applies")
    sql.set_defaults(run=sql_cmd)


async def token_cmd(args: argparse.Namespace) -> None:
    """Mint a user's token the way Supabase's legacy (HS256) system signs one."""
    from ingress.api.auth import mint_token
    from workers.runtime_file import apply_runtime
    from workers.settings import load_settings

    apply_runtime()
    apply_dev_secrets_if_local()
    settings = load_settings()
    if settings.supabase_jwt_secret is None or settings.supabase_url is None:
        raise CliError(
            "a token needs SUPABASE_URL and SUPABASE_JWT_SECRET (the legacy shared secret); "
            "with asymmetric keys only, sign in through Supabase Auth instead"
        )
    if not 1 <= args.ttl <= 7 * 86400:
        raise CliError("--ttl must be between 1 second and 7 days")
    token = mint_token(
        settings.supabase_jwt_secret.get_secret_value(),
        supabase_url=str(settings.supabase_url),
        user_id=args.user,
        ttl=args.ttl,
    )
    api = f"{settings.ingress_url}/v1"
    text = token
    if args.export:
        text = f"export ORCHESTRATOR_API={api}\nexport ORCHESTRATOR_TOKEN={token}"
    emit(args, {"token": token, "api": api, "user_id": str(args.user)}, text)


async def sql_cmd(args: argparse.Namespace) -> None:
    """Run a statement as the user: role ``authenticated`` with the user's claims."""
    import psycopg

    from db.app_api import as_user, run_statement

    _, pool, _ = await operator_context()
    claims = {"sub": str(args.as_user), "role": "authenticated", "aud": "authenticated"}
    rows: list[dict[str, Any]] = []
    async with pool:
        try:
            async with as_user(pool, claims) as conn:
                rows, count = await run_statement(conn, args.statement)
        except psycopg.Error as exc:
            message = exc.diag.message_primary or str(exc)
            raise CliError(f"refused: {message}") from None
    lines = [", ".join(f"{k}: {v}" for k, v in row.items()) for row in rows]
    emit(args, rows, "\n".join(lines) or f"{count} rows")
