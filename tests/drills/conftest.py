"""Drills run MAIS as it runs in production: gunicorn processes on a PostgreSQL cluster of
their own (started with initdb/pg_ctl), driven over HTTP. All are ``committed`` tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app import create_app
from mais.extensions import db
from mais.payments import sign_payload
from tests.drills.harness import AppProcess, ThrowawayPostgres, migrate
from tests.support import TEST_WEBHOOK_SECRET, app_config


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.committed)
            # One drill at a time per worker; they start servers of their own.
            item.add_marker(pytest.mark.xdist_group("drills"))


@pytest.fixture(scope="module")
def drill_cluster() -> Iterator[ThrowawayPostgres]:
    cluster = ThrowawayPostgres().init()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def drill_database(
    drill_cluster: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> str:
    url = drill_cluster.create_database("mais_drill")
    migrate(url, tmp_path_factory.mktemp("migrate-mail"))
    return url


@pytest.fixture(scope="module")
def drill_mail_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drill") / "mail"


@pytest.fixture(scope="module")
def drill_app(drill_database: str, drill_mail_dir: Path) -> Iterator[Flask]:
    """The application in this process, on the drill database: for setting up and checking."""
    application = create_app(
        app_config(drill_database, drill_mail_dir.parent, MAIS_MAIL_DIR=str(drill_mail_dir))
    )
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def app_processes(drill_database: str, drill_mail_dir: Path) -> Iterator[list[AppProcess]]:
    """Two application processes on one PostgreSQL. Rate limits are off: every drill request
    comes from 127.0.0.1, and what the drills test is the date lock, not the limiter."""
    processes = [
        AppProcess(drill_database, drill_mail_dir, extra_env={"MAIS_RATE_LIMITS": "off"}).start()
        for _ in range(2)
    ]
    yield processes
    for process in processes:
        process.stop()


def stripe_event(event_type: str, event_id: str, data_object: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "created": int(time.time()),
            "type": event_type,
            "data": {"object": data_object},
        }
    ).encode()


@pytest.fixture
def signed() -> Callable[[bytes], dict[str, str]]:
    def headers(payload: bytes) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Stripe-Signature": sign_payload(payload.decode(), TEST_WEBHOOK_SECRET),
        }

    return headers
