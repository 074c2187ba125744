"""The booking flow step by step, through the Flask test client."""

from __future__ import annotations

import re
from datetime import timedelta

from mais.booking import today
from mais.extensions import db
from tests.factories import make_blackout

from .conftest import HOST_ORIGIN, htmx


def _token(html: str) -> str:
    match = re.search(r'name="s" value="([^"]+)"', html)
    assert match, "the step carries no signed selection"
    return match.group(1)


def test_catalog_lists_packages_grouped_by_segment(client, shop):
    response = client.get(f"/widget/{shop.tenant.slug}/", query_string=shop.embed)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<!doctype html>" in html
    assert html.index("Elopements") < html.index("Courthouse") < html.index("Garden party")
    assert "$1,200.00" in html and "$2,500.00" in html
    assert f'data-parent-origin="{HOST_ORIGIN}"' in html
    # One loading indicator serves every htmx request of the page.
    assert 'hx-indicator="#loading"' in html and 'id="loading" class="htmx-indicator' in html
    # Links keep the embedding context and work without JavaScript.
    assert re.search(r'href="/widget/[^"]+/package/courthouse\?[^"]*key=pk_live_', html)


def test_htmx_request_gets_the_step_block_alone(client, shop):
    response = htmx(client, f"/widget/{shop.tenant.slug}/", query_string=shop.embed)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and "Choose a package" in html
    assert "HX-Request" in response.headers["Vary"]


def test_package_step_shows_addons_and_a_server_computed_total(client, shop):
    url = f"/book/{shop.tenant.slug}/package/courthouse"
    html = client.get(url).get_data(as_text=True)
    assert "Bouquet" in html and "+$90.00" in html and "Violinist" in html
    assert "A lovely day." in html
    assert "Total <strong>$1,200.00</strong>" in html

    with_addons = {"addon": [shop.bouquet.id, shop.violin.id]}
    html = client.get(url, query_string=with_addons).get_data(as_text=True)
    assert "Total <strong>$1,690.00</strong>" in html

    partial = htmx(client, url, query_string=with_addons, headers={"HX-Target": "total"})
    assert partial.get_data(as_text=True).strip() == "Total <strong>$1,690.00</strong>"


def test_an_addon_the_package_does_not_offer_is_refused(client, shop, other_tenant):
    response = client.get(
        f"/book/{shop.tenant.slug}/package/garden", query_string={"addon": shop.bouquet.id}
    )
    assert response.status_code == 400
    assert "That extra is not available." in response.get_data(as_text=True)


def test_unknown_package_is_a_404_page(client, shop):
    response = client.get(f"/book/{shop.tenant.slug}/package/nope")
    assert response.status_code == 404
    assert "That package is not offered." in response.get_data(as_text=True)


