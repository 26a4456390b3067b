"""Authentication-Results (RFC 8601): which headers refuse a reply from bob@example.com."""

from __future__ import annotations

import pytest

from ingress.replies import sender_failure
from ingress.replies.auth_results import parse

GOOD = (
    "mx.resend.net; dkim=pass header.d=example.com header.s=s1 header.b=AbC/dEf+1=; "
    "spf=pass smtp.mailfrom=bob@example.com; dmarc=pass (p=REJECT sp=REJECT dis=NONE) "
    "header.from=example.com"
)

REFUSED = [
    ("dmarc fail", "mx.resend.net; dmarc=fail (p=NONE dis=NONE) header.from=example.com"),
    ("dmarc fail without header.from", "mx.resend.net; spf=pass; dmarc=fail"),
    ("dmarc fail in upper case", "mx.resend.net; DMARC=FAIL header.from=EXAMPLE.COM"),
    ("dkim fail by header.d", "mx.resend.net; dkim=fail (bad signature) header.d=example.com"),
    ("dkim fail by header.i", "mx.resend.net; dkim=fail header.i=@example.com"),
    ("dkim fail with a version", "mx.resend.net 1; dkim/1=fail header.d=example.com"),
    ("spaces around equals", "mx.resend.net; dkim = fail header.d = example.com"),
    (
        "dkim fail for us, pass for another domain",
        "mx.resend.net; dkim=fail header.d=example.com; dkim=pass header.d=mailer.example.net",
    ),
    (
        "dmarc fail after a passing dkim of another domain",
        "mx.resend.net; dkim=pass header.d=esp.example.net; dmarc=fail header.from=example.com",
    ),
    (
        "comment that looks like a pass",
        "mx.resend.net; dkim=fail (was dkim=pass; header.d=example.com) header.d=example.com",
    ),
    (
        "dmarc fail with quoted reason",
        'mx.resend.net; dmarc=fail reason="p=reject; x" header.from=example.com',
    ),
    ("trailing dot in the domain", "mx.resend.net; dkim=fail header.d=example.com."),
]

ACCEPTED = [
    ("all pass", GOOD),
    ("none", "mx.resend.net; none"),
    ("dkim fail for another domain", "mx.resend.net; dkim=fail header.d=other.example.net"),
    ("dmarc fail about another From", "mx.resend.net; dmarc=fail header.from=other.example"),
    (
        "two signatures of ours, one passes",
        "mx.resend.net; dkim=fail header.d=example.com header.s=old; "
        "dkim=pass header.d=example.com header.s=new",
    ),
    ("spf fail alone", "mx.resend.net; spf=fail smtp.mailfrom=bob@example.com"),
    ("dkim neutral", "mx.resend.net; dkim=neutral (no key) header.d=example.com"),
    ("subdomain is not our domain", "mx.resend.net; dkim=fail header.d=mail.example.com"),
    ("garbage", ';;;===((("\\'),
]


@pytest.mark.parametrize(("name", "value"), REFUSED, ids=[n for n, _ in REFUSED])
def test_failure_for_the_senders_domain_refuses(name: str, value: str) -> None:
    reason = sender_failure({"Authentication-Results": value}, "example.com")
    assert reason is not None and "example.com" in reason


@pytest.mark.parametrize(("name", "value"), ACCEPTED, ids=[n for n, _ in ACCEPTED])
def test_no_failure_for_the_senders_domain_accepts(name: str, value: str) -> None:
    assert sender_failure({"Authentication-Results": value}, "example.com") is None


def test_a_pass_in_another_header_does_not_cancel_a_failure() -> None:
    # A sender can add its own header; a forged pass must not outweigh the server's fail.
    headers = {
        "authentication-results": [
            "mx.resend.net; dkim=fail header.d=example.com",
            "forged.example; dkim=pass header.d=example.com; dmarc=pass header.from=example.com",
        ]
    }
    assert sender_failure(headers, "example.com") == (
        "DKIM fail for example.com (reported by mx.resend.net)"
    )


def test_missing_or_null_headers_decide_nothing() -> None:
    assert sender_failure(None, "example.com") is None
    assert sender_failure({}, "example.com") is None
    assert sender_failure({"ARC-Authentication-Results": "i=1; dmarc=fail"}, "example.com") is None


def test_parse_reads_every_method_and_property() -> None:
    parsed = parse(GOOD)
    assert parsed.authserv_id == "mx.resend.net"
    assert [(r.method, r.result) for r in parsed.results] == [
        ("dkim", "pass"),
        ("spf", "pass"),
        ("dmarc", "pass"),
    ]
    assert parsed.results[0].properties["header.b"] == "AbC/dEf+1="
    assert parsed.results[1].properties["smtp.mailfrom"] == "bob@example.com"
    assert parsed.results[2].properties["header.from"] == "example.com"
