"""Shared test support: settings for a test application and the test database server."""

from __future__ import annotations

import base64
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_SECRET_KEY = "test-only-9f2c7e1ad4b8436f8a3b5d0e6c1f7a92b4e8d3c6"
TEST_SECRETS_KEY = base64.b64encode(b"k" * 32).decode()
TEST_WEBHOOK_SECRET = "whsec_test_secret_for_signatures"


def server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER_URL)


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def app_config(database_url: str, tmp_path: Path, **overrides: object) -> dict[str, object]:
    config: dict[str, object] = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SQLALCHEMY_DATABASE_URI": database_url.replace(
            "postgresql://", "postgresql+psycopg://", 1
        ),
        "SECRET_KEY": TEST_SECRET_KEY,
        "MAIS_SECRETS_KEY": TEST_SECRETS_KEY,
        "MAIS_PAYMENTS": "mock",
        "STRIPE_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "MAIS_BASE_URL": "http://localhost",
        "MAIS_MAIL_DIR": str(tmp_path / "mail"),
        "MAIS_UPLOAD_DIR": str(tmp_path / "uploads"),
        "MAIS_SEND_MAIL_INLINE": False,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "CACHE_TYPE": "SimpleCache",
        "REDIS_URL": None,
        # Calendar feeds in tests are served by pytest-httpserver on 127.0.0.1.
        "MAIS_OUTBOUND_ALLOW_LOOPBACK": True,
    }
    config.update(overrides)
    return config
