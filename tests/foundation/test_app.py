import json
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from mais.config import build_config
from mais.errors import ConfigurationError
from mais.models import Tenant


def test_health_answers_200_with_the_database(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_health_answers_503_without_the_database(tmp_path):
    from tests.conftest import app_config

    broken = create_app(
        app_config(
            "postgresql://postgres@127.0.0.1:1/nowhere",
            tmp_path,
            SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"connect_timeout": 2}},
        )
    )
    assert broken.test_client().get("/health").status_code == 503
    with broken.app_context():
        from mais.extensions import db

        db.engine.dispose()


def test_no_environment_runs_on_sqlite_with_generated_secrets(tmp_path: Path):
    config = build_config(str(tmp_path), env={})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'mais.db'}"
    assert config["MAIS_PAYMENTS"] == "mock"
    assert config["MAIS_MAIL_DIR"] == str(tmp_path / "mail")
    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert config["SECRET_KEY"] == stored["SECRET_KEY"]
    # kept across restarts
    assert build_config(str(tmp_path), env={})["MAIS_SECRETS_KEY"] == stored["MAIS_SECRETS_KEY"]


def test_production_names_every_missing_secret(tmp_path: Path):
    with pytest.raises(ConfigurationError) as error:
        build_config(
            str(tmp_path), env={"MAIS_ENV": "production", "DATABASE_URL": "postgresql://x/y"}
        )
    message = str(error.value)
    for name in ("SECRET_KEY", "MAIS_SECRETS_KEY", "MAIS_BASE_URL"):
        assert name in message
    assert not (tmp_path / "secrets.json").exists()


def test_production_with_stripe_needs_stripe_secrets(tmp_path: Path):
    env = {
        "MAIS_ENV": "production",
        "DATABASE_URL": "postgresql://x/y",
        "SECRET_KEY": "s" * 40,
        "MAIS_SECRETS_KEY": "k" * 44,
        "MAIS_BASE_URL": "https://mais.example",
        "MAIS_PAYMENTS": "stripe",
    }
    with pytest.raises(ConfigurationError, match="STRIPE_SECRET_KEY"):
        build_config(str(tmp_path), env=env)


def test_sqlite_app_runs_the_migrations(tmp_path: Path):
    from flask_migrate import upgrade

    from tests.conftest import ROOT, TEST_SECRET_KEY, TEST_SECRETS_KEY

    sqlite_app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'm.db'}",
            "SECRET_KEY": TEST_SECRET_KEY,
            "MAIS_SECRETS_KEY": TEST_SECRETS_KEY,
        }
    )
    with sqlite_app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        from mais.extensions import db

        assert db.session.scalars(select(Tenant)).all() == []
    assert sqlite_app.test_client().get("/health").status_code == 200
    with sqlite_app.app_context():
        db.engine.dispose()
