"""What the widget refuses: foreign embeddings, edited selections, cookies and framing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from mais.booking import today
from mais.extensions import db
from mais.tenant_registry import rotate_public_key
from tests.factories import make_tenant

from .conftest import HOST_ORIGIN


def _frame_ancestors(response) -> str:
    policy = response.headers["Content-Security-Policy"]
    return next(d for d in policy.split("; ") if d.startswith("frame-ancestors"))


def test_widget_may_be_framed_by_the_tenants_origins_only(client, shop):
    response = client.get(f"/widget/{shop.tenant.slug}/", query_string=shop.embed)
    assert _frame_ancestors(response) == f"frame-ancestors {HOST_ORIGIN} http://localhost"
    assert "X-Frame-Options" not in response.headers


def test_hosted_page_may_not_be_framed(client, shop):
    response = client.get(f"/book/{shop.tenant.slug}/")
    assert response.status_code == 200
    assert _frame_ancestors(response) == "frame-ancestors 'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "data-parent-origin" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "https://evil.example"},
        {"origin": "https://studio.example.evil.example"},
        {"key": "pk_live_nope_" + "a" * 32},
        {"key": ""},
    ],
)
def test_wrong_origin_or_key_is_refused(client, shop, change):
    response = client.get(f"/widget/{shop.tenant.slug}/", query_string={**shop.embed, **change})
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "cannot open here" in html and "Courthouse" not in html
    assert "data-parent-origin" not in html


def test_a_rotated_public_key_stops_working(client, shop):
    old = dict(shop.embed)
    rotate_public_key(shop.tenant)
    db.session.flush()
    assert client.get(f"/widget/{shop.tenant.slug}/", query_string=old).status_code == 403
    fresh = {**old, "key": shop.tenant.public_key}
    assert client.get(f"/widget/{shop.tenant.slug}/", query_string=fresh).status_code == 200


@pytest.mark.parametrize(
    "ret", ["https://evil.example/phish", "javascript:alert(1)", f"{HOST_ORIGIN}/{'x' * 2000}"]
)
def test_a_return_url_off_the_embedding_origin_or_too_long_is_dropped(client, shop, ret):
    response = client.get(f"/widget/{shop.tenant.slug}/", query_string={**shop.embed, "ret": ret})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "ret=" not in html and "Choose a package" in html


def test_unknown_tenant_is_a_404_page(client, app_ctx):
    for url in ("/widget/no-such-studio/", "/book/no-such-studio/"):
        response = client.get(url)
        assert response.status_code == 404
        assert "There is no booking page at this address." in response.get_data(as_text=True)


def test_inactive_tenant_takes_no_bookings(client, app_ctx):
    tenant = make_tenant(is_active=False)
    embed = {"key": tenant.public_key, "origin": HOST_ORIGIN}
    for url in (f"/widget/{tenant.slug}/", f"/book/{tenant.slug}/", f"/book/{tenant.slug}/date"):
        response = client.get(url, query_string=embed)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "is not taking bookings online" in html
        assert "Choose a package" not in html and "Choose your date" not in html


def _flip(token: str) -> str:
    payload, _, signature = token.partition(".")
    return payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature


@pytest.mark.parametrize("mangle", ["flip", "other-tenant", "garbage"])
def test_an_edited_selection_is_a_clear_400(client, shop, mangle):
    date_html = client.get(
        f"/widget/{shop.tenant.slug}/date", query_string={**shop.embed, "package": "courthouse"}
    ).get_data(as_text=True)
    token = re.search(r'name="s" value="([^"]+)"', date_html).group(1)
    slug, embed = shop.tenant.slug, shop.embed
    if mangle == "flip":
        token = _flip(token)
    elif mangle == "garbage":
        token = "not-a-token"
    else:
        # Signed for shop.tenant, replayed at another tenant's widget.
        other = make_tenant(allowed_origins=[HOST_ORIGIN])
        db.session.flush()
        slug, embed = other.slug, {"key": other.public_key, "origin": HOST_ORIGIN}
    day = today() + timedelta(days=20)
    response = client.get(
        f"/widget/{slug}/details", query_string={**embed, "s": token, "date": day}
    )
    assert response.status_code == 400
    assert "damaged or has expired" in response.get_data(as_text=True)
    assert "Start again" in response.get_data(as_text=True)


def test_no_widget_response_sets_a_cookie(client, shop):
    slug, embed = shop.tenant.slug, shop.embed
    day = today() + timedelta(days=21)
    responses = [
        client.get(f"/widget/{slug}/", query_string=embed),
        client.get(f"/widget/{slug}/", query_string={**embed, "origin": "https://x.example"}),
        client.get(f"/widget/{slug}/theme.css"),
        client.get(f"/widget/{slug}/package/courthouse", query_string=embed),
        client.get(f"/widget/{slug}/package/nope", query_string=embed),
        client.get(f"/widget/{slug}/date", query_string={**embed, "package": "courthouse"}),
    ]
    token = re.search(r'name="s" value="([^"]+)"', responses[-1].get_data(as_text=True)).group(1)
    responses.append(
        client.get(f"/widget/{slug}/details", query_string={**embed, "s": token, "date": day})
    )
    token = re.search(r'name="s" value="([^"]+)"', responses[-1].get_data(as_text=True)).group(1)
    couple = {"couple_name": "Ada", "partner_name": "", "email": "ada@example.com", "phone": ""}
    responses.append(client.post(f"/widget/{slug}/details", data={**embed, "s": token, **couple}))
    responses.append(client.post(f"/widget/{slug}/details", data={**embed, "s": "x"}))
    responses.append(client.get("/book/no-such-studio/"))
    assert [r.status_code for r in responses] == [200, 403, 200, 200, 404, 200, 200, 200, 400, 404]
    for response in responses:
        assert "Set-Cookie" not in response.headers
    assert client.get_cookie("session") is None


@pytest.mark.committed
def test_pay_is_rate_limited_per_visitor(separate_app):
    # Its own application, with rate limits on (the test settings turn them off).
    limited = separate_app(RATELIMIT_ENABLED=True)
    with limited.app_context():
        tenant = make_tenant()
        db.session.commit()
        slug = tenant.slug
    client = limited.test_client()
    statuses = [client.post(f"/book/{slug}/pay", data={"s": "x"}).status_code for _ in range(11)]
    assert statuses == [400] * 10 + [429]
    response = client.post(f"/book/{slug}/pay", data={"s": "x"})
    assert "Too many attempts" in response.get_data(as_text=True)
