"""Structured logs: one JSON object per line, and never personal data.

Messages and extra fields pass through ``scrub`` before they are written: email addresses, API
keys, webhook secrets, bearer tokens, card-like and phone-like numbers are replaced by a tag.
Request lines carry the endpoint, method, status, duration and tenant id, never the path (which
holds tokens on some routes), the query string, the client address or any form field.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

from . import tenancy
from .personal_data import scrub

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

access_logger = logging.getLogger("mais.access")


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))


# Set on access lines, whose fields are endpoint names and numbers made by the application: they
# are written without scrubbing, which would cost more than the rest of a cached answer.
ACCESS_MARK = "_mais_access"
_ACCESS_FIELDS = ("endpoint", "method", "status", "duration_ms", "tenant_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, ACCESS_MARK, False):
            fields = vars(record)
            access = {
                "ts": _timestamp(record.created),
                "level": "info",
                "logger": record.name,
                "message": "request",
            }
            for name in _ACCESS_FIELDS:
                access[name] = fields.get(name)
            return json.dumps(access, separators=(",", ":"))
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                entry[name] = _scrub_value(value)
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages often quote the data that caused them.
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, separators=(",", ":"))


def init_logging(app: Flask) -> None:
    """JSON lines on stderr for the whole process, and one access line per request."""
    if not app.testing:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(app.config.get("MAIS_LOG_LEVEL", "INFO"))
        app.logger.handlers[:] = []
        app.logger.propagate = True
        # The development server's own request lines carry the client address and the full
        # path (reset tokens live in paths); the access line below replaces them.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    @app.before_request
    def _start_clock() -> None:
        g.mais_log_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        started = g.pop("mais_log_started", None)
        if started is None:
            return response
        scope = tenancy.current_scope()
        log_access(
            request.endpoint or "unmatched",
            request.method,
            response.status_code,
            time.perf_counter() - started,
            scope.tenant_id if scope else None,
        )
        return response


def log_access(
    endpoint: str, method: str, status: int, seconds: float, tenant_id: int | None
) -> None:
    """The access line of one request; its fields are names and numbers, never personal data."""
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info(
            "request",
            extra={
                "endpoint": endpoint,
                "method": method,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "tenant_id": tenant_id,
                ACCESS_MARK: True,
            },
        )
