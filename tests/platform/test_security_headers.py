"""Every route answers with the security headers; only the widget may be framed, and only by
its own tenant's origins. HSTS in production behind a TLS-terminating proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.routing import Rule

from app import create_app
from mais.extensions import db
from mais.tenancy import tenant_scope

from ..conftest import app_config
from ..factories import make_package, make_tenant

ORIGIN = "https://studio.example"


def _directives(policy: str) -> dict[str, list[str]]:
    directives = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def _dummy_value(name: str, converter: str, tenant: Studio) -> str:
    if name in ("slug", "tenant_slug"):
        return tenant.slug
    if name == "package_slug":
        return "courthouse"
    if converter in ("IntegerConverter", "FloatConverter"):
        return "1"
    return "x"


def _url_for_rule(rule: Rule, tenant: Studio) -> str:
    path = rule.rule
    for _converter, name in re.findall(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", path):
        converter_class = type(rule._converters[name]).__name__
        path = re.sub(
            rf"<[^>]*\b{name}>", _dummy_value(name, converter_class, tenant), path, count=1
        )
    return path


@dataclass(frozen=True)
class Studio:
    slug: str
    key: str


@pytest.fixture
def studio(app: Flask) -> Studio:
    """Made in an application context of its own: requests made while a context is pushed
    would share its ``g`` with one another, which no real request does."""
    with app.app_context():
        tenant = make_tenant(allowed_origins=[ORIGIN])
        with tenant_scope(tenant):
            make_package(tenant, "Courthouse", slug="courthouse")
            db.session.flush()
        studio = Studio(tenant.slug, tenant.issued_keys.public_key)  # type: ignore[attr-defined]
        # Into the test's outer transaction (rolled back at its end) before the context ends.
        db.session.commit()
        return studio


@pytest.mark.parametrize("visitor", ["anonymous", "platform admin"])
def test_every_route_answers_with_the_security_headers(
    app: Flask, studio: Studio, visitor: str, request: pytest.FixtureRequest
) -> None:
    client = (
        app.test_client() if visitor == "anonymous" else request.getfixturevalue("admin_client")
    )
    key = studio.key
    allowed_framers = {ORIGIN, app.config["MAIS_BASE_URL"]}
    framed_endpoints, checked = set(), 0
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crashing route must still send its headers
    try:
        for rule in app.url_map.iter_rules():
            url = _url_for_rule(rule, studio)
            response = client.get(
                url, query_string={"key": key, "origin": ORIGIN}, headers={"X-Tenant-Key": key}
            )
            checked += 1
            where = f"GET {url} ({rule.endpoint}) -> {response.status_code}"
            headers = response.headers
            assert headers.get("X-Content-Type-Options") == "nosniff", where
            assert headers.get("Referrer-Policy") == "strict-origin-when-cross-origin", where
            policy = _directives(headers.get("Content-Security-Policy", ""))
            assert policy.get("default-src") == ["'self'"], where
            for directive in ("script-src", "style-src"):
                assert policy.get(directive) == ["'self'"], where
            assert policy.get("object-src") == ["'none'"], where
            ancestors = policy.get("frame-ancestors")
            assert ancestors, where
            if ancestors != ["'none'"]:
                framed_endpoints.add(rule.endpoint)
                assert rule.endpoint.startswith("widget."), where
                assert set(ancestors) <= allowed_framers, where
                assert "X-Frame-Options" not in headers, where
            else:
                assert headers.get("X-Frame-Options") == "DENY", where
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    assert checked >= 20
    if "widget" in app.blueprints:
        # The walk did reach a framable widget page, so the check above is not vacuous.
        assert any(e.startswith("widget.embed_") for e in framed_endpoints)


def test_a_widget_page_cannot_be_framed_by_another_tenants_origin(
    app: Flask, studio: Studio
) -> None:
    if "widget" not in app.blueprints:
        pytest.fail("the widget blueprint is missing")
    with app.app_context():
        other = make_tenant(allowed_origins=["https://other.example"])
        other_slug, other_key = other.slug, other.issued_keys.public_key  # type: ignore[attr-defined]
        db.session.commit()
    response = app.test_client().get(
        f"/widget/{other_slug}/", query_string={"key": other_key, "origin": "https://other.example"}
    )
    ancestors = _directives(response.headers["Content-Security-Policy"])["frame-ancestors"]
    assert "https://other.example" in ancestors
    assert ORIGIN not in ancestors


def test_non_widget_pages_deny_framing(client) -> None:  # noqa: ANN001
    for path in ("/health", "/portal/login", "/admin/", "/v1/openapi.json"):
        policy = _directives(client.get(path).headers["Content-Security-Policy"])
        assert policy["frame-ancestors"] == ["'none'"]


def test_csp_reports_go_to_the_report_endpoint(client) -> None:  # noqa: ANN001
    policy = _directives(client.get("/health").headers["Content-Security-Policy"])
    assert policy["report-uri"] == ["/csp-report"]


@pytest.fixture
def production_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    application = create_app(
        app_config(
            database_url, tmp_path, MAIS_ENV="production", MAIS_BASE_URL="https://mais.example"
        )
    )
    yield application
    with application.app_context():
        db.engine.dispose()


def test_hsts_in_production_behind_https(production_app: Flask) -> None:
    client = production_app.test_client()
    secure = client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 200
    assert "max-age=31536000" in secure.headers["Strict-Transport-Security"]
    plain = client.get("/health")
    assert plain.status_code in (301, 302)
    assert plain.headers["Location"].startswith("https://")


def test_no_hsts_in_development(client) -> None:  # noqa: ANN001
    assert "Strict-Transport-Security" not in client.get("/health").headers
