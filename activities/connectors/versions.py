"""The ad platforms' API versions: which exist, when each is sunset, and the startup check.

Both vendors retire versions on a published schedule; a call to a retired version fails
(Google: 400 ``UNSUPPORTED_VERSION``, later 404; Meta: error #2635, or a silent move to
another version). The version is a setting (``GOOGLE_ADS_API_VERSION``,
``META_GRAPH_API_VERSION``); the worker warns at startup when the configured one is
within ``WARN_DAYS`` of its sunset, or past it.

The dates below were read on 2026-12-03 from the vendors' own pages (sources next to each
table). Update them, and the defaults in ``workers/settings.py``, when a vendor publishes
a new schedule.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date

logger = logging.getLogger(__name__)

WARN_DAYS = 60


@dataclass(frozen=True)
class Version:
    """One API version: when it came out and when it stops working (None: not published in
    the sources read, or not announced)."""

    released: date | None
    sunset: date | None


# Google Ads API (REST), read 2026-12-03. Sources: the Google Ads developer blog's sunset
# reminders ("v20 will sunset on June 10, 2026", posted 2026-04-29; v21 on August 5, 2026,
# posted 2026-06-25; v22 on October 7, 2026, posted 2026-09-02), "Announcing v26 of the
# Google Ads API" (2026-10-14) and "More frequent releases coming" (2025-09-04), whose 2026
# table projects the sunsets of v23..v26 by month only (Feb, May, Aug, Nov 2027). The day of
# those months is not published in what could be read: the 1st is taken, so the warning
# comes early rather than late. Release days: v20 from the sunset-dates page, v25 from a
# third-party changelog ("GA since 2026-07-22"), v26 from its announcement; the others were
# not found (None).
GOOGLE_ADS_VERSIONS: dict[str, Version] = {
    "v20": Version(date(2025, 6, 4), date(2026, 6, 10)),
    "v21": Version(None, date(2026, 8, 5)),
    "v22": Version(None, date(2026, 10, 7)),
    "v23": Version(None, date(2027, 2, 1)),
    "v24": Version(None, date(2027, 5, 1)),
    "v25": Version(date(2026, 7, 22), date(2027, 8, 1)),
    "v26": Version(date(2026, 10, 14), date(2027, 11, 1)),
}

# Meta Marketing API, read 2026-12-03 from "Marketing API version history"
# (developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/
# versions). The insights edge is a Marketing API endpoint, so these dates govern it, not the
# Graph API table (which keeps v21.0 until 2027-01-21). v26.0 and v27.0: expiry "TBD".
META_VERSIONS: dict[str, Version] = {
    "v21.0": Version(date(2024, 10, 2), date(2025, 9, 9)),
    "v22.0": Version(date(2025, 1, 21), date(2026, 2, 19)),
    "v23.0": Version(date(2025, 5, 29), date(2026, 6, 9)),
    "v24.0": Version(date(2025, 10, 8), date(2026, 11, 10)),
    "v25.0": Version(date(2026, 2, 18), date(2027, 2, 23)),
    "v26.0": Version(date(2026, 7, 29), None),
    "v27.0": Version(date(2026, 11, 4), None),
}

GOOGLE_ADS_VERSION_FORMAT = re.compile(r"^v\d{1,3}$")
META_VERSION_FORMAT = re.compile(r"^v\d{1,3}\.0$")


@dataclass(frozen=True)
class VersionCheck:
    """What the startup check found for one vendor's configured version."""

    vendor: str
    setting: str
    version: str
    level: int  # logging level: INFO (fine), WARNING (sunset soon or unknown), ERROR (sunset)
    message: str


def check_version(
    vendor: str, setting: str, version: str, known: dict[str, Version], today: date
) -> VersionCheck:
    """Compare a configured version with the vendor's published schedule."""
    entry = known.get(version)
    if entry is None:
        message = (
            f"{vendor} API version {version} ({setting}) is not in the schedule this build "
            f"knows ({', '.join(known)}); check it against the vendor's sunset dates"
        )
        return VersionCheck(vendor, setting, version, logging.WARNING, message)
    if entry.sunset is None:
        message = f"{vendor} API version {version}: no sunset announced"
        return VersionCheck(vendor, setting, version, logging.INFO, message)
    days = (entry.sunset - today).days
    if days <= 0:
        message = (
            f"{vendor} API version {version} ({setting}) was sunset on {entry.sunset}: every "
            f"call will fail; set {setting} to a live version"
        )
        return VersionCheck(vendor, setting, version, logging.ERROR, message)
    if days <= WARN_DAYS:
        message = (
            f"{vendor} API version {version} ({setting}) is sunset on {entry.sunset}, in "
            f"{days} days; move {setting} to a newer version before then"
        )
        return VersionCheck(vendor, setting, version, logging.WARNING, message)
    message = f"{vendor} API version {version}: sunset on {entry.sunset}, in {days} days"
    return VersionCheck(vendor, setting, version, logging.INFO, message)


def check_configured_versions(
    google_ads_version: str, meta_version: str, today: date
) -> list[VersionCheck]:
    """The startup check of both ad platforms' configured versions."""
    return [
        check_version(
            "Google Ads", "GOOGLE_ADS_API_VERSION", google_ads_version, GOOGLE_ADS_VERSIONS, today
        ),
        check_version("Meta", "META_GRAPH_API_VERSION", meta_version, META_VERSIONS, today),
    ]


def log_version_checks(checks: list[VersionCheck]) -> None:
    """Log each check at its level (warnings and errors are what operators must act on)."""
    for check in checks:
        logger.log(check.level, check.message)
