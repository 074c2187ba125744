"""The maintenance jobs work in batches: each batch is one set-based statement and one commit, so
a backlog of any size takes flat memory, and a run killed half-way resumes where it stopped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from mais import booking, webhooks
from mais.extensions import db
from mais.models import DateHold, HoldStatus, WebhookEvent, WebhookEventArchive, WebhookStatus
from mais.models.base import utcnow
from mais.tenancy import platform_scope

from .conftest import couple, future, hold_for


@contextmanager
def killed_at(statement_start: str, nth: int) -> Iterator[None]:
    """The process dies (an exception, as good as a SIGKILL to the transaction) when it sends
    the ``nth`` statement beginning with ``statement_start``."""
    seen = 0

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal seen
        if statement.lstrip().upper().startswith(statement_start):
            seen += 1
            if seen == nth:
                raise RuntimeError("killed")

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", count)


def expired_holds(tenant, package, count: int) -> list[str]:  # noqa: ANN001
    holds = [hold_for(tenant, package, future(30 + n), couple(n)) for n in range(count)]
    for hold in holds:
        hold.expires_at = utcnow() - timedelta(minutes=1)
    db.session.flush()
    return [hold.id for hold in holds]


def statuses(hold_ids: list[str]) -> list[HoldStatus]:
    db.session.expire_all()
    with platform_scope("the test reads its holds"):
        return [db.session.get(DateHold, hold_id).status for hold_id in hold_ids]


def test_release_runs_batch_after_batch(tenant, package):
    ids = expired_holds(tenant, package, 5)
    fresh = hold_for(tenant, package, future(60))

    assert booking.release_expired_holds(batch_size=2) >= 5

    assert statuses(ids) == [HoldStatus.RELEASED] * 5
    assert statuses([fresh.id]) == [HoldStatus.ACTIVE]


def test_release_killed_after_its_first_batch_resumes_on_the_next_run(tenant, package):
    # Committed tests of this worker may have left expired holds behind: release them first,
    # so that the batches below are this test's own.
    booking.release_expired_holds()
    ids = expired_holds(tenant, package, 5)

    with killed_at("UPDATE DATE_HOLDS", 2), pytest.raises(RuntimeError, match="killed"):
        booking.release_expired_holds(batch_size=2)
    db.session.rollback()

    assert sorted(statuses(ids)).count(HoldStatus.RELEASED) == 2  # the first batch, committed
    assert booking.release_expired_holds(batch_size=2) == 3
    assert statuses(ids) == [HoldStatus.RELEASED] * 5


def old_events(count: int, *, age: timedelta) -> list[str]:
    names = [f"evt_batch_{uuid.uuid4().hex}" for _ in range(count)]
    with platform_scope("the test stores provider events"):
        for name in names:
            db.session.add(
                WebhookEvent(
                    provider_event_id=name,
                    type="customer.created",
                    status=WebhookStatus.PROCESSED,
                    attempts=1,
                    payload={"id": name, "data": {"object": {"id": "cus_1"}}},
                    created_at=utcnow() - age,
                )
            )
        db.session.flush()
    return names


def where_they_are(names: list[str]) -> tuple[int, int]:
    """(still live, archived) among ``names``."""
    db.session.expire_all()
    with platform_scope("the test reads the event log"):
        live = db.session.scalar(
            select(func.count()).where(WebhookEvent.provider_event_id.in_(names))
        )
        archived = db.session.scalar(
            select(func.count()).where(WebhookEventArchive.provider_event_id.in_(names))
        )
    return live, archived


@pytest.fixture
def no_old_events(app_ctx):
    """Events committed tests of this worker left behind are archived first (rolled back
    afterwards), so the batches counted below are this test's own."""
    webhooks.archive_webhook_events()


def test_archive_moves_only_events_older_than_90_days_in_batches(no_old_events):
    old = old_events(5, age=timedelta(days=91))
    recent = old_events(2, age=timedelta(days=89))

    assert webhooks.archive_webhook_events(batch_size=2) == 5

    assert where_they_are(old) == (0, 5)
    assert where_they_are(recent) == (2, 0)
    with platform_scope("the test reads the archive"):
        archived = db.session.scalars(
            select(WebhookEventArchive).where(WebhookEventArchive.provider_event_id == old[0])
        ).one()
    assert (archived.status, archived.type, archived.attempts) == (
        "processed",
        "customer.created",
        1,
    )
    assert archived.payload == {"id": old[0], "data": {"object": {"id": "cus_1"}}}
    assert utcnow() - archived.created_at > timedelta(days=90)


def test_archive_killed_half_way_moves_the_rest_on_the_next_run_without_doubles(no_old_events):
    old = old_events(5, age=timedelta(days=120))

    with killed_at("DELETE FROM WEBHOOK_EVENTS", 2), pytest.raises(RuntimeError, match="killed"):
        webhooks.archive_webhook_events(batch_size=2)
    db.session.rollback()

    assert where_they_are(old) == (3, 2)  # the first batch moved whole, the second not at all
    assert webhooks.archive_webhook_events(batch_size=2) == 3
    assert where_they_are(old) == (0, 5)
