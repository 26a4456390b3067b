"""The settings table of docs/configuration.md names every setting, and marks the secrets."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr

from workers.settings import Settings

CONFIGURATION = Path(__file__).parent.parent / "docs" / "configuration.md"


def table() -> dict[str, list[str]]:
    """Setting name → the table row's cells."""
    section = CONFIGURATION.read_text().split("### Settings", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z_]+)`", cells[0]):
                rows[name] = cells
    return rows


def test_every_setting_is_documented_and_nothing_else() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert set(table()) == fields


def test_every_secret_is_marked_secret() -> None:
    rows = table()
    for name, field in Settings.model_fields.items():
        if SecretStr in getattr(field.annotation, "__args__", (field.annotation,)):
            assert rows[name.upper()][4] in ("yes", "key is"), name
