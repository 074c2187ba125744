"""The couple's details never appear in a URL: not in a link, a form's action, a redirect, an
htmx header, the provider's success or cancel URL, nor in the access log. Tokens in URLs are
decoded (base64, zlib, nested URLs) before looking, since a signed token is readable."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import unquote_plus, urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from mais.extensions import db
from mais.models import Booking, DateHold, HoldStatus

from .conftest import HOST_ORIGIN
from .personal_data import COUPLE
from .personal_data import exposed as _exposed

URL_ATTRIBUTES = ("href", "action", "formaction", "hx-get", "hx-post", "src", "data-navigate")
URL_HEADERS = ("Location", "HX-Redirect", "HX-Push-Url", "HX-Location", "HX-Replace-Url")


class _Page(HTMLParser):
    """The URLs in one HTML answer, and its forms as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.urls += [values[name] for name in URL_ATTRIBUTES if name in values]
        if values.get("hx-push-url") not in (None, "true", "false"):
            self.urls.append(values["hx-push-url"])
        if tag == "form":
            self.forms.append({**values, "fields": [], "buttons": []})
        elif tag == "input" and self.forms and values.get("name"):
            if values.get("type") not in ("checkbox", "radio") or "checked" in values:
                self.forms[-1]["fields"].append((values["name"], values.get("value", "")))
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append(values)
            self.forms[-1]["current_button"] = values

    def handle_data(self, data: str) -> None:
        if self.forms and "current_button" in self.forms[-1] and data.strip():
            self.forms[-1]["current_button"]["text"] = data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self.forms:
            self.forms[-1].pop("current_button", None)


class Couple:
    """A browser without cookies walking the widget, keeping every URL it met."""

    def __init__(self, client: FlaskClient, htmx: bool) -> None:
        self.client, self.htmx = client, htmx
        self.urls: list[str] = []
        self.page = _Page()
        self.response: TestResponse | None = None

    def _record(self, url: str, response: TestResponse, *, htmx: bool) -> TestResponse:
        self.urls.append(url)
        self.urls += [response.headers[name] for name in URL_HEADERS if name in response.headers]
        self.page = _Page()
        if response.mimetype == "text/html":
            self.page.feed(response.get_data(as_text=True))
            self.urls += self.page.urls
        if urlsplit(url).path.startswith(("/widget/", "/book/")):
            # The widget's URLs may hold references: other origins get the origin only.
            policy = response.headers.get("Referrer-Policy", "")
            assert policy in ("strict-origin-when-cross-origin", "strict-origin", "no-referrer")
        self.response = response
        return response

    def get(self, url: str, *, htmx: bool | None = None, **kwargs) -> TestResponse:
        htmx = self.htmx if htmx is None else htmx
        headers = {"HX-Request": "true"} if htmx else {}
        response = self.client.get(url, headers=headers, **kwargs)
        return self._record(response.request.url, response, htmx=htmx)

    def post(self, url: str, data, *, htmx: bool | None = None) -> TestResponse:
        htmx = self.htmx if htmx is None else htmx
        headers = {"HX-Request": "true"} if htmx else {}
        response = self.client.post(url, data=MultiDict(data), headers=headers)
        return self._record(response.request.url, response, htmx=htmx)

    def follow(self) -> TestResponse:
        assert self.response is not None and self.response.status_code in (302, 303)
        location = self.response.headers["Location"]
        parts = urlsplit(location)
        if parts.netloc and parts.netloc != "localhost":
            return self.response  # the tenant's own site, not ours to fetch
        return self.get(parts.path + ("?" + parts.query if parts.query else ""), htmx=False)

    def submit(self, label: str, fill: dict[str, str] | None = None) -> TestResponse:
        """Press the button whose text starts with ``label``."""
        return self._press(lambda button: button.get("text", "").startswith(label), label, fill)

    def choose(self, name: str, value: str) -> TestResponse:
        """Press the button that sends ``name=value`` (a day, an offered date)."""
        return self._press(
            lambda button: (button.get("name"), button.get("value")) == (name, value), value
        )

    def _press(self, matches, label: str, fill: dict[str, str] | None = None) -> TestResponse:
        """As a browser would: the form's fields, then the button's own name and value, through
        htmx when the couple's browser runs it."""
        fill = fill or {}
        for form in self.page.forms:
            for button in form["buttons"]:
                if matches(button):
                    fields = [(n, v) for n, v in form["fields"] if n not in fill]
                    fields += list(fill.items())
                    if button.get("name"):
                        fields.append((button["name"], button.get("value", "")))
                    method = form.get("method", "get").lower()
                    action = form.get("hx-post" if method == "post" else "hx-get") or form["action"]
                    if method == "post":
                        return self.post(action, fields)
                    return self.get(action.split("?")[0], query_string=MultiDict(fields))
        raise AssertionError(f"no button {label!r} on the page")

    def pick_day(self, day) -> TestResponse:
        """Choose ``day`` on the calendar (moving months as the page offers)."""
        for _ in range(14):
            if f'name="date" value="{day.isoformat()}"' in self.html:
                return self.choose("date", day.isoformat())
            self.next_month()
        raise AssertionError(f"{day} is not offered")

    def next_month(self) -> None:
        for form in self.page.forms:
            if any(b.get("text") == "Next month ›" for b in form["buttons"]):
                self.submit("Next month ›")
                return
        match = re.search(r'href="([^"]+)"[^>]*>Next month', self.html)
        assert match, "no next month"
        self.get(match.group(1).replace("&amp;", "&"))

    @property
    def html(self) -> str:
        assert self.response is not None
        return self.response.get_data(as_text=True)

    def assert_nothing_exposed(self) -> None:
        exposed = {url: _exposed(url) for url in self.urls if _exposed(url)}
        assert not exposed, f"personal data in URLs: {exposed}"


