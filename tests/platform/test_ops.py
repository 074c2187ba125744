"""Operations: cache health, Prometheus metrics, security.txt, CSP reports, logs, doctor."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from mais import metrics
from mais.cache import CATALOG, get_or_set
from mais.doctor import run_checks
from mais.extensions import db, limiter
from mais.logs import JsonFormatter
from mais.personal_data import scrub

from ..conftest import app_config
from ..factories import make_tenant


def test_health_cache_reports_backend_and_figures(client: FlaskClient, app_ctx: Flask) -> None:
    before = client.get("/health/cache").json
    assert before["backend"] == "simple"
    tenant = make_tenant()
    get_or_set(tenant, CATALOG, ("probe",), lambda: "value")
    get_or_set(tenant, CATALOG, ("probe",), lambda: "value")
    after = client.get("/health/cache").json
    assert after["hits"] == before["hits"] + 1
    assert after["misses"] == before["misses"] + 1
    total = after["hits"] + after["misses"]
    assert after["hit_rate"] == round(after["hits"] / total, 4)


def test_health_cache_on_redis(redis_app) -> None:  # noqa: ANN001
    application, _prefix = redis_app
    figures = application.test_client().get("/health/cache").json
    assert figures["backend"] == "redis"
    assert set(figures) == {"backend", "hits", "misses", "hit_rate"}


def test_metrics_are_in_prometheus_text_format(client: FlaskClient) -> None:
    client.get("/health")
    metrics.record_booking()
    metrics.record_hold_lost_to_race()
    metrics.record_webhook_outcome("processed")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert (
        'mais_request_duration_seconds_count{endpoint="ops.health",method="GET",status="2xx"}'
        in text
    )
    assert "mais_bookings_total " in text
    assert "mais_holds_lost_to_races_total " in text
    assert 'mais_webhook_events_total{outcome="processed"}' in text
    assert 'mais_outbox_backlog{status="pending"}' in text


@pytest.mark.parametrize("path", ["/metrics", "/health/cache"])
def test_metrics_need_the_token_when_one_is_set(app: Flask, client: FlaskClient, path: str) -> None:
    app.config["MAIS_METRICS_TOKEN"] = "scrape-token"
    try:
        assert client.get(path).status_code == 404
        wrong = client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 404
        ok = client.get(path, headers={"Authorization": "Bearer scrape-token"})
        assert ok.status_code == 200
    finally:
        app.config["MAIS_METRICS_TOKEN"] = None


@pytest.mark.parametrize("path", ["/metrics", "/health/cache"])
def test_production_closes_metrics_and_cache_figures_without_a_token(
    separate_app: Callable[..., Flask], path: str
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    closed = separate_app(MAIS_ENV="production", MAIS_BASE_URL="https://mais.example")
    client = closed.test_client()
    assert client.get("/health", headers=https).status_code == 200
    assert client.get(path, headers=https).status_code == 404
    guessed = {**https, "Authorization": "Bearer "}
    assert client.get(path, headers=guessed).status_code == 404

    scraped = separate_app(
        MAIS_ENV="production", MAIS_BASE_URL="https://mais.example", MAIS_METRICS_TOKEN="s3cret"
    ).test_client()
    assert scraped.get(path, headers=https).status_code == 404
    wrong = {**https, "Authorization": "Bearer nope"}
    assert scraped.get(path, headers=wrong).status_code == 404
    right = {**https, "Authorization": "Bearer s3cret"}
    assert scraped.get(path, headers=right).status_code == 200


def test_security_txt(client: FlaskClient) -> None:
    response = client.get("/.well-known/security.txt")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    fields = dict(line.split(": ", 1) for line in response.get_data(as_text=True).splitlines())
    assert set(fields) == {"Contact", "Expires", "Preferred-Languages", "Canonical"}
    assert fields["Contact"].startswith(("mailto:", "https://"))
    assert fields["Canonical"] == "http://localhost/.well-known/security.txt"
    expires = datetime.strptime(fields["Expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert datetime.now(UTC) < expires < datetime.now(UTC) + timedelta(days=366)


CSP_REPORT = {
    "csp-report": {
        "document-uri": "https://mais.example/portal/reset/secret-token?email=ada@example.com",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "blocked-uri": "https://evil.example/steal.js?key=pk_live_x_" + "a" * 32,
        "source-file": "https://mais.example/static/x.js",
    }
}


def test_csp_report_is_logged_sanitized_and_answers_204(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mais.csp"):
        response = client.post(
            "/csp-report", data=json.dumps(CSP_REPORT), content_type="application/csp-report"
        )
    assert response.status_code == 204
    (record,) = [r for r in caplog.records if r.name == "mais.csp"]
    line = JsonFormatter().format(record)
    assert '"directive":"script-src-elem"' in line
    assert '"blocked":"https://evil.example"' in line
    assert '"page":"/portal/reset/secret-token"' in line
    for secret in ("ada@example.com", "pk_live", "steal.js", "email="):
        assert secret not in line


def test_reporting_api_format_is_accepted(client: FlaskClient) -> None:
    body = [
        {"type": "csp-violation", "body": {"effectiveDirective": "img-src", "blockedURL": "data"}}
    ]
    response = client.post(
        "/csp-report", data=json.dumps(body), content_type="application/reports+json"
    )
    assert response.status_code == 204


@pytest.mark.parametrize("body", [b"not json", b"{}", b"[]", b'"x"'])
def test_a_malformed_csp_report_is_refused(client: FlaskClient, body: bytes) -> None:
    assert (
        client.post("/csp-report", data=body, content_type="application/csp-report").status_code
        == 400
    )


def test_an_oversized_csp_report_answers_413(client: FlaskClient) -> None:
    report = {"csp-report": {"violated-directive": "img-src", "blocked-uri": "x" * 17000}}
    response = client.post(
        "/csp-report", data=json.dumps(report), content_type="application/csp-report"
    )
    assert response.status_code == 413


def test_csp_reports_need_no_csrf_token_and_are_rate_limited(
    database_url: str, tmp_path: Path
) -> None:
    was_enabled = limiter.enabled
    application = create_app(
        app_config(database_url, tmp_path, WTF_CSRF_ENABLED=True, RATELIMIT_ENABLED=True)
    )
    try:
        client = application.test_client()
        statuses = [
            client.post(
                "/csp-report", data=json.dumps(CSP_REPORT), content_type="application/csp-report"
            ).status_code
            for _ in range(31)
        ]
        assert statuses[:30] == [204] * 30
        assert statuses[30] == 429
    finally:
        limiter.enabled = was_enabled
        with application.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    "text",
    [
        "owner ada.lovelace@example.com logged in",
        "key pk_live_bluebird_" + "A" * 32,
        "secret sk_live_bluebird_" + "b" * 32,
        "signing whsec_abcdefghijklmnop",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def",
        "reset?token=abcdef123456&x=1",
        "phone +1 (555) 010-9999",
    ],
)
def test_logs_never_carry_personal_data_or_secrets(text: str) -> None:
    cleaned = scrub(text)
    for secret in (
        "ada.lovelace",
        "pk_live_bluebird",
        "sk_live_",
        "whsec_abc",
        "eyJhbG",
        "abcdef123456",
        "010-9999",
    ):
        assert secret not in cleaned


def test_ids_with_long_digit_runs_are_not_mistaken_for_phone_numbers() -> None:
    hold_id = "6f7631b6b52d478a9a1234567890d0ff"
    assert scrub(f"hold {hold_id} created") == f"hold {hold_id} created"
    assert scrub("call 555 123 4567.") == "call [number]."


def test_log_lines_are_json_with_scrubbed_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "mais.test",
            "levelname": "INFO",
            "msg": "mail to %s",
            "args": ("ada@example.com",),
        }
    )
    record.couple_email = "ada@example.com"
    record.status = 200
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "mail to [email]"
    assert entry["couple_email"] == "[email]" and entry["status"] == 200
    assert entry["level"] == "info" and entry["logger"] == "mais.test"


def test_every_request_is_logged_without_its_path(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mais.access"):
        client.get("/portal/reset/some-secret-token?email=ada@example.com")
    (record,) = [r for r in caplog.records if r.name == "mais.access"]
    line = JsonFormatter().format(record)
    assert "some-secret-token" not in line and "ada@example.com" not in line
    assert '"method":"GET"' in line and '"status":' in line


def test_doctor_reports_weak_production_configuration(app: Flask) -> None:
    weak = {
        "MAIS_ENV": "production",
        "SECRET_KEY": "a" * 40,
        "MAIS_BASE_URL": "http://mais.example",
        "SESSION_COOKIE_SECURE": False,
        "MAIS_METRICS_TOKEN": None,
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    saved = {name: app.config.get(name) for name in weak}
    app.config.update(weak)
    try:
        with app.app_context():
            checks = {(c.name, c.level) for c in run_checks(app)}
    finally:
        app.config.update(saved)
    assert ("SECRET_KEY", "FAIL") in checks
    assert ("MAIS_BASE_URL", "FAIL") in checks
    assert ("SESSION_COOKIE_SECURE", "FAIL") in checks
    assert ("MAIS_METRICS_TOKEN", "FAIL") in checks
    assert ("rate limits", "WARN") in checks
    # Several worker processes without a shared cache would each keep a stale copy.
    assert ("REDIS_URL", "FAIL") in checks


SOUND_PRODUCTION = {
    "MAIS_ENV": "production",
    "SECRET_KEY": "Zq8vN2xLr5TkWm9Hc3JpYb7GdF4sEa6U",
    "MAIS_BASE_URL": "https://mais.example",
    "SESSION_COOKIE_SECURE": True,
    "MAIS_METRICS_TOKEN": "scrape-token",
    "MAIS_SECURITY_CONTACT": "mailto:security@mais.example",
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


@pytest.mark.parametrize(("token", "exit_code"), [(None, 1), ("scrape-token", 0)])
def test_doctor_command_fails_production_without_a_metrics_token(
    app: Flask, token: str | None, exit_code: int
) -> None:
    settings = {**SOUND_PRODUCTION, "MAIS_METRICS_TOKEN": token}
    saved = {name: app.config.get(name) for name in settings}
    app.config.update(settings)
    try:
        result = app.test_cli_runner().invoke(args=["mais", "doctor"])
    finally:
        app.config.update(saved)
    assert result.exit_code == exit_code, result.output
    failures = [line for line in result.output.splitlines() if line.startswith("[FAIL]")]
    if token is None:
        (failure,) = failures
        assert failure.startswith("[FAIL] MAIS_METRICS_TOKEN: unset:")
        assert "bearer token" in failure
    else:
        assert failures == []


def test_doctor_accepts_a_sound_production_configuration(app: Flask) -> None:
    sound = SOUND_PRODUCTION
    saved = {name: app.config.get(name) for name in sound}
    app.config.update(sound)
    try:
        with app.app_context():
            checks = run_checks(app)
    finally:
        app.config.update(saved)
    assert not [c for c in checks if c.level == "FAIL"]
    assert ("MAIS_METRICS_TOKEN", "OK") in {(c.name, c.level) for c in checks}
