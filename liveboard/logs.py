"""Structured logs: one JSON object per line on stderr.

Services call :func:`setup` once; modules use ``logging.getLogger(__name__)`` and pass structured fields
with ``extra={"fields": {...}}``. Anything named like a secret is masked before it is written.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

_SECRET_HINTS = ("password", "secret", "token", "sign", "key")


def _mask(fields: dict) -> dict:
    return {
        k: ("***" if any(h in k.lower() for h in _SECRET_HINTS) and v not in (None, "") else v)
        for k, v in fields.items()
    }


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict = {
            "ts": int(record.created * 1000),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(_mask(fields))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def setup(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # faust/aiokafka are chatty at INFO; their warnings still come through.
    for noisy in ("aiokafka", "faust", "mode", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def now_ms() -> int:
    return time.time_ns() // 1_000_000
