"""Test infrastructure.

Every run makes throwaway PostgreSQL databases (one per xdist worker) on the server named by
``TEST_DATABASE_URL`` (default: the local server), builds them by running the migrations, and
drops them at the end. No server: the run stops at once with a message; nothing is skipped.

Tests run inside a transaction that is rolled back afterwards; the application's commits
become savepoints. Tests that need real commits across connections (races, servers in another
process) mark themselves ``@pytest.mark.committed`` and use unique tenants instead.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from werkzeug.test import TestResponse

from app import create_app
from mais.extensions import db, limiter
from mais.models import Tenant
from mais.tenancy import tenant_scope
from tests.factories import make_tenant
from tests.support import ROOT, app_config, server_url, with_database


def pytest_sessionstart(session: pytest.Session) -> None:
    try:
        with psycopg.connect(server_url(), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        pytest.exit(
            f"\nPostgreSQL is not reachable at {server_url()} ({error.__class__.__name__}: "
            f"{str(error).strip()}).\nThe tests need a real PostgreSQL server: start one, or "
            "point TEST_DATABASE_URL at a server where this user may create databases.\n",
            returncode=3,
        )


@pytest.fixture(scope="session")
def database_url(worker_id: str) -> Iterator[str]:
    name = f"mais_test_{uuid.uuid4().hex[:8]}_{worker_id}"
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url(), name)
    yield url
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RequestIsolatedClient(FlaskClient):
    """Runs each request in a fresh context, as a server would: its own application context,
    ``g``, database session and (empty) tenant scope, even when the test itself has an
    application context or a tenant scope open. Without this, Flask reuses the test's context
    and requests would share state that in production they never share."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            # What the test loaded before the request is now stale, as it would be for any
            # other reader: reload it on next access.
            db.session.expire_all()
        return response


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The application on this worker's database, built by the migrations."""
    application = create_app(app_config(database_url, tmp_path_factory.mktemp("instance")))
    application.test_client_class = RequestIsolatedClient
    with application.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_landing_cache(request: pytest.FixtureRequest) -> None:
    """The landing cache maps slugs to tenant ids for good, which holds in production (slugs never
    change, tenants are never deleted) but not across tests that roll their tenants back."""
    if "app" in request.fixturenames:
        request.getfixturevalue("app").extensions["mais.landing"].forget()


@pytest.fixture(autouse=True)
def _transactional_db(request: pytest.FixtureRequest) -> Iterator[None]:
    """Roll every change of a test back, unless it is marked ``committed``."""
    if request.node.get_closest_marker("committed") or "app" not in request.fixturenames:
        yield
        return
    application: Flask = request.getfixturevalue("app")
    # Flask-Limiter keeps one state for every application: whatever app a previous test made,
    # this test starts with the shared test application's setting and empty counters.
    limiter.enabled = application.config["RATELIMIT_ENABLED"]
    with application.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = scoped_session(  # type: ignore[misc]
            sessionmaker(class_=Session, bind=connection, join_transaction_mode="create_savepoint"),
            scopefunc=_app_ctx_id,
        )
        try:
            yield
        finally:
            db.session.remove()
            db.session = original  # type: ignore[misc]
            outer.rollback()
            connection.close()


@pytest.fixture
def separate_app(app: Flask, database_url: str, tmp_path: Any) -> Iterator[Callable[..., Flask]]:
    """Make another application on this worker's database with different settings (rate limits
    on, CSRF on, production mode…). Flask-Limiter keeps one state for every application, so it is
    handed back to the shared test application afterwards."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        other = create_app(app_config(database_url, tmp_path, **overrides))
        other.test_client_class = RequestIsolatedClient
        made.append(other)
        return other

    yield make
    for other in made:
        with other.app_context():
            db.engine.dispose()
    # Only an application with rate limits on gives the limiter a storage to clear; resetting
    # without one fails (and whether one exists would depend on which tests ran before).
    if any(other.config["RATELIMIT_ENABLED"] for other in made):
        limiter.reset()
    limiter.init_app(app)


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tenant(app_ctx: Flask) -> Iterator[Tenant]:
    """A fresh tenant, with the test running inside its scope."""
    created = make_tenant()
    with tenant_scope(created):
        yield created


@pytest.fixture
def other_tenant(app_ctx: Flask) -> Tenant:
    """A second tenant, for tests that try to cross the line."""
    return make_tenant()
