"""The project's custom search attributes: one registry for the dev server, tests and clusters.

Values are stored unencrypted by Temporal: ids and statuses only, never personal data.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

JOB_STATUS = SearchAttributeKey.for_keyword("JobStatus")
USER_ID = SearchAttributeKey.for_keyword("UserId")
PLATFORM = SearchAttributeKey.for_keyword("Platform")
AWAITING_SINCE = SearchAttributeKey.for_datetime("AwaitingSince")
GENERATION_STATUS = SearchAttributeKey.for_keyword("GenerationStatus")
MODEL = SearchAttributeKey.for_keyword("Model")
CONNECTION_ID = SearchAttributeKey.for_keyword("ConnectionId")
SYNC_OUTCOME = SearchAttributeKey.for_keyword("SyncOutcome")

ALL_KEYS: tuple[SearchAttributeKey, ...] = (
    JOB_STATUS,
    USER_ID,
    PLATFORM,
    AWAITING_SINCE,
    GENERATION_STATUS,
    MODEL,
    CONNECTION_ID,
    SYNC_OUTCOME,
)


def dev_server_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL_KEYS:
        flags += ["--search-attribute", f"{key.name}={_cli_type(key)}"]
    return flags


def _cli_type(key: SearchAttributeKey) -> str:
    return {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime"}[
        int(key.indexed_value_type)
    ]
