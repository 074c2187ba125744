"""Configuration checks behind ``flask mais doctor``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db
from .keys import _master_key


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # "OK", "WARN" or "FAIL"
    message: str


def run_checks(app: Flask) -> list[Check]:
    config = app.config
    production = config["MAIS_ENV"] == "production"
    checks: list[Check] = []

    secret = config.get("SECRET_KEY") or ""
    checks.append(
        Check("SECRET_KEY", "OK", "set and long enough")
        if len(secret) >= 32
        else Check("SECRET_KEY", "FAIL", "shorter than 32 characters; generate a random one")
    )
    try:
        _master_key()
        checks.append(Check("MAIS_SECRETS_KEY", "OK", "a 256-bit AES key"))
    except ValueError as error:
        checks.append(Check("MAIS_SECRETS_KEY", "FAIL", str(error)))

    try:
        db.session.execute(text("SELECT 1"))
        checks.append(Check("database", "OK", db.engine.dialect.name + " reachable"))
    except SQLAlchemyError as error:
        checks.append(Check("database", "FAIL", f"unreachable ({type(error).__name__})"))
    if production and db.engine.dialect.name == "sqlite":
        checks.append(Check("database", "WARN", "SQLite in production serves one machine only"))

    if config["MAIS_PAYMENTS"] == "stripe":
        if not (config.get("STRIPE_SECRET_KEY") or "").startswith(("sk_live_", "sk_test_", "rk_")):
            checks.append(Check("STRIPE_SECRET_KEY", "FAIL", "not a Stripe secret key"))
        if not (config.get("STRIPE_WEBHOOK_SECRET") or "").startswith("whsec_"):
            checks.append(Check("STRIPE_WEBHOOK_SECRET", "FAIL", "not a webhook signing secret"))
        else:
            checks.append(Check("payments", "OK", "Stripe"))
    else:
        checks.append(
            Check(
                "payments",
                "WARN" if production else "OK",
                "mock payments" + (": no real money can be taken" if production else ""),
            )
        )

    base_url = config["MAIS_BASE_URL"]
    if production and not base_url.startswith("https://"):
        checks.append(Check("MAIS_BASE_URL", "FAIL", "must be https:// in production"))
    else:
        checks.append(Check("MAIS_BASE_URL", "OK", base_url))

    if config.get("REDIS_URL"):
        try:
            import redis

            redis.Redis.from_url(config["REDIS_URL"], socket_timeout=2).ping()
            checks.append(Check("REDIS_URL", "OK", "reachable"))
        except Exception as error:  # noqa: BLE001 - any failure means unreachable here
            checks.append(Check("REDIS_URL", "FAIL", f"unreachable ({type(error).__name__})"))
    elif production:
        # gunicorn.conf.py starts several worker processes: without a shared cache, a change
        # (a rotated key, a catalog edit) reaches the others only as their entries expire.
        checks.append(
            Check(
                "REDIS_URL",
                "FAIL",
                "unset: each worker process would keep its own cache and rate limits, and see "
                "another's changes (a rotated key, a catalog edit) only after 5 minutes",
            )
        )

    checks += _operations_checks(config, production)

    if not config.get("MAIS_SMTP_URL"):
        checks.append(
            Check(
                "mail",
                "WARN" if production else "OK",
                f"no SMTP: mail is written to {config['MAIS_MAIL_DIR']}",
            )
        )
    return checks


def _operations_checks(config: Any, production: bool) -> list[Check]:
    """Settings that do not stop the application but weaken it in production."""
    checks: list[Check] = []
    secret = config.get("SECRET_KEY") or ""
    if len(secret) >= 32 and len(set(secret)) < 12:
        checks.append(Check("SECRET_KEY", "FAIL", "too repetitive to be random; generate one"))
    if production and not config.get("SESSION_COOKIE_SECURE"):
        checks.append(
            Check("SESSION_COOKIE_SECURE", "FAIL", "session cookies would travel over http")
        )
    if config.get("MAIS_METRICS_TOKEN"):
        checks.append(
            Check("MAIS_METRICS_TOKEN", "OK", "/metrics and /health/cache need the bearer token")
        )
    elif production:
        checks.append(
            Check(
                "MAIS_METRICS_TOKEN",
                "FAIL",
                "unset: /metrics and /health/cache answer 404 to everyone, Prometheus included; "
                "set a long random token and give it to the scraper as a bearer token",
            )
        )
    else:
        checks.append(
            Check("MAIS_METRICS_TOKEN", "OK", "unset: /metrics and /health/cache are open")
        )
    if production and not config.get("MAIS_SECURITY_CONTACT"):
        checks.append(
            Check(
                "MAIS_SECURITY_CONTACT",
                "WARN",
                "unset: security.txt names security@ of the base URL's host",
            )
        )
    storage = config.get("RATELIMIT_STORAGE_URI") or "memory://"
    if production and storage.startswith("memory://"):
        checks.append(
            Check("rate limits", "WARN", "kept per process: each app server counts on its own")
        )
    return checks
