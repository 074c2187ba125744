"""The public JSON API: keys, tenant isolation, CORS, conditional reads, rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from mais.booking import today
from mais.extensions import db, limiter
from mais.models import Tenant
from mais.tenancy import tenant_scope

from ..conftest import app_config
from ..factories import make_addon, make_blackout, make_tenant
from ..factories import make_package as _make_package

ORIGIN = "https://studio.example"


def make_package(tenant: Tenant, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    with tenant_scope(tenant):
        package = _make_package(tenant, *args, **kwargs)
        db.session.flush()
    return package


def key_of(tenant: Tenant) -> dict[str, str]:
    return {"X-Tenant-Key": tenant.issued_keys.public_key}  # type: ignore[attr-defined]


@pytest.fixture
def studio(app_ctx: Flask) -> Tenant:
    tenant = make_tenant(allowed_origins=[ORIGIN])
    with tenant_scope(tenant):
        addon = make_addon(tenant, "Bouquet", 7500)
        db.session.flush()
    make_package(tenant, "Courthouse elopement", 120000, slug="courthouse", addons=[addon])
    make_package(tenant, "Hidden", 1000, slug="hidden", is_active=False)
    return tenant


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Tenant-Key": ""},
        {"X-Tenant-Key": "pk_live_nobody_" + "a" * 32},
        {"X-Tenant-Key": "garbage"},
        {"Authorization": "Bearer pk_live_x"},
    ],
)
def test_a_missing_or_bad_key_answers_401_in_json(
    client: FlaskClient, studio: Tenant, headers: dict[str, str]
) -> None:
    for path in ("/v1/packages", "/v1/packages/courthouse", "/v1/availability"):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.is_json and "X-Tenant-Key" in response.json["error"]


def test_the_secret_key_is_not_a_public_key(client: FlaskClient, studio: Tenant) -> None:
    secret = studio.issued_keys.secret_key  # type: ignore[attr-defined]
    assert client.get("/v1/packages", headers={"X-Tenant-Key": secret}).status_code == 401


def test_packages_lists_only_active_packages(client: FlaskClient, studio: Tenant) -> None:
    response = client.get("/v1/packages", headers=key_of(studio))
    assert response.status_code == 200
    (package,) = response.json["packages"]
    assert package["slug"] == "courthouse"
    assert package["price_cents"] == 120000 and package["currency"] == "usd"
    assert package["addons"] == [
        {"id": package["addons"][0]["id"], "title": "Bouquet", "price_cents": 7500}
    ]


def test_one_package_and_unknown_slugs(client: FlaskClient, studio: Tenant) -> None:
    response = client.get("/v1/packages/courthouse", headers=key_of(studio))
    assert response.status_code == 200 and response.json["title"] == "Courthouse elopement"
    for slug in ("nope", "hidden", "courthouse/extra"):
        missing = client.get(f"/v1/packages/{slug}", headers=key_of(studio))
        assert missing.status_code == 404 and missing.is_json
        assert missing.json["error"]


def test_another_tenants_package_is_unreachable(client: FlaskClient, studio: Tenant) -> None:
    other = make_tenant()
    make_package(other, "Other's secret", slug="secret-package")
    response = client.get("/v1/packages/secret-package", headers=key_of(studio))
    assert response.status_code == 404
    listed = client.get("/v1/packages", headers=key_of(studio)).json["packages"]
    assert [p["slug"] for p in listed] == ["courthouse"]
    assert client.get("/v1/packages/secret-package", headers=key_of(other)).status_code == 200


def test_an_inactive_tenant_answers_404(client: FlaskClient, studio: Tenant) -> None:
    studio.is_active = False
    db.session.flush()
    for path in ("/v1/packages", "/v1/packages/courthouse"):
        response = client.get(path, headers=key_of(studio))
        assert response.status_code == 404 and response.is_json


def test_availability_reports_each_day(client: FlaskClient, studio: Tenant) -> None:
    start = today() + timedelta(days=10)
    with tenant_scope(studio):
        make_blackout(studio, start + timedelta(days=1), "Family wedding")
        db.session.flush()
    response = client.get(
        f"/v1/availability?from={start}&to={start + timedelta(days=2)}", headers=key_of(studio)
    )
    assert response.status_code == 200
    assert response.json == {
        "from": start.isoformat(),
        "to": (start + timedelta(days=2)).isoformat(),
        "days": [
            {"date": start.isoformat(), "is_open": True, "reason": None},
            {
                "date": (start + timedelta(days=1)).isoformat(),
                "is_open": False,
                "reason": "unavailable",
            },
            {"date": (start + timedelta(days=2)).isoformat(), "is_open": True, "reason": None},
        ],
    }


def test_a_new_blackout_shows_at_once_despite_the_cache(
    client: FlaskClient, studio: Tenant
) -> None:
    day = today() + timedelta(days=20)
    url = f"/v1/availability?from={day}&to={day}"
    assert client.get(url, headers=key_of(studio)).json["days"][0]["is_open"] is True
    with tenant_scope(studio):
        make_blackout(studio, day)
        db.session.flush()
    assert client.get(url, headers=key_of(studio)).json["days"][0]["is_open"] is False


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("", "from", "required"),
        ("from=2027-01-01", "to", "required"),
        ("from=tomorrow&to=2027-01-02", "from", "YYYY-MM-DD"),
        ("from=2027-01-01&to=2027-13-01", "to", "YYYY-MM-DD"),
        ("from=2027-02-01&to=2027-01-01", "to", "on or before"),
        ("from=2027-01-01&to=2028-01-02", "to", "366"),
        ("from=1999-12-31&to=2000-01-01", "from", "between"),
        ("from=2100-12-31&to=2101-01-01", "to", "between"),
        ("from=2027-01-01&to=10000-01-01", "to", "YYYY-MM-DD"),
    ],
)
def test_availability_validates_its_range(
    client: FlaskClient, studio: Tenant, query: str, field: str, words: str
) -> None:
    response = client.get(f"/v1/availability?{query}", headers=key_of(studio))
    assert response.status_code == 400
    assert response.json["field"] == field and words in response.json["error"]


def test_a_full_366_day_range_is_accepted(client: FlaskClient, studio: Tenant) -> None:
    response = client.get("/v1/availability?from=2028-01-01&to=2028-12-31", headers=key_of(studio))
    assert response.status_code == 200 and len(response.json["days"]) == 366


def test_cors_answers_only_the_tenants_allowed_origins(client: FlaskClient, studio: Tenant) -> None:
    allowed = client.get("/v1/packages", headers={**key_of(studio), "Origin": ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in allowed.headers["Vary"]
    for origin in ("https://evil.example", "http://studio.example", ORIGIN + ":8443", "null"):
        refused = client.get("/v1/packages", headers={**key_of(studio), "Origin": origin})
        assert refused.status_code == 200
        assert "Access-Control-Allow-Origin" not in refused.headers
    # Another tenant allowing the origin does not open this tenant's answers to it.
    make_tenant(allowed_origins=["https://other.example"])
    crossed = client.get(
        "/v1/packages", headers={**key_of(studio), "Origin": "https://other.example"}
    )
    assert "Access-Control-Allow-Origin" not in crossed.headers


def test_preflight_is_answered_for_allowed_origins_only(
    client: FlaskClient, studio: Tenant
) -> None:
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-tenant-key",
    }
    ok = client.options("/v1/packages", headers={**preflight, "Origin": ORIGIN})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Tenant-Key" in ok.headers["Access-Control-Allow-Headers"]
    assert "GET" in ok.headers["Access-Control-Allow-Methods"]
    refused = client.options(
        "/v1/packages", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_reads_carry_an_etag_and_answer_304(client: FlaskClient, studio: Tenant) -> None:
    for path in (
        "/v1/packages",
        "/v1/packages/courthouse",
        "/v1/availability?from=2028-01-01&to=2028-01-31",
    ):
        first = client.get(path, headers=key_of(studio))
        etag = first.headers["ETag"]
        assert first.status_code == 200 and etag
        assert "max-age=" in first.headers["Cache-Control"]
        again = client.get(path, headers={**key_of(studio), "If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""
        stale = client.get(path, headers={**key_of(studio), "If-None-Match": '"other"'})
        assert stale.status_code == 200


def test_the_etag_changes_when_the_catalog_does(client: FlaskClient, studio: Tenant) -> None:
    etag = client.get("/v1/packages", headers=key_of(studio)).headers["ETag"]
    make_package(studio, "Sunrise", slug="sunrise")
    response = client.get("/v1/packages", headers={**key_of(studio), "If-None-Match": etag})
    assert response.status_code == 200 and len(response.json["packages"]) == 2


def test_unknown_api_paths_answer_json(client: FlaskClient, studio: Tenant) -> None:
    response = client.get("/v1/nothing/here", headers=key_of(studio))
    assert response.status_code == 404 and response.is_json


def test_the_api_is_read_only(client: FlaskClient, studio: Tenant) -> None:
    response = client.post("/v1/packages", headers=key_of(studio))
    assert response.status_code == 405


@pytest.fixture
def rate_limited_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An application with rate limits on (the shared one has them off). The limiter keeps its
    on/off switch on itself, so it is put back for the other tests."""
    was_enabled = limiter.enabled
    application = create_app(
        app_config(
            database_url, tmp_path, RATELIMIT_ENABLED=True, MAIS_API_RATE_LIMIT="3 per minute"
        )
    )
    try:
        yield application
    finally:
        limiter.enabled = was_enabled
        with application.app_context():
            db.engine.dispose()


def test_the_rate_limit_is_per_key_and_answers_json_429(
    rate_limited_app: Flask, studio: Tenant
) -> None:
    other = make_tenant()
    client = rate_limited_app.test_client()
    for _ in range(3):
        assert client.get("/v1/packages", headers=key_of(studio)).status_code == 200
    limited = client.get("/v1/packages", headers=key_of(studio))
    assert limited.status_code == 429
    assert limited.is_json and "Too many requests" in limited.json["error"]
    assert limited.headers["Retry-After"]
    # Another key from the same address has a budget of its own.
    assert client.get("/v1/packages", headers=key_of(other)).status_code == 200


def test_routing_errors_under_v1_answer_in_the_api_error_shape(client, app_ctx):
    wrong_method = client.delete("/v1/packages")
    assert wrong_method.status_code == 405
    assert wrong_method.is_json and wrong_method.json["error"]
    assert "GET" in wrong_method.headers["Allow"]
    # Elsewhere a wrong method is still the plain page.
    assert not client.delete("/portal/login").is_json
