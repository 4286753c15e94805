"""Structured logs: one JSON object per line, with the correlation id, never personal data.

Call `configure` once per process (the CLI does). Log calls pass context through ``extra``::

    log.info("case applied", extra={"correlation_id": ref, "agency": "narsa"})

Only whitelisted ``extra`` keys are emitted, so a careless ``extra={"data": form}`` cannot leak
an applicant's identity numbers into the logs.
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from hub.masking import redact

#: ``extra`` keys that may appear in a log line; everything else is dropped.
ALLOWED_EXTRA = frozenset({"correlation_id", "message_id", "agency", "service", "component",
                           "error_code", "attempt", "queue", "status", "duration_ms", "count"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line. The message and any traceback pass through
    `hub.masking.redact` (quoted values, e-mails and dates masked; ids, case references,
    timestamps, queue names and hosts kept), because an error message can quote a value from a
    form."""

    def format(self, record: logging.LogRecord) -> str:

        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage(), limit=4000, strict=False),
        }
        for key in ALLOWED_EXTRA:
            value = record.__dict__.get(key)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info), limit=20000, strict=False)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("pika", "werkzeug", "urllib3", "zeep", "waitress", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