def _button_days(couple: Couple) -> list[str]:
    return re.findall(r'name="date" value="([0-9-]+)"', couple.html)


@pytest.mark.parametrize("prefix", ["book", "widget"])
@pytest.mark.parametrize("htmx", [False, True], ids=["no-js", "htmx"])
def test_the_whole_flow_puts_no_personal_data_in_any_url_or_log_line(
    client, shop, open_day, caplog, prefix, htmx
):
    caplog.set_level(logging.INFO, logger="mais.access")
    slug = shop.tenant.slug
    embed = shop.embed if prefix == "widget" else {}
    couple = Couple(client, htmx)

    couple.get(f"/{prefix}/{slug}/", query_string=embed)
    couple.get(
        f"/{prefix}/{slug}/package/courthouse",
        query_string={**embed, "addon": shop.bouquet.id},
    )
    couple.submit("Choose a date")
    assert "Choose your date" in couple.html
    couple.pick_day(open_day)
    assert "Your details" in couple.html
    couple.submit("Review and pay", fill=COUPLE)
    assert couple.response.status_code == 200 and "Zelda Quux" in couple.html
    couple.assert_nothing_exposed()  # the summary's own links and forms

    # "Change your details" comes back filled in, and on to the summary again.
    couple.submit("Change your details")
    assert 'value="zelda.quux@example.org"' in couple.html and "Your details" in couple.html
    couple.submit("Review and pay", fill={"partner_name": "Yorick Plover"})
    assert "Yorick Plover" in couple.html and "Review and pay" in couple.html

    # "Change the date" keeps the details through the calendar.
    later = open_day + timedelta(days=35)
    couple.submit("Change the date")
    assert "Choose your date" in couple.html
    couple.pick_day(later)
    assert 'value="Zelda Quux"' in couple.html
    couple.submit("Review and pay")
    assert f"{later:%B %Y}" in couple.html and "+15550001234" in couple.html

    # Pay, then leave the checkout: back to the summary, details and date kept.
    paying = couple.submit("Pay ")
    if prefix == "widget":
        checkout = re.search(r'data-navigate="([^"]+)"', couple.html).group(1)
        checkout = checkout.replace("&amp;", "&")
    elif htmx:
        assert paying.status_code == 204
        checkout = paying.headers["HX-Redirect"]
    else:
        checkout = paying.headers["Location"]
    checkout_path = urlsplit(checkout)
    couple.get(f"{checkout_path.path}?{checkout_path.query}", htmx=False)
    couple.submit("Cancel and go back")
    couple.follow()  # the platform's abandon: frees the date
    hold = db.session.scalars(db.select(DateHold).where(DateHold.on_date == later)).one()
    assert hold.status == HoldStatus.RELEASED
    back = couple.response.headers["Location"]
    if prefix == "widget":
        # To the page the couple booked from; the loader hands the reference to the widget.
        assert back.startswith(f"{HOST_ORIGIN}/weddings?x=1&mais_booking=")
        reference = back.rsplit("mais_booking=", 1)[1]
        couple.get(f"/widget/{slug}/", query_string={**embed, "booking": reference}, htmx=False)
    else:
        couple.follow()
    assert couple.response.status_code == 200
    assert "Zelda Quux" in couple.html and "Yorick Plover" in couple.html
    assert f"{later:%B %Y}" in couple.html and "was released" in couple.html

    # Pay again and complete the payment this time.
    paying = couple.submit("Pay ")
    if prefix == "widget":
        checkout = re.search(r'data-navigate="([^"]+)"', couple.html).group(1)
        checkout = checkout.replace("&amp;", "&")
    elif htmx:
        checkout = paying.headers["HX-Redirect"]
    else:
        checkout = paying.headers["Location"]
    checkout_path = urlsplit(checkout)
    couple.get(f"{checkout_path.path}?{checkout_path.query}", htmx=False)
    couple.submit("Pay ")
    success = urlsplit(couple.response.headers["Location"])
    if prefix == "widget":
        reference = success.query.rsplit("mais_booking=", 1)[1]
        couple.get(f"/widget/{slug}/", query_string={**embed, "booking": reference}, htmx=False)
    else:
        couple.follow()
    assert "You’re booked!" in couple.html
    assert db.session.scalars(db.select(Booking)).one().email == "zelda.quux@example.org"

    couple.assert_nothing_exposed()
    log_lines = [
        f"{record.getMessage()} {record.__dict__}"
        for record in caplog.records
        if record.name == "mais.access"
    ]
    assert len(log_lines) >= 15
    assert not [line for line in log_lines if _exposed(line)]


