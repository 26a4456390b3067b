"""What every database activity needs from the running activity."""

from __future__ import annotations

from temporalio import activity

from db.transitions import TransitionContext


def transition_context(reason: str) -> TransitionContext:
    """The transition-log context of the current activity: its workflow run and a reason."""
    info = activity.info()
    return TransitionContext(
        reason=reason, workflow_id=info.workflow_id, run_id=info.workflow_run_id
    )
