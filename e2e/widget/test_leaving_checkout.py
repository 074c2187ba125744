"""A couple who leaves the checkout without paying lands back on the tenant's page, on the
summary with everything kept, and the date is free again at once for everyone."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from mais.booking import today
from mais.extensions import db
from mais.models import DateHold, HoldStatus
from mais.tenancy import tenant_scope

from .conftest import FRAME
from .test_journey import choose_day


def test_cancel_on_the_checkout_returns_to_the_summary_and_frees_the_date(
    live_app, live_server, demo_host, studio, page
):
    host = demo_host([(studio.slug, studio.public_key)])
    page.goto(host + "/")
    frame = page.frame_locator(FRAME)
    frame.get_by_role("link", name="Courthouse").click()
    frame.get_by_role("button", name="Choose a date").click()
    day = today() + timedelta(days=27)
    expect(frame.get_by_role("heading", name="Choose your date")).to_be_visible()
    choose_day(frame, day)
    frame.get_by_label("Your name").fill("Ada Lovelace")
    frame.get_by_label("Email").fill("ada@example.com")
    frame.get_by_role("button", name="Review and pay").click()
    frame.get_by_role("button", name=re.compile(r"^Pay ")).click()

    page.wait_for_url(re.compile(re.escape(live_server) + r"/checkout/mock/"))
    page.get_by_role("button", name="Cancel and go back").click()

    page.wait_for_url(re.compile(re.escape(host) + r"/\?mais_booking="))
    frame = page.frame_locator(FRAME)
    expect(frame.get_by_role("heading", name="Review and pay")).to_be_visible()
    expect(frame.get_by_text("was released. It is still free")).to_be_visible()
    expect(frame.get_by_text("ada@example.com")).to_be_visible()
    with live_app.app_context(), tenant_scope(studio.id):
        hold = db.session.scalar(select(DateHold).where(DateHold.on_date == day))
        assert hold is not None and hold.status == HoldStatus.RELEASED
