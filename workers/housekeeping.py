"""Wiring of issue 28's housekeeping: token endpoints from settings, and its activities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from activities.credential_suspension import CredentialSuspension
from activities.credentials import CredentialBox
from activities.dashboards import DashboardActivities
from activities.google_tokens import GoogleAccessTokens
from activities.housekeeping_schedules import HousekeepingScheduleActivities
from activities.object_store import ObjectStore
from activities.platform_tokens import TokenEndpoints
from activities.retention import RetentionActivities
from activities.token_refresh import TokenRefreshActivities
from db.pool import Pool
from workers.settings import Settings


def token_endpoints(settings: Settings) -> TokenEndpoints:
    """The platforms' token endpoints and the apps' credentials, from settings."""

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    return TokenEndpoints(
        google_oauth_url=str(settings.google_oauth_url).rstrip("/"),
        google_client_id=settings.google_oauth_client_id,
        google_client_secret=secret(settings.google_oauth_client_secret),
        meta_graph_url=str(settings.meta_graph_url).rstrip("/"),
        meta_api_version=settings.meta_graph_api_version,
        meta_app_id=settings.meta_app_id,
        meta_app_secret=secret(settings.meta_app_secret),
        threads_url=str(settings.threads_graph_url).rstrip("/"),
        threads_app_secret=secret(settings.threads_app_secret),
    )


def credential_suspension(settings: Settings, pool: Pool) -> CredentialSuspension:
    """Suspensions tell the owner's notification channels (deliveries run on the
    workflows' queue), else email the owner through Resend when the worker has its key."""
    sender = settings.email_from if settings.resend_api_key is not None else None
    return CredentialSuspension(pool, sender=sender, workflow_queue=settings.temporal_task_queue)


def housekeeping_activities(
    pool: Pool,
    credentials: CredentialBox,
    http: httpx.AsyncClient,
    endpoints: TokenEndpoints,
    suspension: CredentialSuspension,
    objects: ObjectStore | None,
) -> list[Callable[..., Any]]:
    """The token-refresh, retention, dashboard and schedule activities."""
    tokens = TokenRefreshActivities(pool, credentials, http, endpoints, suspension)
    retention = RetentionActivities(pool, objects)
    dashboards = DashboardActivities(pool)
    schedules = HousekeepingScheduleActivities(pool)
    return [
        tokens.refresh_long_lived_token,
        tokens.suspend_credentials,
        retention.apply_retention,
        dashboards.refresh_dashboard_view,
        schedules.reconcile_housekeeping_schedules,
    ]


def google_access_tokens(http: httpx.AsyncClient, endpoints: TokenEndpoints) -> GoogleAccessTokens:
    """This process's cache of Google Ads access tokens."""
    return GoogleAccessTokens(http, endpoints)
