"""What the date lock costs, and whether confirmations on different dates run in parallel.

    .venv/bin/python -m bench.booking [--cycles 300] [--confirmations 200] [--rounds 3]

On a throwaway PostgreSQL database (made on ``TEST_DATABASE_URL``'s server, default the local
one, built by the migrations and dropped afterwards) it measures:

1. the advisory-lock overhead: hold + confirm cycles of the one booking path against the very
   same cycles with ``mais.booking.lock_date`` swapped for a no-op by this benchmark,
   alternating cycle by cycle and comparing the medians, so that noise from other processes
   inflates neither side;
2. the throughput of confirming paid holds on distinct dates with 8 worker threads against 1,
   alternating over a few rounds and comparing the medians.

Aims: overhead under 15 %, 8 workers at least 1.5 × one worker.
"""

from __future__ import annotations

import argparse
import base64
import os
import queue
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
from flask import Flask
from flask_migrate import upgrade

from app import create_app
from mais import booking
from mais.booking import CoupleDetails
from mais.extensions import db
from mais.models import OnboardingState, Tenant
from mais.tenancy import tenant_scope
from mais.tenant_registry import create_tenant

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
COUPLE = CoupleDetails("Bench Couple", "Partner", "bench@example.com", "")


@contextmanager
def throwaway_database() -> Iterator[str]:
    name = f"mais_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield SERVER_URL.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_app(database_url: str, instance: Path, *, migrate: bool = True) -> Flask:
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench-" + "x" * 40,
            "MAIS_SECRETS_KEY": base64.b64encode(b"b" * 32).decode(),
            "MAIS_PAYMENTS": "mock",
            "STRIPE_WEBHOOK_SECRET": "whsec_bench",
            "MAIS_MAIL_DIR": str(instance / "mail"),
            "MAIS_UPLOAD_DIR": str(instance / "uploads"),
            "MAIS_SEND_MAIL_INLINE": False,
            "CACHE_TYPE": "SimpleCache",
            "REDIS_URL": None,
            "RATELIMIT_ENABLED": False,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 10, "max_overflow": 5},
            "MAIS_LOG_LEVEL": "WARNING",
        }
    )
    if migrate:
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
    return app


def make_shop(app: Flask) -> tuple[int, str]:
    from mais.catalog import create_package

    with app.app_context():
        slug = f"bench-{uuid.uuid4().hex[:8]}"
        tenant, _owner, _keys = create_tenant(
            slug=slug,
            name="Bench Studio",
            owner_email=f"owner-{slug}@example.com",
            owner_password="bench-password-1",
        )
        tenant.stripe_account_id = "acct_bench"
        tenant.onboarding_state = OnboardingState.COMPLETE
        # Enough distinct dates for every cycle of every run.
        tenant.booking_horizon_days = 100_000
        with tenant_scope(tenant):
            package = create_package(tenant, "Bench package", 150000)
            db.session.commit()
            return tenant.id, package.slug


class Dates:
    """Hands out distinct future dates, so that no cycle ever meets another's date."""

    def __init__(self) -> None:
        self._next = 1
        self._lock = threading.Lock()

    def take(self):  # noqa: ANN201 - a date
        with self._lock:
            self._next += 1
            return booking.today() + timedelta(days=self._next)


def cycle_times(
    app: Flask, tenant_id: int, slug: str, dates: Dates, n: int
) -> tuple[list[float], list[float]]:
    """Per-cycle seconds of ``n`` hold + confirm cycles with the lock and ``n`` without,
    alternating cycle by cycle so that load from other processes hits both sides alike."""
    timings: dict[bool, list[float]] = {True: [], False: []}
    real_lock = booking.lock_date
    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        try:
            for i in range(2 * n):
                locked = i % 2 == 0
                booking.lock_date = real_lock if locked else _no_lock  # type: ignore[assignment]
                started = time.perf_counter()
                hold = booking.hold_date(
                    tenant, package_slug=slug, addon_ids=[], on_date=dates.take(), couple=COUPLE
                )
                booking.confirm_paid_hold(
                    tenant,
                    hold.id,
                    checkout_session_id=f"cs_{hold.id}",
                    payment_intent_id=f"pi_{hold.id}",
                )
                db.session.commit()
                timings[locked].append(time.perf_counter() - started)
        finally:
            booking.lock_date = real_lock  # type: ignore[assignment]
        db.session.remove()
    return timings[True], timings[False]


