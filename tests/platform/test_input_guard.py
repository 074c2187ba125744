"""Untrusted text no page wants (NUL and other controls, bytes that are not UTF-8, a host that is
not one) is refused with a 400 that says why, before any route, hook or the landing cache."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mais.extensions import db
from mais.models import Tenant

from ..factories import make_tenant


@pytest.fixture
def shop(app_ctx: Flask) -> Tenant:
    tenant = make_tenant()
    db.session.flush()
    return tenant


def _assert_refused(response, words: str) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert words in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "url", ["/book/%00/", "/widget/a%00b/", "/widget/x%01y/date", "/portal/packages/%00", "/%0a"]
)
def test_a_control_character_in_the_path_is_refused_with_a_page(
    client: FlaskClient, url: str
) -> None:
    response = client.get(url)
    _assert_refused(response, "The address contains a control character")
    assert response.mimetype == "text/html"


def test_the_api_refuses_in_its_own_json_error_shape(client: FlaskClient, shop: Tenant) -> None:
    key = {"X-Tenant-Key": shop.issued_keys.public_key}  # type: ignore[attr-defined]
    response = client.get("/v1/packages/%00", headers=key)
    assert response.status_code == 400 and response.is_json
    assert response.json == {
        "error": "The address contains a control character or text that is not UTF-8."
    }
    response = client.get("/v1/availability?from=2027-01-01%00&to=2027-01-02", headers=key)
    assert response.status_code == 400 and "query string" in response.json["error"]


@pytest.mark.parametrize("path_info", ["/book/\xff/", "/book/\xed\xa0\x80/", "/v1/packages/\xc3"])
def test_bytes_that_are_not_utf8_in_the_path_are_refused(
    client: FlaskClient, path_info: str
) -> None:
    # As a server hands the path over: its percent-decoded bytes, read as latin-1.
    response = client.get("/", environ_overrides={"PATH_INFO": path_info})
    _assert_refused(response, "not UTF-8")


@pytest.mark.parametrize(
    "query", ["next=%0d%0aSet-Cookie:x", "month=%ff", "a%00=1", "s=%c2%85", "key=\x7f"]
)
def test_a_control_character_or_broken_utf8_in_the_query_is_refused(
    client: FlaskClient, query: str
) -> None:
    response = client.get("/portal/login", query_string=query)
    _assert_refused(response, "The query string contains a control character")
    assert "x" not in response.headers.getlist("Set-Cookie")


@pytest.mark.parametrize(
    ("header", "value", "named"),
    [
        ("HTTP_ORIGIN", "https://studio.example\x00", "Origin"),
        ("HTTP_REFERER", "https://studio.example/\r\nx", "Referer"),
        ("HTTP_HX_REQUEST", "true\x00", "Hx-Request"),
        ("HTTP_HX_CURRENT_URL", "\x85", "Hx-Current-Url"),
        ("HTTP_X_TENANT_KEY", "pk_live_\x00", "X-Tenant-Key"),
        ("HTTP_ACCEPT_LANGUAGE", "en\x1b", "Accept-Language"),
        ("HTTP_AUTHORIZATION", "Bearer \xff", "Authorization"),
        ("HTTP_X_FORWARDED_FOR", "1.2.3.4\x00", "X-Forwarded-For"),
        ("HTTP_X_FORWARDED_HOST", "evil..example", "X-Forwarded-Host"),
        ("HTTP_HOST", "..", "Host"),
        ("HTTP_HOST", "a" * 300, "Host"),
        ("HTTP_USER_AGENT", "curl\x00", "User-Agent"),
    ],
)
def test_a_broken_header_is_refused_and_named(
    client: FlaskClient, shop: Tenant, header: str, value: str, named: str
) -> None:
    response = client.get(f"/book/{shop.slug}/", environ_overrides={header: value})
    _assert_refused(response, f"The {named} header")


def test_a_broken_cookie_is_refused(app: Flask, shop: Tenant) -> None:
    client = app.test_client(use_cookies=False)
    response = client.get("/portal/login", environ_overrides={"HTTP_COOKIE": "session=\x00"})
    _assert_refused(response, "The Cookie header")


def test_the_guard_stands_in_front_of_the_landing_cache(client: FlaskClient, shop: Tenant) -> None:
    url = f"/book/{shop.slug}/"
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200  # now answered from the cache
    response = client.get(url, environ_overrides={"HTTP_ACCEPT_LANGUAGE": "en\x00"})
    _assert_refused(response, "The Accept-Language header")


def test_ordinary_text_passes(client: FlaskClient, shop: Tenant) -> None:
    response = client.get(
        f"/book/{shop.slug}/",
        query_string="q=caf%C3%A9+%E2%82%AC&x=%F0%9F%92%8D",
        environ_overrides={
            # UTF-8 as a server hands it over (latin-1): "€" holds the byte 0x82.
            "HTTP_ACCEPT_LANGUAGE": "fr-CH,\tfr;q=0.9",
            "HTTP_USER_AGENT": "Déjà vu €".encode().decode("latin-1"),
            "HTTP_HOST": "studio.example:8080",
        },
    )
    assert response.status_code == 200


def test_nul_in_a_form_field_is_refused_before_the_database(client: FlaskClient) -> None:
    response = client.post(
        "/portal/signup",
        data={"name": "Fern\x00", "slug": "fern", "email": "a@b.example", "password": "x" * 12},
    )
    _assert_refused(response, "NUL characters")


@pytest.mark.parametrize(
    "target",
    [
        "/portal/\r\nSet-Cookie: x=1",
        "/portal/\x85",
        "//evil.example",
        "/portal//evil.example",
        "/\\evil.example",
        "/portal\\..\\..\\evil",
        "https://evil.example/portal",
        "javascript:alert(1)",
        "",
    ],
)
def test_login_leads_only_to_a_local_portal_path(
    client: FlaskClient, shop: Tenant, target: str
) -> None:
    response = client.post(
        "/portal/login",
        data={
            "email": shop.owner.email,  # type: ignore[attr-defined]
            "password": shop.owner_password,  # type: ignore[attr-defined]
            "next": target,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/portal/"


def test_login_honours_a_local_portal_path(client: FlaskClient, shop: Tenant) -> None:
    response = client.post(
        "/portal/login",
        data={
            "email": shop.owner.email,  # type: ignore[attr-defined]
            "password": shop.owner_password,  # type: ignore[attr-defined]
            "next": "/portal/packages?page=2",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/portal/packages?page=2"
