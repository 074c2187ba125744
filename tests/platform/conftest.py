"""Fixtures for the admin area, the public API, the cache and the operations endpoints."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from mais.extensions import db
from mais.models import User
from mais.tenant_registry import create_platform_admin

from ..conftest import app_config

REDIS_URL = os.environ.get("MAIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
ADMIN_PASSWORD = "operator-password-123"


def _require_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({type(error).__name__}: {error}). The "
            "cache isolation tests must run on a real Redis: start redis-server, or point "
            "MAIS_TEST_REDIS_URL at one.",
            pytrace=False,
        )
    return client


@pytest.fixture(scope="session")
def redis_app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, str]]:
    """The application with its cache on the real Redis, under a key prefix of its own."""
    client = _require_redis()
    prefix = f"mais-test-{uuid.uuid4().hex[:12]}:"
    application = create_app(
        app_config(
            database_url,
            Path(tmp_path_factory.mktemp("redis-instance")),
            CACHE_TYPE="RedisCache",
            CACHE_REDIS_URL=REDIS_URL,
            CACHE_KEY_PREFIX=prefix,
        )
    )
    yield application, prefix
    for key in client.scan_iter(match=prefix + "*", count=500):
        client.delete(key)
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(params=["simple", "redis"])
def cache_backend(request: pytest.FixtureRequest, app: Flask) -> Iterator[str]:
    """Runs the test inside an application context whose cache is the in-process one or the
    real Redis; yields the backend's name."""
    if request.param == "redis":
        application, _prefix = request.getfixturevalue("redis_app")
    else:
        application = app
    with application.app_context():
        yield request.param


@pytest.fixture
def redis_client() -> redis.Redis:
    return _require_redis()


@pytest.fixture
def platform_admin(app_ctx: Flask) -> User:
    return create_platform_admin(f"ops-{uuid.uuid4().hex[:8]}@platform.example", ADMIN_PASSWORD)


@pytest.fixture
def admin_client(app: Flask, platform_admin: User) -> FlaskClient:
    """A client logged in as a platform admin through the real login form."""
    client = app.test_client()
    response = client.post(
        "/admin/login", data={"email": platform_admin.email, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 302, response.data
    return client