def _no_lock(session: object, tenant_id: int, on_date: object) -> None:
    """The lock's stand-in for the unlocked side: the same path without the lock's round trip."""


def make_holds(app: Flask, tenant_id: int, slug: str, dates: Dates, n: int) -> list[str]:
    with app.app_context(), tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        ids = []
        for _ in range(n):
            ids.append(
                booking.hold_date(
                    tenant, package_slug=slug, addon_ids=[], on_date=dates.take(), couple=COUPLE
                ).id
            )
            db.session.commit()  # as the Pay view does: each hold is committed at once
        db.session.remove()
    return ids


def confirm_all(app: Flask, tenant_id: int, hold_ids: list[str], workers: int) -> float:
    """Seconds for ``workers`` threads to confirm every hold (each confirmation its own
    transaction under its date's lock, as the webhook does it)."""
    work: queue.Queue[str] = queue.Queue()
    for hold_id in hold_ids:
        work.put(hold_id)
    ready = threading.Barrier(workers + 1)

    def worker() -> None:
        with app.app_context(), tenant_scope(tenant_id):
            tenant = db.session.get(Tenant, tenant_id)
            db.session.commit()
            ready.wait()
            while True:
                try:
                    hold_id = work.get_nowait()
                except queue.Empty:
                    break
                booking.confirm_paid_hold(
                    tenant, hold_id, checkout_session_id=None, payment_intent_id=f"pi_{hold_id}"
                )
                db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300, help="hold+confirm cycles per mode")
    parser.add_argument("--confirmations", type=int, default=200, help="holds per throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs per worker count")
    args = parser.parse_args()

    with throwaway_database() as database_url, tempfile.TemporaryDirectory() as instance:
        app = make_app(database_url, Path(instance))
        tenant_id, slug = make_shop(app)
        dates = Dates()
        cycle_times(app, tenant_id, slug, dates, 20)  # warm-up: pool, statement caches
        with_lock, without_lock = cycle_times(app, tenant_id, slug, dates, args.cycles)
        median_with, median_without = statistics.median(with_lock), statistics.median(without_lock)
        print(
            f"hold+confirm cycles: {args.cycles} with the lock, {args.cycles} without, alternating"
        )
        print(f"  with the lock:    median {median_with * 1000:.2f} ms/cycle")
        print(f"  without the lock: median {median_without * 1000:.2f} ms/cycle")
        print(
            f"  lock overhead:    {(median_with / median_without - 1) * 100:+.1f} %  (aim < 15 %)"
        )

        # Alternate 1 and 8 workers over a few rounds, as for the lock, and compare medians.
        one, eight = [], []
        for _ in range(args.rounds):
            for workers, times in ((1, one), (8, eight)):
                holds = make_holds(app, tenant_id, slug, dates, args.confirmations)
                times.append(confirm_all(app, tenant_id, holds, workers))
        one_s, eight_s = statistics.median(one), statistics.median(eight)
        print(
            f"confirmations on distinct dates: {args.confirmations} per run, {args.rounds} rounds"
        )
        print(f"  1 worker:  {args.confirmations / one_s:.0f} confirmations/s (median)")
        print(f"  8 workers: {args.confirmations / eight_s:.0f} confirmations/s (median)")
        print(f"  8 workers / 1 worker: {one_s / eight_s:.2f}x  (aim >= 1.5x)")

        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
