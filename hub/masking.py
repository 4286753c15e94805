"""What an administrator may see: codes, references, digests, never personal data in clear.

The console and the admin API show no payload at all. Free text that could carry a value from a
payload (an error reason quoting the field that failed validation, an agency's message) goes
through `redact`, and audit details through `safe_details`, which keeps only known keys.

    >>> redact("holder.cnie: 'AB123456' does not match '^[A-Z]{1,2}[0-9]{5,6}$'")
    "holder.cnie: '‹redacted›' does not match '‹redacted›'"
    >>> redact("narsa answered HTTP 503")
    'narsa answered HTTP 503'
"""
from __future__ import annotations

import re
from typing import Any

MASK = "‹redacted›"

# Spans that are safe and must survive: message ids, case references, instants.
_KEEP = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b[A-Z]{2,4}-\d{4}-[0-9A-Z]{7}\b"
    r"|\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|«[^»]*»")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d .\-/]{6,}\d")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
# Identity-document-like tokens: letters and digits mixed, or long digit runs (CNIE AB123456,
# passport numbers, licence numbers).
_IDENT = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{6,}\b|\b\d{5,}\b")


def redact(text: str | None, *, limit: int = 500, strict: bool = True) -> str:
    """``text`` with quoted values, e-mails, dates and (``strict``) phone-like and
    identity-like tokens masked; ids, case references and timestamps kept. Logs use
    ``strict=False``: their messages quote values when they carry any, and queue names, hosts
    and ports must stay readable."""
    if not text:
        return ""
    kept: list[str] = []

    def hold(match: re.Match[str]) -> str:
        kept.append(match.group())
        return f"\x00{len(kept) - 1}\x00"

    out = _KEEP.sub(hold, str(text)[:limit * 2])
    out = _QUOTED.sub(lambda m: m.group()[0] + MASK + m.group()[-1], out)
    for pattern in ((_EMAIL, _PHONE, _DATE, _IDENT) if strict else (_EMAIL, _DATE)):
        out = pattern.sub(MASK, out)
    out = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], out)
    return out[:limit]


#: Audit and record detail keys whose values are operational (names, codes, counts, ids).
SAFE_DETAIL_KEYS = frozenset({
    "step", "agency", "round", "attempt", "attempts", "status", "from", "to", "reason", "answer",
    "queue", "component", "dead_letter", "request", "agency_reference", "service", "post",
    "view", "error", "outcome",
})


def safe_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Only known keys; strings redacted; nested structures dropped."""
    out: dict[str, Any] = {}
    for key, value in (details or {}).items():
        if key not in SAFE_DETAIL_KEYS:
            continue
        if isinstance(value, str):
            out[key] = redact(value, limit=200)
        elif isinstance(value, (int, float, bool)) or value is None:
            out[key] = value
    return out
