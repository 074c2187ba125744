"""Pay: the hold, the top-window checkout, the way back and the confirmation view."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import psycopg

from mais import booking
from mais.extensions import db
from mais.models import DateHold

from .conftest import HOST_ORIGIN

COUPLE = {"couple_name": "Ada", "partner_name": "Grace", "email": "ada@example.com", "phone": ""}


def _summary_token(client, shop, on_date, prefix: str) -> str:
    """Walk catalog → package → date → details and return the summary's signed selection."""
    slug, embed = shop.tenant.slug, shop.embed if prefix == "widget" else {}

    def token_of(response) -> str:
        return re.search(r'name="s" value="([^"]+)"', response.get_data(as_text=True)).group(1)

    response = client.get(
        f"/{prefix}/{slug}/date",
        query_string={**embed, "package": "courthouse", "addon": shop.bouquet.id},
    )
    response = client.get(
        f"/{prefix}/{slug}/details",
        query_string={**embed, "s": token_of(response), "date": on_date},
    )
    response = client.post(
        f"/{prefix}/{slug}/details", data={**embed, "s": token_of(response), **COUPLE}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return token_of(response)


def test_hosted_pay_holds_the_date_and_redirects_to_checkout(client, shop, open_day):
    token = _summary_token(client, shop, open_day, "book")
    response = client.post(f"/book/{shop.tenant.slug}/pay", data={"s": token})
    assert response.status_code == 303
    assert response.location.startswith("http://localhost/checkout/mock/")
    hold = db.session.query(DateHold).one()
    assert (hold.on_date, hold.total_cents, hold.email) == (open_day, 129000, "ada@example.com")
    assert hold.return_url is None


def test_hosted_pay_over_htmx_redirects_the_page(client, shop, open_day):
    token = _summary_token(client, shop, open_day, "book")
    response = client.post(
        f"/book/{shop.tenant.slug}/pay", data={"s": token}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("http://localhost/checkout/mock/")


def test_embedded_pay_asks_the_loader_to_navigate_then_confirms_in_the_widget(
    client, shop, open_day
):
    slug = shop.tenant.slug
    token = _summary_token(client, shop, open_day, "widget")
    response = client.post(f"/widget/{slug}/pay", data={**shop.embed, "s": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    checkout_url = re.search(r'data-navigate="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert 'target="_top"' in html
    assert db.session.query(DateHold).one().return_url == f"{HOST_ORIGIN}/weddings?x=1"

    # The mock checkout takes the payment at the top level and sends the couple back; like
    # Stripe's page, its form may lead back to the tenant's site.
    path = urlsplit(checkout_url)
    policy = client.get(f"{path.path}?{path.query}").headers["Content-Security-Policy"]
    assert f"form-action 'self' https://checkout.stripe.com {HOST_ORIGIN}" in policy
    paid = client.post(f"{path.path}/pay?{path.query}")
    assert paid.status_code == 303
    back = urlsplit(paid.location)
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{HOST_ORIGIN}/weddings"
    query = parse_qs(back.query)
    assert query["x"] == ["1"]
    reference_token = query["mais_booking"][0]

    # The loader reopens the widget with the signed reference: the confirmation view.
    response = client.get(
        f"/widget/{slug}/", query_string={**shop.embed, "booking": reference_token}
    )
    html = response.get_data(as_text=True)
    found = booking.find_booking_for_hold(shop.tenant, db.session.query(DateHold).one().id)
    assert found is not None
    assert "You’re booked!" in html
    assert f'data-booked="{found.reference}"' in html
    assert "$1,290.00" in html


def test_a_reference_signed_for_another_tenant_opens_the_catalog(client, shop, other_tenant):
    from widget.state import sign_booking

    foreign = sign_booking(other_tenant.id, "abc")
    html = client.get(
        f"/widget/{shop.tenant.slug}/", query_string={**shop.embed, "booking": foreign}
    ).get_data(as_text=True)
    assert "Choose a package" in html


def test_confirmation_waits_for_the_webhook(client, shop, open_day):
    from widget.state import sign_booking

    token = _summary_token(client, shop, open_day, "book")
    client.post(f"/book/{shop.tenant.slug}/pay", data={"s": token})
    hold = db.session.query(DateHold).one()
    response = client.get(
        f"/book/{shop.tenant.slug}/confirmed/{sign_booking(shop.tenant.id, hold.id)}"
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Confirming your payment" in html and 'hx-trigger="load delay:2s"' in html
    assert client.get(f"/book/{shop.tenant.slug}/confirmed/forged").status_code == 400


def test_a_date_taken_meanwhile_offers_the_next_open_dates(client, shop, open_day):
    first = _summary_token(client, shop, open_day, "book")
    second = _summary_token(client, shop, open_day, "book")
    assert client.post(f"/book/{shop.tenant.slug}/pay", data={"s": first}).status_code == 303
    response = client.post(f"/book/{shop.tenant.slug}/pay", data={"s": second})
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "This date was just taken" in html
    offered = re.findall(r'name="date" value="([0-9-]+)"', html)
    assert len(offered) == 3 and open_day.isoformat() not in offered
    assert db.session.query(DateHold).count() == 1

    # Choosing an offered date shows the summary again with that date, details kept: a POST,
    # since the (sealed) details never go into a URL.
    assert re.search(r'<form method="post" action="/book/[^"]+/summary"', html)
    again = client.post(
        f"/book/{shop.tenant.slug}/summary",
        data={
            "s": re.search(r'name="s" value="([^"]+)"', html).group(1),
            "date": offered[0],
        },
    )
    assert "Review and pay" in again.get_data(as_text=True)
    assert "ada@example.com" in again.get_data(as_text=True)


def test_pay_facing_a_stuck_date_lock_says_busy_within_seconds(
    app, client, shop, open_day, database_url, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIS_DATE_LOCK_TIMEOUT_MS", 300)
    token = _summary_token(client, shop, open_day, "book")
    with psycopg.connect(database_url) as stuck:
        stuck.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", (shop.tenant.id, open_day.toordinal())
        )
        started = time.monotonic()
        response = client.post(f"/book/{shop.tenant.slug}/pay", data={"s": token})
        assert time.monotonic() - started < 3
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "This date is being booked right now" in html and "try again" in html
    assert db.session.query(DateHold).count() == 0
    # Once the other booking ends, the same summary pays.
    assert client.post(f"/book/{shop.tenant.slug}/pay", data={"s": token}).status_code == 303
