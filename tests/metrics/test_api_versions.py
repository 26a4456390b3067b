"""The ad platforms' API versions: settings, the startup check, and that the defaults are
versions the vendors (and so the emulators) serve today."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest

from activities.connectors.versions import (
    GOOGLE_ADS_VERSIONS,
    META_VERSIONS,
    WARN_DAYS,
    Version,
    check_version,
)
from devstack.emulators.google_ads import GoogleAdsEmulator
from devstack.emulators.meta import MetaEmulator
from workers.settings import Settings, SettingsError, load_settings
from workers.worker import ad_platform_config

KNOWN = {
    "v1": Version(date(2026, 1, 1), date(2027, 1, 31)),
    "v2": Version(date(2026, 6, 1), None),
}
SUNSET = date(2027, 1, 31)


@pytest.mark.parametrize(
    ("version", "today", "level", "words"),
    [
        ("v1", SUNSET - timedelta(days=WARN_DAYS + 1), logging.INFO, "in 61 days"),
        ("v1", SUNSET - timedelta(days=WARN_DAYS), logging.WARNING, "in 60 days"),
        ("v1", SUNSET - timedelta(days=1), logging.WARNING, "in 1 days"),
        ("v1", SUNSET, logging.ERROR, "was sunset on 2027-01-31"),
        ("v1", SUNSET + timedelta(days=400), logging.ERROR, "every call will fail"),
        ("v2", date(2030, 1, 1), logging.INFO, "no sunset announced"),
        ("v3", date(2026, 12, 3), logging.WARNING, "not in the schedule"),
        ("V1", date(2026, 12, 3), logging.WARNING, "not in the schedule"),
    ],
)
def test_the_version_check_warns_within_60_days_and_errs_past_the_sunset(
    version: str, today: date, level: int, words: str
) -> None:
    check = check_version("Vendor", "VENDOR_API_VERSION", version, KNOWN, today)

    assert check.level == level
    assert words in check.message
    if level > logging.INFO:
        assert "VENDOR_API_VERSION" in check.message


def test_the_defaults_are_live_today_and_far_from_their_sunset() -> None:
    """Fails when a default needs moving: update it and the schedules in versions.py."""
    today = date.today()
    google = Settings.model_fields["google_ads_api_version"].default
    meta = Settings.model_fields["meta_graph_api_version"].default
    for version, known in ((google, GOOGLE_ADS_VERSIONS), (meta, META_VERSIONS)):
        check = check_version("Vendor", "SETTING", version, known, today)
        assert check.level == logging.INFO, check.message
    assert int(google.removeprefix("v")) in GoogleAdsEmulator().served_versions()
    assert meta in MetaEmulator().served_versions()


def test_startup_warns_about_a_version_close_to_its_sunset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(google_ads_api_version="v23", meta_graph_api_version="v24.0")

    with caplog.at_level(logging.INFO, logger="activities.connectors.versions"):
        config = ad_platform_config(settings, today=date(2026, 12, 3))

    assert (config.google_ads_api_version, config.meta_api_version) == ("v23", "v24.0")
    levels = {r.levelno: r.getMessage() for r in caplog.records}
    assert "GOOGLE_ADS_API_VERSION" in levels[logging.WARNING]  # v23: 2027-02-01, 60 days
    assert "was sunset on 2026-11-10" in levels[logging.ERROR]  # Meta v24.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("google_ads_api_version", "26"),
        ("google_ads_api_version", "v26.0"),
        ("google_ads_api_version", "v26/../v1"),
        ("google_ads_api_version", ""),
        ("meta_graph_api_version", "v26"),
        ("meta_graph_api_version", "26.0"),
        ("meta_graph_api_version", "v26.1"),
        ("meta_graph_api_version", "v26.0/act_1"),
        ("meta_conversion_action_types", ""),
        ("meta_conversion_action_types", "purchase,,lead"),
        ("meta_conversion_action_types", "Purchase"),
        ("meta_conversion_action_types", "purchase;drop"),
    ],
)
def test_malformed_version_settings_stop_with_one_line(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as stopped:
        load_settings(**{name: value})

    assert name.upper() in str(stopped.value.code)
    assert "\n" not in str(stopped.value.code)


def test_action_types_are_a_trimmed_comma_separated_list() -> None:
    settings = load_settings(meta_conversion_action_types=" omni_purchase , purchase")
    assert settings.meta_conversion_action_types == "omni_purchase,purchase"
    config = ad_platform_config(settings)
    assert config.meta_conversion_action_types == frozenset({"omni_purchase", "purchase"})
