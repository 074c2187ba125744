"""Prometheus metrics.

The collectors live in one registry of their own, created once per process (an application
factory may run many times in tests; registering twice would raise). Domain code records events
through the small functions below, so it never touches ``prometheus_client`` itself.

Under gunicorn with several workers, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory
(``gunicorn.conf.py`` clears it at start): every worker then writes its samples there and
``/metrics`` adds them up, so a scrape sees the whole server, not whichever worker answered.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

registry = CollectorRegistry(auto_describe=True)

REQUEST_LATENCY = Histogram(
    "mais_request_duration_seconds",
    "Time spent answering a request, by endpoint, method and status class.",
    ("endpoint", "method", "status"),
    registry=registry,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BOOKINGS = Counter(
    "mais_bookings_total", "Bookings confirmed (a paid hold became a booking).", registry=registry
)
HOLDS_LOST = Counter(
    "mais_holds_lost_to_races_total",
    "Hold attempts refused because another couple took the date first.",
    registry=registry,
)
WEBHOOK_EVENTS = Counter(
    "mais_webhook_events_total",
    "Payment-provider events by outcome (processed, duplicate, failed, rejected, replayed).",
    ("outcome",),
    registry=registry,
)
OUTBOX_BACKLOG = Gauge(
    "mais_outbox_backlog",
    "Outbox messages not sent yet, by status.",
    ("status",),
    registry=registry,
    multiprocess_mode="mostrecent",
)
CSP_REPORTS = Counter(
    "mais_csp_reports_total",
    "Content-Security-Policy violation reports received.",
    registry=registry,
)


def record_booking() -> None:
    BOOKINGS.inc()


def record_hold_lost_to_race() -> None:
    HOLDS_LOST.inc()


def record_webhook_outcome(outcome: str) -> None:
    WEBHOOK_EVENTS.labels(outcome=outcome).inc()


def _update_outbox_backlog() -> None:
    from sqlalchemy import func, select

    from .extensions import db
    from .models import OutboxMessage, OutboxStatus

    counts = dict(
        db.session.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.status != OutboxStatus.SENT)
            .group_by(OutboxMessage.status)
        ).all()
    )
    for status in (OutboxStatus.PENDING, OutboxStatus.DEAD):
        OUTBOX_BACKLOG.labels(status=status.value).set(counts.get(status, 0))


def exposition() -> Response:
    """The registry in Prometheus' text format, with the outbox backlog read fresh."""
    _update_outbox_backlog()
    scraped = registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        scraped = CollectorRegistry()
        multiprocess.MultiProcessCollector(scraped)
    return Response(generate_latest(scraped), content_type=CONTENT_TYPE_LATEST)


def observe_request(endpoint: str, method: str, status_code: int, seconds: float) -> None:
    """One answered request. The endpoint name, never the path: paths carry slugs and ids
    (unbounded labels)."""
    REQUEST_LATENCY.labels(
        endpoint=endpoint, method=method, status=f"{status_code // 100}xx"
    ).observe(seconds)


def init_metrics(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.mais_request_started = time.perf_counter()

    @app.after_request
    def _observe_latency(response: Response) -> Response:
        started = g.pop("mais_request_started", None)
        if started is not None:
            observe_request(
                request.endpoint or "unmatched",
                request.method,
                response.status_code,
                time.perf_counter() - started,
            )
        return response
