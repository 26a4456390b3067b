"""``activities.failures.classified``: a vendor's error becomes the failure its classifier
says, and a retryable one is re-raised as it was (never as its own cause)."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.failures import classified


class VendorError(Exception):
    """An error of the vendor's SDK."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def classify(exc: VendorError) -> Exception:
    """5xx and 429 retry; anything else is refused for good."""
    if exc.status >= 500 or exc.status == 429:
        return exc
    return ApplicationError(f"refused ({exc.status})", type="Refused", non_retryable=True)


@pytest.mark.parametrize("status", [500, 502, 429])
def test_a_retryable_error_is_raised_as_it_was(status: int) -> None:
    """The same object, without itself as its cause (a cycle the converter recurses on)."""
    error = VendorError(status)
    with pytest.raises(VendorError) as raised, classified(VendorError, classify):
        raise error
    assert raised.value is error
    assert raised.value.__cause__ is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_refused_call_becomes_a_non_retryable_failure_caused_by_it(status: int) -> None:
    """The classifier's failure is raised, with the vendor's error as its cause."""
    error = VendorError(status)
    with pytest.raises(ApplicationError) as raised, classified(VendorError, classify):
        raise error
    assert raised.value.non_retryable and raised.value.type == "Refused"
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "other",
    [ValueError("not the vendor's"), ApplicationError("ours", type="Mine"), KeyError("k")],
)
def test_errors_of_another_kind_pass_untouched(other: Exception) -> None:
    """Only the vendor's errors are classified; ours and the rest pass as they are."""
    with pytest.raises(type(other)) as raised, classified(VendorError, classify):
        raise other
    assert raised.value is other
    assert raised.value.__cause__ is None


def test_a_block_that_raises_nothing_passes() -> None:
    """No error: nothing is raised and the classifier is not asked."""
    asked = []

    def spy(exc: VendorError) -> Exception:
        asked.append(exc)
        return exc

    with classified(VendorError, spy):
        result = 1 + 1
    assert result == 2 and asked == []
