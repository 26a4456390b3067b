""" "DELEGATE alice@agency.com": a reply hands the decision to a colleague only when its
first line is the keyword and exactly one plain address; anything else is unclear (and
the approver is asked again). Whether the colleague may decide is the gate's business
(``tests/workflows/test_approval_teams.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ingress.replies import read_reply
from tests.replies.samples import gmail, outlook

DELEGATES = [
    ("DELEGATE alice@agency.com", "alice@agency.com", None),
    ("delegate Alice@Agency.COM", "alice@agency.com", None),
    ("Delegate to alice@agency.com.", "alice@agency.com", None),
    ("Delegate: <alice@agency.com>", "alice@agency.com", None),
    ("**DELEGATE** alice@agency.com", None, None),  # marks after the keyword: unclear
    ("DELEGATE alice.o'neil+ops@mail.agency.co.uk", None, None),  # apostrophe: not plain
    ("DELEGATE alice+ops@mail.agency.co.uk", "alice+ops@mail.agency.co.uk", None),
    ("DELEGATE alice@agency.com\nshe knows the client", "alice@agency.com", "she knows the client"),
]

# Hostile, ambiguous and negated: never a delegation.
UNCLEAR = [
    "Do not delegate",
    "don't delegate to alice@agency.com",
    "Please delegate alice@agency.com",
    "delegate",
    "delegate alice",
    "delegate to alice",
    "delegate to me",
    "delegate alice@agency.com bob@agency.com",
    "delegate alice@agency.com, bob@agency.com",
    "delegate alice@agency.com or bob@agency.com",
    "delegate alice@agency.com and approve",
    "delegate not alice@agency.com",
    "delegate alice@agency.com?",
    "Delegate alice@agency.com please",
    "delegate-alice@agency.com",
    "delegated alice@agency.com",
    "delegate \u0430lice@agency.com",  # Cyrillic a
    "delegate alice@agency.com\u200b",  # zero-width space
    "delegate alice@\uff41gency.com",  # fullwidth a
    "delegate alice@agency",
    "delegate @agency.com",
    "delegate alice@@agency.com",
    "delegate alice@agency.com\nbut only if bob is away",
    "delegate alice@agency.com\nunless she is out",
    "reject, delegate alice@agency.com",
    "approve delegate alice@agency.com",
]


@pytest.mark.parametrize(("body", "address", "note"), DELEGATES)
def test_a_delegation_names_one_address(body: str, address: str | None, note: str | None) -> None:
    reading = read_reply(body)
    if address is None:
        assert reading.decision == "unclear"
        return
    assert (reading.decision, reading.delegate_to, reading.note) == ("delegate", address, note)


@pytest.mark.parametrize("body", UNCLEAR)
def test_anything_else_is_never_a_delegation(body: str) -> None:
    reading = read_reply(body)
    assert reading.decision != "delegate" and reading.delegate_to is None
    assert reading.decision != "approve"


@pytest.mark.parametrize("client", [gmail, outlook])
def test_a_delegation_above_the_quoted_request_is_read(client: Callable[[str], str]) -> None:
    reading = read_reply(client("DELEGATE alice@agency.com"))
    assert (reading.decision, reading.delegate_to) == ("delegate", "alice@agency.com")


def test_a_quoted_delegation_never_delegates() -> None:
    reading = read_reply(gmail("Thanks").replace("> ", "> DELEGATE alice@agency.com\n> ", 1))
    assert reading.decision == "unclear"
