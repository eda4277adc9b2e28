"""Structured logging for the daemon: one logger per component, one JSON object per line.

Call `setup_logging` once per process. Components log through `bind(logger,
node=...)` and pass per-event fields as `extra={"fields": {...}}`. Both become
keys of the JSON line, so logs can be filtered by node id, view or height.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Callable, MutableMapping

_RESERVED = {"ts", "level", "logger", "message"}


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for source in (getattr(record, "context", None), getattr(record, "fields", None)):
            if isinstance(source, dict):
                for key, value in source.items():
                    line[key if key not in _RESERVED else f"field_{key}"] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str, sort_keys=False)


class BoundLogger(logging.LoggerAdapter):
    """A logger that adds fixed context (node id) and live context (view, height) to every line."""

    def __init__(self, logger: logging.Logger, context: dict[str, Any], live: Callable[[], dict[str, Any]] | None = None) -> None:
        super().__init__(logger, context)
        self._live = live

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        context = dict(self.extra or {})
        if self._live is not None:
            context.update(self._live())
        extra = dict(kwargs.get("extra") or {})
        extra["context"] = context
        kwargs["extra"] = extra
        return msg, kwargs


def bind(logger: logging.Logger, live: Callable[[], dict[str, Any]] | None = None, **context: Any) -> BoundLogger:
    return BoundLogger(logger, context, live)


def setup_logging(level: str = "INFO", stream: Any = None) -> None:
    """Send all `xinlian.*` and library logs to one stream (stderr by default) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp logs every access at INFO; keep only its warnings.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
