"""The booking path on SQLite, where the date lock is ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import event, func, select

from app import create_app
from mais import booking
from mais.errors import DateUnavailable
from mais.extensions import db
from mais.models import Booking, DateHold, Tenant
from mais.tenancy import tenant_scope
from tests.conftest import ROOT, app_config
from tests.factories import make_package, make_tenant

from .conftest import completed_session, couple, future, post_event, signed_event

pytestmark = pytest.mark.committed


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    directory = tmp_path_factory.mktemp("sqlite")
    url = f"sqlite:///{directory / 'mais.db'}"
    application = create_app(
        app_config(url, Path(directory), SQLALCHEMY_DATABASE_URI=url, DATABASE_URL=url)
    )
    with application.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def shop(sqlite_app: Flask) -> tuple[int, str]:
    with sqlite_app.app_context():
        tenant = make_tenant()
        with tenant_scope(tenant):
            package = make_package(tenant, price_cents=100000)
            db.session.commit()
            return tenant.id, package.slug


def _hold(tenant_id: int, slug: str, days: int, n: int = 0) -> str:
    with tenant_scope(tenant_id):
        tenant = db.session.get(Tenant, tenant_id)
        hold = booking.hold_date(
            tenant, package_slug=slug, addon_ids=[], on_date=future(days), couple=couple(n)
        )
        db.session.commit()  # as the Pay view does before it opens the checkout
        return hold.id


def test_the_lock_is_begin_immediate(sqlite_app, shop):
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001
        statements.append(statement)

    with sqlite_app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            _hold(*shop, 10)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
    assert "BEGIN IMMEDIATE" in statements


def test_hold_conflict_and_booking(sqlite_app, shop):
    tenant_id, slug = shop
    with sqlite_app.app_context():
        hold_id = _hold(tenant_id, slug, 11)
        with pytest.raises(DateUnavailable) as caught:
            _hold(tenant_id, slug, 11, 2)
        assert caught.value.alternatives[0] == future(12)
        with tenant_scope(tenant_id):
            hold = db.session.get(DateHold, hold_id)
            delivery = signed_event("checkout.session.completed", completed_session(hold))
    client = sqlite_app.test_client()
    assert post_event(client, *delivery).status_code == 200
    assert post_event(client, *delivery).status_code == 200
    with sqlite_app.app_context(), tenant_scope(tenant_id):
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 1
        assert (
            booking.day_statuses(db.session.get(Tenant, tenant_id), future(11), future(11))[
                0
            ].reason
            == "booked"
        )


def test_concurrent_holds_on_one_date_have_one_winner(sqlite_app, shop):
    tenant_id, slug = shop
    barrier = threading.Barrier(12)

    def attempt(n: int) -> str:
        with sqlite_app.app_context():
            barrier.wait()
            try:
                _hold(tenant_id, slug, 14, n)
            except DateUnavailable:
                return "taken"
            finally:
                db.session.remove()
            return "held"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    assert outcomes.count("held") == 1 and outcomes.count("taken") == 11
