"""TokenRefresh: keep one Meta connection's or Threads account's long-lived token fresh.

Runs daily on the holder's schedule (``token-refresh-<holder>-<id>``): refresh the token
if it is within a week of its expiry, by this run's clock; if the platform says the grant
is gone for good, suspend the holder (its schedules paused, its owner emailed once) until
it is reconnected. Tokens never enter the workflow: only outcomes and expiry times do.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.ending import failing_in_words, handlers_done

with workflow.unsafe.imports_passed_through():
    from activities.credential_suspension import SuspendInput
    from activities.token_refresh import RefreshTokenInput, TokenRefreshActivities
    from workflows.models.housekeeping import TokenRefreshInput, TokenRefreshResult
    from workflows.search_attributes import CONNECTION_ID, PLATFORM

REFRESH_TIMEOUT = timedelta(minutes=1)
# A platform that cannot answer (5xx, network, throttled) is asked again for an hour; the
# token still has days left, and tomorrow's run tries again anyway.
REFRESH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=8,
    non_retryable_error_types=["TokenRefused", "CredentialsUnusable", "HolderGone"],
)
SUSPEND_TIMEOUT = timedelta(minutes=1)
SUSPEND_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=20)


@workflow.defn(name="TokenRefresh", failure_exception_types=[ValidationError])
class TokenRefresh:
    """One check of one holder's token: refresh when due, suspend when revoked."""

    @workflow.run
    async def run(self, request: TokenRefreshInput) -> TokenRefreshResult:
        """Refresh if due; on a revoked grant, pause and notify."""
        with failing_in_words():
            result = await self._run(request)
        await handlers_done()
        return result

    async def _run(self, request: TokenRefreshInput) -> TokenRefreshResult:
        platform = "threads" if request.holder == "threads" else "meta"
        workflow.upsert_search_attributes(
            [CONNECTION_ID.value_set(str(request.holder_id)), PLATFORM.value_set(platform)]
        )
        result = await workflow.execute_activity_method(
            TokenRefreshActivities.refresh_long_lived_token,
            RefreshTokenInput(
                holder=request.holder, holder_id=request.holder_id, as_of=workflow.now()
            ),
            start_to_close_timeout=REFRESH_TIMEOUT,
            retry_policy=REFRESH_RETRY,
            summary=f"refresh the {platform} token if due",
        )
        if result.outcome == "revoked":
            suspended = await workflow.execute_activity_method(
                TokenRefreshActivities.suspend_credentials,
                SuspendInput(
                    holder=request.holder,
                    holder_id=request.holder_id,
                    reason=result.reason or "revoked",
                ),
                start_to_close_timeout=SUSPEND_TIMEOUT,
                retry_policy=SUSPEND_RETRY,
                summary="credentials revoked: pause schedules, tell the owner",
            )
            result.paused, result.notified = suspended.paused, suspended.notified
            if suspended.note:
                result.reason = f"{result.reason}; {suspended.note}"
        workflow.set_current_details(_details(result))
        return result


def _details(result: TokenRefreshResult) -> str:
    lines = [f"**{result.label}**", f"Outcome: {result.outcome}"]
    if result.expires_at:
        lines.append(f"Token expires {result.expires_at:%Y-%m-%d %H:%M} UTC")
    if result.reason:
        lines.append(f"Why: {result.reason}")
    if result.paused:
        lines.append(f"Paused: {', '.join(result.paused)} · owner notified: {result.notified}")
    return "\n\n".join(lines)