def test_a_date_taken_meanwhile_keeps_the_details_out_of_urls(client, shop, open_day):
    slug = shop.tenant.slug
    first, second = Couple(client, htmx=True), Couple(client, htmx=True)
    for couple in (first, second):
        couple.get(f"/book/{slug}/date", query_string={"package": "courthouse"})
        couple.pick_day(open_day)
        couple.submit("Review and pay", fill=COUPLE)
    assert first.submit("Pay ").status_code == 204
    taken = second.submit("Pay ")
    assert taken.status_code == 409 and "This date was just taken" in second.html
    offered = _button_days(second)
    assert len(offered) == 3 and open_day.isoformat() not in offered
    second.choose("date", offered[0])
    assert "Review and pay" in second.html and "zelda.quux@example.org" in second.html
    second.submit("Change the date")
    assert "Choose your date" in second.html
    first.assert_nothing_exposed()
    second.assert_nothing_exposed()


def test_the_checkout_cancel_and_success_urls_name_only_the_hold(client, shop, open_day):
    from mais.payments import mock

    couple = Couple(client, htmx=False)
    couple.get(f"/book/{shop.tenant.slug}/date", query_string={"package": "courthouse"})
    couple.pick_day(open_day)
    couple.submit("Review and pay", fill=COUPLE)
    couple.submit("Pay ")
    checkout = urlsplit(couple.response.headers["Location"])
    session_id = checkout.path.rsplit("/", 1)[1]
    token = dict(p.split("=", 1) for p in checkout.query.split("&"))["s"]
    opened = mock.load_checkout(session_id, unquote_plus(token))
    assert opened is not None
    assert _exposed(opened.success_url) == [] and _exposed(opened.cancel_url) == []
    assert "/abandon?b=" in opened.cancel_url and "s=" not in opened.cancel_url


def test_a_sealed_selection_is_refused_elsewhere_and_never_read_from_a_url(
    client, shop, open_day, other_tenant
):
    from widget.state import Selection, sign_selection

    selection = Selection("courthouse", (), open_day).with_couple(COUPLE)
    sealed = sign_selection(shop.tenant.id, selection)
    assert _exposed(sealed) == []
    # Another tenant's seal does not open here.
    foreign = sign_selection(other_tenant.id, selection)
    refused = client.post(f"/book/{shop.tenant.slug}/summary", data={"s": foreign})
    assert refused.status_code == 400 and "damaged or has expired" in refused.get_data(True)
    # Put into a URL by hand, it gives the details form empty: a GET never reads them.
    html = client.get(f"/book/{shop.tenant.slug}/details", query_string={"s": sealed}).get_data(
        as_text=True
    )
    assert "Your details" in html and "Zelda" not in html
    # A success reference cannot stand in for the way back from a left checkout.
    from widget.state import sign_booking

    paid_ref = sign_booking(shop.tenant.id, "abc")
    assert (
        client.get(f"/book/{shop.tenant.slug}/abandon", query_string={"b": paid_ref}).status_code
        == 400
    )
    assert (
        client.get(f"/book/{shop.tenant.slug}/summary", query_string={"b": paid_ref}).status_code
        == 400
    )
