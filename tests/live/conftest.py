"""Live contract tests: the connectors and clients against the real services.

Run with ``./run tests -m live`` (the default run deselects them). Each vendor's tests run
only when its keys are in the environment; the run ends with one line naming the vendors
that ran and those skipped for lack of keys. They call the vendors' real hosts (the
defaults of the settings model), never a URL from the environment, so a shell pointed at
the emulators cannot turn them into emulator tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from workers.settings import Settings


@dataclass(frozen=True)
class Vendor:
    """A vendor's live tests and the environment variables they need."""

    name: str
    needs: tuple[str, ...]
    optional: tuple[str, ...] = ()


VENDORS = {
    v.name: v
    for v in (
        Vendor("resend", ("RESEND_API_KEY",)),
        Vendor("steel", ("STEEL_API_KEY",)),
        Vendor("supermemory", ("SUPERMEMORY_API_KEY",)),
        Vendor("higgsfield", ("LIVE_HIGGSFIELD_KEY",)),  # "<key id>:<key secret>"
        Vendor("meta", ("LIVE_META_ACCESS_TOKEN", "LIVE_META_AD_ACCOUNT_ID")),
        Vendor(
            "google_ads",
            (
                "GOOGLE_ADS_DEVELOPER_TOKEN",
                "LIVE_GOOGLE_ADS_ACCESS_TOKEN",
                "LIVE_GOOGLE_ADS_CUSTOMER_ID",
            ),
            ("LIVE_GOOGLE_ADS_LOGIN_CUSTOMER_ID",),
        ),
    )
}
_outcome: dict[str, str] = {}  # vendor -> "ran" or the variables it lacked


def real_url(setting: str) -> str:
    """The vendor's real base URL: the settings model's default, not the environment's."""
    return str(Settings.model_fields[setting].default).rstrip("/")


def keys_for(vendor: str) -> dict[str, str]:
    """The vendor's keys from the environment, or skip its test naming what is missing."""
    spec = VENDORS[vendor]
    missing = [name for name in spec.needs if not os.environ.get(name)]
    if missing:
        _outcome.setdefault(vendor, "set " + ", ".join(missing))
        pytest.skip(f"{vendor}: no keys ({', '.join(missing)} unset)")
    _outcome[vendor] = "ran"
    return {n: os.environ[n] for n in spec.needs + spec.optional if os.environ.get(n)}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly which vendors' live tests ran and which were skipped for lack of keys."""
    if not _outcome:
        return
    ran = sorted(v for v, o in _outcome.items() if o == "ran")
    skipped = sorted((v, o) for v, o in _outcome.items() if o != "ran")
    terminalreporter.write_sep("=", "live contract tests")
    terminalreporter.write_line(f"ran against: {', '.join(ran) or 'no vendor'}")
    for vendor, needs in skipped:
        terminalreporter.write_line(f"SKIPPED {vendor}: no keys ({needs})")
