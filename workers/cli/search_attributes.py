"""`orchestrator search-attributes register`: add the project's search attributes to the
namespace (``workflows/search_attributes.py``)."""

from __future__ import annotations

import argparse
from typing import Any

from workers.cli.common import emit
from workers.settings import load_settings


def add_commands(sub: Any) -> None:
    """Add the ``search-attributes`` command group."""
    sa = sub.add_parser("search-attributes", help="manage Temporal search attributes")
    sa_sub = sa.add_subparsers(dest="action", required=True, metavar="ACTION")
    sa_sub.add_parser("register", help="add the project's search attributes").set_defaults(
        run=search_attributes_register
    )


async def search_attributes_register(args: argparse.Namespace) -> None:
    """Add the search attributes the namespace lacks."""
    from workers.temporal import connect_client, register_search_attributes

    settings = load_settings()
    client = await connect_client(settings)
    added = await register_search_attributes(client, client.namespace)
    emit(args, {"added": added}, "\n".join(added) or "all search attributes present")
