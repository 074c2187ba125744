"""Couples in real browsers: a race for one date, the keyboard alone, a small phone screen,
and two widgets on one page."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import func, select

from mais.booking import today
from mais.extensions import db
from mais.models import Booking
from mais.tenancy import tenant_scope

from .conftest import FRAME
from .test_journey import choose_day


def _to_summary(frame, day, name: str) -> None:
    frame.get_by_role("link", name="Courthouse").click()
    frame.get_by_role("button", name="Choose a date").click()
    choose_day(frame, day)
    frame.get_by_label("Your name").fill(name)
    frame.get_by_label("Email").fill(f"{name.lower()}@example.com")
    frame.get_by_role("button", name="Review and pay").click()
    expect(frame.get_by_role("heading", name="Review and pay")).to_be_visible()


def test_two_couples_race_for_one_date(
    live_app, live_server, demo_host, studio, browser_context_factory
):
    host = demo_host([(studio.slug, studio.public_key)])
    day = today() + timedelta(days=33)
    couples = []
    for name in ("Ada", "Bea"):
        page = browser_context_factory().new_page()
        page.goto(host + "/")
        frame = page.frame_locator(FRAME)
        _to_summary(frame, day, name)
        couples.append((page, frame))

    # Both press Pay at once: the server decides who holds the date.
    def is_pay(response) -> bool:  # noqa: ANN001
        return response.url.split("?")[0].endswith("/pay")

    (first_page, first_frame), (second_page, second_frame) = couples
    # Both listen before either clicks, so the two payments race; leaving the block waits for
    # both answers.
    with (
        first_page.expect_response(is_pay) as first_answer,
        second_page.expect_response(is_pay) as second_answer,
    ):
        first_frame.get_by_role("button", name="Pay $1,200.00").click()
        second_frame.get_by_role("button", name="Pay $1,200.00").click()
    statuses = {0: first_answer.value.status, 1: second_answer.value.status}
    assert sorted(statuses.values()) == [200, 409], statuses

    winner_index = next(i for i, status in statuses.items() if status == 200)
    (winner, _), (_, loser_frame) = couples[winner_index], couples[1 - winner_index]
    winner.wait_for_url(re.compile(re.escape(live_server) + "/checkout/mock/"))
    expect(loser_frame.get_by_role("heading", name="This date was just taken")).to_be_visible()
    expect(loser_frame.get_by_role("button", name=re.compile(r"\d{4}$"))).to_have_count(3)
    winner.get_by_role("button", name="Pay $1,200.00").click()
    expect(
        winner.frame_locator(FRAME).get_by_role("heading", name="You’re booked!")
    ).to_be_visible()

    with live_app.app_context(), tenant_scope(studio.id):
        assert db.session.scalar(select(func.count()).where(Booking.on_date == day)) == 1


def _tab_to(page, target, limit: int = 60) -> None:
    """Press Tab until ``target`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


def test_booking_with_the_keyboard_alone(live_app, live_server, demo_host, studio, page):
    page.set_default_timeout(15000)
    page.goto(demo_host([(studio.slug, studio.public_key)]) + "/")
    frame = page.frame_locator(FRAME)
    keys = page.keyboard

    _tab_to(page, frame.get_by_role("link", name="Courthouse"))
    keys.press("Enter")
    expect(frame.get_by_role("heading", name="Courthouse")).to_be_focused()
    _tab_to(page, frame.get_by_label("Bouquet"))
    keys.press("Space")
    expect(frame.locator("#total")).to_contain_text("$1,290.00")
    _tab_to(page, frame.get_by_role("button", name="Choose a date"))
    keys.press("Enter")

    expect(frame.get_by_role("heading", name="Choose your date")).to_be_focused()
    _tab_to(page, frame.get_by_role("link", name="Next month ›"))
    keys.press("Enter")
    expect(frame.get_by_role("heading", name="Choose your date")).to_be_focused()
    first = (today().replace(day=1) + timedelta(days=32)).replace(day=1)
    _tab_to(page, frame.locator(f"button.day[value='{first.isoformat()}']"))
    for key in ("ArrowRight", "ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp", "ArrowDown"):
        keys.press(key)
    chosen = first + timedelta(days=8)
    expect(frame.locator(f"button.day[value='{chosen.isoformat()}']")).to_be_focused()
    keys.press("Enter")

    expect(frame.get_by_role("heading", name="Your details")).to_be_focused()
    _tab_to(page, frame.get_by_label("Your name"))
    keys.type("Ada Lovelace")
    _tab_to(page, frame.get_by_label("Email"))
    keys.type("not-an-email")
    keys.press("Enter")
    email = frame.get_by_label("Email")
    expect(email).to_be_focused()
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(frame.locator("#f-email-error")).to_contain_text("Enter an email address")
    keys.press("Control+A")
    keys.type("ada@example.com")
    keys.press("Enter")

    expect(frame.get_by_role("heading", name="Review and pay")).to_be_focused()
    _tab_to(page, frame.get_by_role("button", name="Pay $1,290.00"))
    keys.press("Enter")
    page.wait_for_url(re.compile(re.escape(live_server) + "/checkout/mock/"))
    _tab_to(page, page.get_by_role("button", name="Pay $1,290.00"))
    keys.press("Enter")
    expect(page.frame_locator(FRAME).get_by_role("heading", name="You’re booked!")).to_be_visible()
    with live_app.app_context(), tenant_scope(studio.id):
        assert db.session.scalar(select(Booking.on_date)) == chosen


def test_no_horizontal_scroll_at_360_pixels(
    live_server, demo_host, studio, browser_context_factory
):
    page = browser_context_factory(viewport={"width": 360, "height": 740}).new_page()
    page.goto(demo_host([(studio.slug, studio.public_key)]) + "/")
    frame = page.frame_locator(FRAME)
    no_overflow = (
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )

    def check(heading: str) -> None:
        expect(frame.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        inner = next(f for f in page.frames if f.url.startswith(live_server + "/widget/"))
        assert inner.evaluate(no_overflow), f"the widget scrolls sideways on {heading!r}"
        assert page.evaluate(no_overflow), f"the host page scrolls sideways on {heading!r}"

    check("Choose a package")
    frame.get_by_role("link", name="Courthouse").click()
    check("Courthouse")
    frame.get_by_role("button", name="Choose a date").click()
    check("Choose your date")
    choose_day(frame, today() + timedelta(days=45))
    check("Your details")
    frame.get_by_role("button", name="Review and pay").click()
    expect(frame.locator("#f-couple_name-error")).to_be_visible()
    check("Your details")
    frame.get_by_label("Your name").fill("Ada")
    frame.get_by_label("Email").fill("ada@example.com")
    frame.get_by_role("button", name="Review and pay").click()
    check("Review and pay")


def test_two_widgets_on_one_page_work_independently(
    live_server, demo_host, make_studio, browser_context_factory
):
    first, second = make_studio("First Studio"), make_studio("Second Studio")
    page = browser_context_factory().new_page()
    page.goto(demo_host([(first.slug, first.public_key), (second.slug, second.public_key)]) + "/")
    frames = page.locator(FRAME)
    expect(frames).to_have_count(2)
    one, two = page.frame_locator(FRAME).nth(0), page.frame_locator(FRAME).nth(1)
    expect(one.get_by_text("First Studio")).to_be_visible()
    expect(two.get_by_text("Second Studio")).to_be_visible()
    expect(two.get_by_role("heading", name="Choose a package")).to_be_visible()
    before = frames.nth(1).bounding_box()["height"]

    one.get_by_role("link", name="Courthouse").click()
    one.get_by_role("button", name="Choose a date").click()
    expect(one.get_by_role("heading", name="Choose your date")).to_be_visible()
    expect(two.get_by_role("heading", name="Choose a package")).to_be_visible()
    assert frames.nth(1).bounding_box()["height"] == before
