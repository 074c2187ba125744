"""Operator pages and the API whose cost must not grow with the platform: the outbox counts
only what an operator acts on, tenant search finds any part of a name or slug (trigram indexes
on PostgreSQL), and a year of availability is a handful of statements."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, update

from mais import admin_ops
from mais.booking import today
from mais.cache import invalidate_availability
from mais.extensions import db
from mais.models import OutboxMessage, OutboxStatus

from ..factories import make_blackout, make_tenant


def queue(status: OutboxStatus) -> None:
    db.session.add(
        OutboxMessage(
            dedup_key=f"test:{uuid.uuid4().hex}",
            template="booking_confirmation",
            to_email="couple@example.com",
            subject="Booked",
            body_text="Hello\n",
            status=status,
        )
    )


def test_the_outbox_counts_waiting_and_dead_messages_not_the_sent_history(
    admin_client: FlaskClient, app_ctx: Flask
) -> None:
    # Whatever committed tests of this worker left unsent is marked sent (rolled back after).
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status != OutboxStatus.SENT)
        .values(status=OutboxStatus.SENT)
    )
    for status in [OutboxStatus.PENDING] * 2 + [OutboxStatus.DEAD] + [OutboxStatus.SENT] * 3:
        queue(status)
    db.session.flush()

    assert admin_ops.outbox_summary().counts == {"pending": 2, "dead": 1}
    page = admin_client.get("/admin/outbox").get_data(as_text=True)
    assert "<dt>Pending</dt><dd>2</dd>" in page
    assert "<dt>Dead</dt><dd>1</dd>" in page
    assert "<dt>Sent</dt>" not in page


def test_tenant_search_finds_any_part_of_a_name_or_a_slug(
    admin_client: FlaskClient, app_ctx: Flask
) -> None:
    assert db.engine.dialect.name == "postgresql"  # the trigram indexes' dialect
    marker = uuid.uuid4().hex[:8]
    make_tenant(f"wb-{marker}-studio", name=f"Willowbrook Weddings {marker}")
    make_tenant(name=f"Someone Else {marker[::-1]}")

    for query in (f"LOWBROOK WEDDINGS {marker}", f"{marker}-stu", marker[2:7]):
        page = admin_client.get("/admin/", query_string={"q": query}).get_data(as_text=True)
        assert f"Willowbrook Weddings {marker}" in page, query
        assert "Someone Else" not in page, query


@contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_a_year_of_availability_is_a_handful_of_statements(
    client: FlaskClient, app_ctx: Flask
) -> None:
    tenant = make_tenant()
    closed = today() + timedelta(days=200)
    make_blackout(tenant, closed, "Retreat")
    db.session.flush()
    invalidate_availability(tenant)
    year = {"from": today().isoformat(), "to": (today() + timedelta(days=365)).isoformat()}

    with statements() as seen:
        response = client.get(
            "/v1/availability",
            headers={"X-Tenant-Key": tenant.issued_keys.public_key},
            query_string=year,
        )

    assert response.status_code == 200
    days = response.get_json()["days"]
    assert len(days) == 366
    assert [d["is_open"] for d in days if d["date"] == closed.isoformat()] == [False]
    assert sum(d["is_open"] for d in days) == 365
    assert len(seen) <= 6, seen
