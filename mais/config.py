"""Configuration: defaults, then the environment, then the test mapping.

With no environment at all the application runs on SQLite under ``instance/``, mock payments and
mail written to files, and keeps generated development secrets in ``instance/secrets.json``. In
production (``MAIS_ENV=production``) every secret must come from the environment.
"""

from __future__ import annotations

import base64
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

PRODUCTION_REQUIRED = ("DATABASE_URL", "SECRET_KEY", "MAIS_SECRETS_KEY", "MAIS_BASE_URL")
STRIPE_REQUIRED = ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")


def _dev_secrets(instance_path: Path) -> dict[str, str]:
    """Secrets generated once per checkout so that restarts keep sessions and encrypted keys."""
    path = instance_path / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    generated = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "MAIS_SECRETS_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MOCK_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(32),
    }
    instance_path.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(generated, indent=2))
    path.chmod(0o600)
    return generated


def build_config(
    instance_path: str, env: dict[str, str] | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    overrides = overrides or {}
    instance = Path(instance_path)
    is_production = env.get("MAIS_ENV", "development") == "production"

    if is_production:
        missing = [name for name in PRODUCTION_REQUIRED if not env.get(name)]
        if (
            env.get("MAIS_PAYMENTS", "stripe" if env.get("STRIPE_SECRET_KEY") else "mock")
            == "stripe"
        ):
            missing += [name for name in STRIPE_REQUIRED if not env.get(name)]
        if missing:
            raise ConfigurationError(
                "MAIS_ENV=production needs these environment variables: " + ", ".join(missing)
            )
        generated: dict[str, str] = {}
    elif all(overrides.get(n) or env.get(n) for n in ("SECRET_KEY", "MAIS_SECRETS_KEY")):
        generated = {}
    else:
        generated = _dev_secrets(instance)

    def setting(name: str, default: Any = None) -> Any:
        if name in overrides:
            return overrides[name]
        return env.get(name) or generated.get(name) or default

    def seconds(name: str, default: float) -> float:
        value = setting(name, default)
        try:
            parsed = float(value)
        except (TypeError, ValueError):
            parsed = float("nan")
        if not (math.isfinite(parsed) and parsed > 0):
            raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
        return parsed

    database_url = setting("DATABASE_URL", f"sqlite:///{instance / 'mais.db'}")
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    engine_options: dict[str, Any] = {"pool_pre_ping": True}
    if database_url.startswith("postgresql"):
        # A down or unreachable server must fail fast (503), never hang a request.
        engine_options["connect_args"] = {"connect_timeout": 5}

    stripe_key = setting("STRIPE_SECRET_KEY")
    payments = setting("MAIS_PAYMENTS", "stripe" if stripe_key else "mock")
    if payments not in ("mock", "stripe"):
        raise ConfigurationError(f"MAIS_PAYMENTS must be 'mock' or 'stripe', not {payments!r}")
    if payments == "stripe" and not stripe_key:
        raise ConfigurationError("MAIS_PAYMENTS=stripe needs STRIPE_SECRET_KEY")

    redis_url = setting("REDIS_URL")
    base_url = setting("MAIS_BASE_URL", "http://localhost:5000").rstrip("/")

    config: dict[str, Any] = {
        "MAIS_ENV": "production" if is_production else env.get("MAIS_ENV", "development"),
        "SECRET_KEY": setting("SECRET_KEY"),
        "MAIS_SECRETS_KEY": setting("MAIS_SECRETS_KEY"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "MAIS_PAYMENTS": payments,
        "STRIPE_SECRET_KEY": stripe_key,
        "STRIPE_WEBHOOK_SECRET": setting("STRIPE_WEBHOOK_SECRET")
        or generated.get("MOCK_WEBHOOK_SECRET"),
        "STRIPE_API_BASE": setting("STRIPE_API_BASE"),
        "REDIS_URL": redis_url,
        "MAIS_BASE_URL": base_url,
        "MAIS_DEMO_HOST_ORIGIN": setting("MAIS_DEMO_HOST_ORIGIN", "http://127.0.0.1:5001"),
        "MAIS_SMTP_URL": setting("MAIS_SMTP_URL"),
        "MAIS_MAIL_FROM": setting("MAIS_MAIL_FROM", "MAIS <bookings@localhost>"),
        "MAIS_MAIL_DIR": setting("MAIS_MAIL_DIR", str(instance / "mail")),
        "MAIS_UPLOAD_DIR": setting("MAIS_UPLOAD_DIR", str(instance / "uploads")),
        "MAIS_SEND_MAIL_INLINE": setting("MAIS_SEND_MAIL_INLINE", "0" if is_production else "1")
        in ("1", "true", True),
        # Mail retries (mais.mail): the backoff's first step and per-step cap, and how long
        # after its first attempt an undeliverable message is given up.
        "MAIS_MAIL_RETRY_BASE": seconds("MAIS_MAIL_RETRY_BASE", 30),
        "MAIS_MAIL_RETRY_CAP": seconds("MAIS_MAIL_RETRY_CAP", 3600),
        "MAIS_MAIL_GIVE_UP_AFTER": seconds("MAIS_MAIL_GIVE_UP_AFTER", 48 * 3600),
        # Calendar feeds on 127.0.0.1 (the demo's and the tests'); off unless set explicitly.
        "MAIS_OUTBOUND_ALLOW_LOOPBACK": setting("MAIS_OUTBOUND_ALLOW_LOOPBACK", "0")
        in ("1", "true", True),
        "MAIS_HOLD_MINUTES": int(setting("MAIS_HOLD_MINUTES", 30)),
        # How long a request waits for a date's lock before answering "busy, try again".
        "MAIS_DATE_LOCK_TIMEOUT_MS": int(setting("MAIS_DATE_LOCK_TIMEOUT_MS", 5000)),
        "MAIS_BOOKING_HORIZON_DAYS": int(setting("MAIS_BOOKING_HORIZON_DAYS", 730)),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": is_production,
        "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": None,
        "CACHE_TYPE": setting("MAIS_CACHE_TYPE", "RedisCache" if redis_url else "SimpleCache"),
        "CACHE_REDIS_URL": redis_url,
        "CACHE_DEFAULT_TIMEOUT": 300,
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Only for drills that press one button hundreds of times from one address.
        "RATELIMIT_ENABLED": setting("MAIS_RATE_LIMITS", "on") != "off",
        "MAIS_METRICS_TOKEN": setting("MAIS_METRICS_TOKEN"),
        "MAIS_SECURITY_CONTACT": setting("MAIS_SECURITY_CONTACT"),
        "MAIS_API_RATE_LIMIT": setting("MAIS_API_RATE_LIMIT", "300 per minute"),
    }
    config.update(overrides)
    if not config["SECRET_KEY"] or not config["MAIS_SECRETS_KEY"]:
        raise ConfigurationError("SECRET_KEY and MAIS_SECRETS_KEY are required")
    return config
