"""The couple's whole journey inside the widget embedded on the tenant's own website."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from mais.booking import today
from mais.extensions import db
from mais.models import Booking, OutboxMessage
from mais.tenancy import tenant_scope

from .conftest import FRAME, months_ahead


def choose_day(frame, day) -> None:
    for _ in range(months_ahead(day)):
        heading = frame.locator("#month-label").inner_text()
        frame.get_by_role("link", name="Next month ›").click()
        expect(frame.locator("#month-label")).not_to_have_text(heading)
    frame.locator(f"button.day[value='{day.isoformat()}']").click()


def test_embedded_journey_from_catalog_to_confirmation(
    live_app, live_server, demo_host, studio, page
):
    page.set_default_timeout(15000)
    host = demo_host([(studio.slug, studio.public_key)])
    page.goto(host + "/")
    frame = page.frame_locator(FRAME)

    expect(frame.get_by_role("heading", name="Choose a package")).to_be_visible()
    expect(frame.get_by_text("Elopements")).to_be_visible()
    frame.get_by_role("link", name="Courthouse").click()
    expect(frame.get_by_role("heading", name="Courthouse")).to_be_focused()
    frame.get_by_label("Bouquet").check()
    expect(frame.locator("#total")).to_contain_text("$1,290.00")
    frame.get_by_role("button", name="Choose a date").click()

    day = today() + timedelta(days=25)
    expect(frame.get_by_role("heading", name="Choose your date")).to_be_focused()
    choose_day(frame, day)

    expect(frame.get_by_role("heading", name="Your details")).to_be_focused()
    frame.get_by_label("Your name").fill("Ada Lovelace")
    frame.get_by_label("Your partner’s name").fill("Grace Hopper")
    frame.get_by_label("Email").fill("ada@example.com")
    frame.get_by_role("button", name="Review and pay").click()
    expect(frame.get_by_role("heading", name="Review and pay")).to_be_focused()
    assert page.context.cookies() == [], "the widget set a cookie"
    frame.get_by_role("button", name="Pay $1,290.00").click()

    # Checkout runs in the top window, on the platform's origin.
    page.wait_for_url(re.compile(re.escape(live_server) + r"/checkout/mock/"))
    page.get_by_role("button", name="Pay $1,290.00").click()

    page.wait_for_url(re.compile(re.escape(host) + r"/\?mais_booking="))
    frame = page.frame_locator(FRAME)
    expect(frame.get_by_role("heading", name="You’re booked!")).to_be_visible()
    reference = frame.locator("[data-booked]").get_attribute("data-booked")
    expect(page.locator("#booked-events")).to_have_text(f"Booked: {reference}")

    with live_app.app_context(), tenant_scope(studio.id):
        booking = db.session.scalar(select(Booking).where(Booking.reference == reference))
        assert booking is not None
        assert (booking.on_date, booking.total_cents, booking.email) == (
            day,
            129000,
            "ada@example.com",
        )
        mail = db.session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.tenant_id == studio.id,
                OutboxMessage.to_email == "ada@example.com",
            )
        )
        assert mail is not None and reference in mail.body_text


def test_hosted_booking_page_works_without_javascript(
    live_app, live_server, studio, browser_context_factory
):
    page = browser_context_factory(java_script_enabled=False).new_page()
    page.goto(f"{live_server}/book/{studio.slug}/")
    page.get_by_role("link", name="Garden party").click()
    expect(page.get_by_role("heading", name="Garden party")).to_be_visible()
    page.get_by_role("button", name="Choose a date").click()
    day = today() + timedelta(days=50)
    for _ in range(months_ahead(day)):
        page.get_by_role("link", name="Next month ›").click()
    page.locator(f"button.day[value='{day.isoformat()}']").click()
    page.get_by_role("button", name="Review and pay").click()
    expect(page.locator("#f-couple_name-error")).to_have_text("Enter your name.")
    page.get_by_label("Your name").fill("Bea")
    page.get_by_label("Email").fill("bea@example.com")
    page.get_by_role("button", name="Review and pay").click()
    assert page.context.cookies() == []
    page.get_by_role("button", name="Pay $2,500.00").click()
    page.get_by_role("button", name="Pay $2,500.00").click()  # the mock checkout
    expect(page.get_by_role("heading", name="You’re booked!")).to_be_visible()
    assert page.url.startswith(f"{live_server}/book/{studio.slug}/confirmed/")
