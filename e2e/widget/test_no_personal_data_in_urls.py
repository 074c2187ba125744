"""No URL the browser requests, in any frame, names the couple: not through the embedded widget,
not on the hosted page, not on the way to the checkout and back after leaving it, nor when paying.
The server's own log lines (the access line and the development server's request line) neither.
Tokens in URLs are unpacked before looking (tests/widget/personal_data.py).
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from mais.booking import today
from mais.extensions import db
from mais.models import Booking
from mais.tenancy import tenant_scope
from tests.widget.personal_data import COUPLE
from tests.widget.personal_data import exposed as _exposed

from .conftest import FRAME
from .test_journey import choose_day

NAME, PARTNER, EMAIL, PHONE = (
    COUPLE[name] for name in ("couple_name", "partner_name", "email", "phone")
)


@pytest.fixture
def server_log(caplog):
    caplog.set_level(logging.INFO, logger="mais.access")
    caplog.set_level(logging.INFO, logger="werkzeug")

    def lines() -> list[str]:
        return [
            f"{record.getMessage()} {record.__dict__}"
            for record in caplog.records
            if record.name in ("mais.access", "werkzeug")
        ]

    return lines


def _record_requests(page) -> list[str]:
    urls: list[str] = []
    # Page-level: every frame's requests, navigations and redirects included.
    page.on("request", lambda request: urls.append(request.url))
    return urls


def _fill_details_and_review(step) -> None:
    expect(step.get_by_role("heading", name="Your details")).to_be_visible()
    step.get_by_label("Your name").fill(NAME)
    step.get_by_label("Your partner’s name").fill(PARTNER)
    step.get_by_label("Email").fill(EMAIL)
    step.get_by_label("Phone").fill(PHONE)
    step.get_by_role("button", name="Review and pay").click()
    expect(step.get_by_role("heading", name="Review and pay")).to_be_visible()
    expect(step.get_by_text(EMAIL)).to_be_visible()


def _change_details_round_trip(step) -> None:
    step.get_by_role("button", name="Change your details").click()
    expect(step.get_by_label("Email")).to_have_value(EMAIL)
    expect(step.get_by_label("Phone")).to_have_value(PHONE)
    step.get_by_role("button", name="Review and pay").click()
    expect(step.get_by_role("heading", name="Review and pay")).to_be_visible()
    expect(step.get_by_text(PARTNER)).to_be_visible()


def _assert_nothing_exposed(urls: list[str], log_lines: list[str]) -> None:
    assert len(urls) > 20, urls
    exposed = {url: _exposed(url) for url in urls if _exposed(url)}
    assert not exposed, f"personal data in requested URLs: {exposed}"
    assert any("/checkout/mock/" in url for url in urls)
    assert any("/abandon?" in url for url in urls)
    assert log_lines, "the server logged no request"
    assert not [line for line in log_lines if _exposed(line)]


def test_the_embedded_flow_requests_no_url_naming_the_couple(
    live_app, live_server, demo_host, studio, page, server_log
):
    urls = _record_requests(page)
    host = demo_host([(studio.slug, studio.public_key)])
    page.goto(host + "/")
    frame = page.frame_locator(FRAME)
    frame.get_by_role("link", name="Courthouse").click()
    frame.get_by_role("button", name="Choose a date").click()
    expect(frame.get_by_role("heading", name="Choose your date")).to_be_visible()
    day = today() + timedelta(days=33)
    choose_day(frame, day)
    _fill_details_and_review(frame)
    _change_details_round_trip(frame)

    frame.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(re.escape(live_server) + r"/checkout/mock/"))
    page.get_by_role("button", name="Cancel and go back").click()

    # Back on the tenant's page, the widget opens on the summary: everything kept.
    page.wait_for_url(re.compile(re.escape(host) + r"/\?mais_booking="))
    frame = page.frame_locator(FRAME)
    expect(frame.get_by_text("was released")).to_be_visible()
    expect(frame.get_by_text(f"{NAME} & {PARTNER}")).to_be_visible()
    expect(frame.get_by_text(PHONE)).to_be_visible()

    frame.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(re.escape(live_server) + r"/checkout/mock/"))
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(re.escape(host) + r"/\?mais_booking="))
    expect(page.frame_locator(FRAME).get_by_role("heading", name="You’re booked!")).to_be_visible()

    with live_app.app_context(), tenant_scope(studio.id):
        booking = db.session.scalar(select(Booking).where(Booking.on_date == day))
        assert booking is not None and booking.email == EMAIL and booking.phone == PHONE
    _assert_nothing_exposed(urls, server_log())


def test_the_hosted_flow_requests_no_url_naming_the_couple(
    live_app, live_server, studio, page, server_log
):
    urls = _record_requests(page)
    page.goto(f"{live_server}/book/{studio.slug}/")
    page.get_by_role("link", name="Courthouse").click()
    page.get_by_role("button", name="Choose a date").click()
    expect(page.get_by_role("heading", name="Choose your date")).to_be_visible()
    day = today() + timedelta(days=34)
    choose_day(page, day)
    _fill_details_and_review(page)
    _change_details_round_trip(page)

    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(re.escape(live_server) + r"/checkout/mock/"))
    page.get_by_role("button", name="Cancel and go back").click()

    page.wait_for_url(re.compile(re.escape(live_server) + rf"/book/{studio.slug}/summary\?b="))
    expect(page.get_by_text("was released")).to_be_visible()
    expect(page.get_by_text(f"{NAME} & {PARTNER}")).to_be_visible()

    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(re.escape(live_server) + r"/checkout/mock/"))
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(re.compile(re.escape(live_server) + rf"/book/{studio.slug}/confirmed/"))
    expect(page.get_by_role("heading", name="You’re booked!")).to_be_visible()
    # The address bar of every step the couple saw (history) names no one either.
    assert not _exposed(page.url)

    with live_app.app_context(), tenant_scope(studio.id):
        booking = db.session.scalar(select(Booking).where(Booking.on_date == day))
        assert booking is not None and booking.couple_name == NAME
    _assert_nothing_exposed(urls, server_log())
