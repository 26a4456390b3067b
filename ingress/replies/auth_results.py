"""Authentication-Results (RFC 8601): did the receiving server see DMARC or DKIM fail for
the sender's domain?

Only failures are acted on: a sender can add a forged ``Authentication-Results`` header
of its own, but a forged header can only make us refuse its reply, never accept one.
A ``dmarc=fail`` about the From domain refuses. A ``dkim=fail`` for the sender's domain
(``header.d``, else the domain of ``header.i``) refuses unless the same header reports a
passing DKIM signature of that domain (a message may carry several signatures, and one
that verifies is enough, RFC 6376 §6.1); a pass for another domain does not count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Far beyond any real header; a longer one is read only this far.
MAX_HEADER_CHARS = 8_000


@dataclass(frozen=True)
class MethodResult:
    """One ``method=result`` with its properties (``header.d``, ``header.from``, …)."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuthenticationResults:
    """One Authentication-Results header: who checked, and what each method found."""

    authserv_id: str
    results: tuple[MethodResult, ...]


def parse(value: str) -> AuthenticationResults:
    """Parse one header value; unreadable parts are skipped, never guessed."""
    text = _without_comments(value[:MAX_HEADER_CHARS])
    parts = _split(text, ";")
    authserv_id = (parts[0].split() or [""])[0].lower() if parts else ""
    results: list[MethodResult] = []
    for part in parts[1:]:
        words = _split(_tight_equals(part), " ")
        words = [w for w in (w.strip() for w in words) if w]
        if not words or words[0].lower() == "none":
            continue
        method, _, result = words[0].partition("=")
        if not result:
            continue
        properties: dict[str, str] = {}
        for word in words[1:]:
            key, eq, val = word.partition("=")
            if eq and key:
                properties.setdefault(key.lower(), _unquote(val))
        method_name = method.split("/")[0].strip().lower()
        results.append(MethodResult(method_name, _unquote(result).lower(), properties))
    return AuthenticationResults(authserv_id, tuple(results))


def header_values(headers: Mapping[str, Any] | None) -> list[str]:
    """Every Authentication-Results value among a received email's headers."""
    values: list[str] = []
    for name, value in (headers or {}).items():
        if str(name).strip().lower() != "authentication-results":
            continue
        items = value if isinstance(value, list) else [value]
        values.extend(str(v) for v in items if isinstance(v, str))
    return values


def sender_failure(headers: Mapping[str, Any] | None, domain: str) -> str | None:
    """Why the sender's domain failed DMARC or DKIM at a receiving server, or None."""
    domain = _domain(domain)
    for value in header_values(headers):
        found = parse(value)
        where = f" (reported by {found.authserv_id})" if found.authserv_id else ""
        for result in found.results:
            if result.method == "dmarc" and result.result == "fail":
                about = _domain(result.properties.get("header.from", domain))
                if about == domain:
                    return f"DMARC fail for {domain}{where}"
        dkim = [r.result for r in found.results if r.method == "dkim" and _dkim_domain(r) == domain]
        if "fail" in dkim and "pass" not in dkim:
            return f"DKIM fail for {domain}{where}"
    return None


def _dkim_domain(result: MethodResult) -> str:
    if d := result.properties.get("header.d"):
        return _domain(d)
    identity = result.properties.get("header.i", "")
    return _domain(identity.rpartition("@")[2]) if identity else ""


def _domain(value: str) -> str:
    return value.strip().strip("<>").rstrip(".").lower()


def _without_comments(text: str) -> str:
    """Drop RFC 5322 comments (nested, with quoted-pairs); keep quoted strings intact."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
            if not depth:
                out.append(char)
            continue
        if char == "\\" and (depth or quoted):
            escaped = True
            if not depth:
                out.append(char)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if not depth:
                out.append(" ")
        elif not depth:
            quoted = char == '"'
            out.append(char)
    return "".join(out)


def _split(text: str, separator: str) -> list[str]:
    """Split on a separator (or, for " ", any whitespace) outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
            current.append(char)
        elif quoted and char == "\\":
            escaped = True
            current.append(char)
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif not quoted and (char == separator or (separator == " " and char.isspace())):
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _tight_equals(text: str) -> str:
    """Remove the whitespace RFC 8601 allows around "=" (outside quoted strings)."""
    out: list[str] = []
    quoted = False
    pending_space = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if not quoted and char.isspace():
            pending_space = True
            continue
        if pending_space and out and out[-1] != "=" and char != "=":
            out.append(" ")
        pending_space = False
        out.append(char)
    return "".join(out)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value