def test_date_step_disables_closed_days_and_says_why(client, shop):
    closed_day = today() + timedelta(days=40)
    make_blackout(shop.tenant, closed_day, "Team retreat")
    db.session.flush()
    response = client.get(
        f"/book/{shop.tenant.slug}/date",
        query_string={
            "package": "courthouse",
            "addon": shop.bouquet.id,
            "month": closed_day.strftime("%Y-%m"),
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert closed_day.strftime("%B %Y") in html
    assert "Total $1,290.00" in html
    closed = re.search(
        rf'<span class="day closed" role="button" aria-disabled="true" aria-label="[^"]*{closed_day.day} '
        rf'{closed_day:%B %Y}, unavailable">{closed_day.day}<small aria-hidden="true">Closed',
        html,
    )
    assert closed, "the blacked-out day is not shown as closed with its reason"
    assert f'value="{closed_day.isoformat()}"' not in html
    open_day = closed_day + timedelta(days=1 if closed_day.day < 28 else -1)
    assert f'name="date" value="{open_day.isoformat()}"' in html


def test_current_month_shows_past_days_and_no_previous_link(client, shop):
    html = client.get(
        f"/book/{shop.tenant.slug}/date", query_string={"package": "courthouse"}
    ).get_data(as_text=True)
    assert "Previous month" not in html and "Next month" in html
    if today().day > 1:
        assert "in the past" in html


def test_details_errors_appear_beside_their_field_then_the_summary(client, shop, open_day):
    slug = shop.tenant.slug
    date_html = client.get(
        f"/book/{slug}/date", query_string={"package": "courthouse", "addon": shop.violin.id}
    ).get_data(as_text=True)
    details = client.get(
        f"/book/{slug}/details", query_string={"s": _token(date_html), "date": open_day}
    )
    assert details.status_code == 200
    token = _token(details.get_data(as_text=True))

    form = {"s": token, "couple_name": "Ada", "partner_name": "Grace", "email": "nope"}
    response = client.post(f"/book/{slug}/details", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="f-email" name="email" type="email" value="nope"' in html
    assert 'aria-describedby="f-email-error" aria-invalid="true"' in html
    assert re.search(r'id="f-email-error" class="field-error">Enter an email address', html)
    assert 'role="alert"' in html

    response = client.post(f"/book/{slug}/details", data={**form, "email": "ada@example.com"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Review and pay" in html and "Violinist" in html
    assert "Pay $1,600.00" in html
    assert f"{open_day:%B %Y}" in html


def test_every_bad_detail_is_marked_at_once(client, shop, open_day):
    slug = shop.tenant.slug
    date_html = client.get(f"/book/{slug}/date", query_string={"package": "courthouse"}).get_data(
        as_text=True
    )
    details = client.get(
        f"/book/{slug}/details", query_string={"s": _token(date_html), "date": open_day}
    )
    form = {
        "s": _token(details.get_data(as_text=True)),
        "couple_name": " ",
        "email": "nope",
        "phone": "call me",
    }
    html = client.post(f"/book/{slug}/details", data=form).get_data(as_text=True)
    assert re.search(r'id="f-couple_name-error" class="field-error">Enter your name', html)
    assert re.search(r'id="f-email-error" class="field-error">Enter an email address', html)
    assert re.search(r'id="f-phone-error" class="field-error">Enter a phone number', html)
    assert "Please correct the fields marked below." in html


def test_a_closed_date_typed_into_the_url_goes_back_to_the_calendar(client, shop):
    closed_day = today() + timedelta(days=30)
    make_blackout(shop.tenant, closed_day)
    db.session.flush()
    date_html = client.get(
        f"/book/{shop.tenant.slug}/date", query_string={"package": "courthouse"}
    ).get_data(as_text=True)
    response = client.get(
        f"/book/{shop.tenant.slug}/details",
        query_string={"s": _token(date_html), "date": closed_day},
    )
    assert "That date cannot be booked" in response.get_data(as_text=True)
    assert "Choose your date" in response.get_data(as_text=True)


def test_theme_stylesheet_carries_the_brand_colours(client, shop):
    shop.tenant.brand_primary_color = "#123456"
    shop.tenant.brand_accent_color = "bad;}"
    db.session.flush()
    response = client.get(f"/widget/{shop.tenant.slug}/theme.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    css = response.get_data(as_text=True)
    assert "--brand: #123456" in css and "--accent: #f59e0b" in css and "bad" not in css


def test_package_photos_are_shown_with_their_alt_text(client, shop):
    from mais.models import PackagePhoto

    key = f"t{shop.tenant.id}/{'a' * 32}"
    db.session.add(
        PackagePhoto(
            tenant_id=shop.tenant.id,
            package_id=shop.courthouse.id,
            storage_key=f"{key}.jpg",
            thumbnail_key=f"{key}-thumb.jpg",
            content_type="image/jpeg",
            alt_text="The courthouse steps",
        )
    )
    db.session.flush()
    catalog = client.get(f"/book/{shop.tenant.slug}/").get_data(as_text=True)
    assert f'src="/portal/media/{key}-thumb.jpg" alt="The courthouse steps"' in catalog
    package = client.get(f"/book/{shop.tenant.slug}/package/courthouse").get_data(as_text=True)
    assert f'src="/portal/media/{key}.jpg" alt="The courthouse steps"' in package


def test_the_page_carries_the_tenants_name_logo_and_theme(client, shop):
    shop.tenant.logo_key = f"t{shop.tenant.id}/{'b' * 32}.png"
    shop.tenant.brand_primary_color = "#123456"
    db.session.flush()
    html = client.get(f"/book/{shop.tenant.slug}/").get_data(as_text=True)
    assert f'<p class="brand-name">{shop.tenant.name}</p>' in html
    assert f'src="/portal/media/{shop.tenant.logo_key}"' in html
    assert f"/widget/{shop.tenant.slug}/theme.css?v=123456f59e0b" in html


def test_leaving_the_mock_checkout_frees_the_date_and_returns_to_the_summary(
    client, shop, open_day
):
    from mais.models import DateHold, HoldStatus
    from widget.state import Selection, sign_selection

    slug, tenant_id = shop.tenant.slug, shop.tenant.id
    selection = Selection("courthouse", (), open_day).with_couple(
        {"couple_name": "Ada", "email": "ada@example.com"}
    )
    paying = client.post(f"/book/{slug}/pay", data={"s": sign_selection(tenant_id, selection)})
    assert paying.status_code == 303
    checkout_url = paying.headers["Location"]
    session_path, _, query = checkout_url.partition("?")
    left = client.post(session_path + "/cancel?" + query)
    assert left.status_code in (302, 303)
    back = client.get(left.headers["Location"])
    assert back.status_code == 303 and f"/book/{slug}/summary?b=" in back.headers["Location"]
    hold = db.session.scalars(db.select(DateHold).where(DateHold.on_date == open_day)).one()
    assert hold.status == HoldStatus.RELEASED
    # The summary, rebuilt from the hold: package, date and details kept, the date released.
    summary = client.get(back.headers["Location"]).get_data(as_text=True)
    assert "Review and pay" in summary and "ada@example.com" in summary
    assert "was released. It is still free" in summary and "Courthouse" in summary

    # A tampered reference is refused with a message, and frees nothing.
    refused = client.get(f"/book/{slug}/abandon", query_string={"b": "x", "s": "y"})
    assert refused.status_code == 400
