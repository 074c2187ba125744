"""Tenant owners in a real browser: signing up and filling the catalog (seen in the embedded
widget), resetting a password through the emailed link, cancelling and refunding a booking."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from mais import booking as bookings
from mais.booking import today
from mais.extensions import db
from mais.models import Booking, BookingStatus, OutboxMessage
from mais.tenancy import tenant_scope
from tests.factories import make_package, make_tenant

FRAME = "iframe[title='Booking widget']"


def _long_date(day) -> str:  # noqa: ANN001
    return f"{day:%A}, {day.day} {day:%B %Y}"


def test_sign_up_add_a_package_with_a_photo_and_a_blackout_then_see_them_in_the_widget(
    live_server, host_origin, demo_host, page, tmp_path
):
    slug = f"e2e-{uuid.uuid4().hex[:8]}"
    page.goto(live_server + "/portal/signup")
    page.get_by_label("Business name").fill("Willow & Wren")
    page.get_by_label("Booking address").fill(slug)
    page.get_by_label("Email").fill(f"owner-{slug}@example.com")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_text("This is the only time the secret key is shown.")).to_be_visible()
    expect(page.locator("#secret-key")).to_contain_text(f"sk_live_{slug}_")
    public_key = page.locator("#public-key").inner_text().strip()
    page.get_by_role("link", name=re.compile("I have saved my keys")).click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # The demo website's origin may embed the widget.
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Websites allowed to show your widget").fill(host_origin)
    page.locator("#embedding").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Embedding settings saved.")).to_be_visible()

    page.get_by_role("link", name="Packages").click()
    page.get_by_label("Title").fill("Forest elopement")
    page.get_by_label("Price").fill("1500")
    page.get_by_label("Description").fill("<p>Moss, ferns and <strong>vows</strong>.</p>")
    page.get_by_role("button", name="Add package").click()
    expect(page.get_by_role("heading", name="Forest elopement")).to_be_visible()

    photo = tmp_path / "forest.jpg"
    Image.new("RGB", (900, 600), (30, 110, 60)).save(photo, format="JPEG")
    page.get_by_label("Photo", exact=True).set_input_files(str(photo))
    page.get_by_label("Describe the photo").fill("A mossy clearing")
    page.get_by_role("button", name="Upload photo").click()
    expect(page.get_by_text("The photo is added.")).to_be_visible()
    expect(page.get_by_role("img", name="A mossy clearing")).to_be_visible()

    blocked = today() + timedelta(days=6)
    page.get_by_role("link", name="Calendar").click()
    page.get_by_label("First date").fill(blocked.isoformat())
    page.get_by_label("Reason (optional, shown to couples)").fill("Family wedding")
    page.get_by_role("button", name="Block").click()
    expect(page.get_by_text("1 date blocked.")).to_be_visible()

    # The live preview in Settings frames the real widget from the platform's origin.
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Main colour").fill("#0f766e")
    page.locator("#branding").get_by_role("button", name="Save branding").click()
    expect(page.get_by_text("Branding saved.")).to_be_visible()
    preview = page.frame_locator("iframe[title='Preview of your booking widget']")
    expect(preview.get_by_role("link", name="Forest elopement")).to_be_visible()

    host = demo_host([(slug, public_key)])
    page.goto(host + "/")
    frame = page.frame_locator(FRAME)
    expect(frame.get_by_role("link", name="Forest elopement")).to_be_visible()
    image = frame.get_by_role("img", name="A mossy clearing")
    expect(image).to_be_visible()
    assert "/portal/media/" in image.get_attribute("src")
    frame.get_by_role("link", name="Forest elopement").click()
    frame.get_by_role("button", name="Choose a date").click()
    expect(frame.get_by_role("heading", name="Choose your date")).to_be_visible()
    months = (blocked.year - today().year) * 12 + blocked.month - today().month
    for _ in range(months):
        heading = frame.locator("#month-label").inner_text()
        frame.get_by_role("link", name="Next month ›").click()
        expect(frame.locator("#month-label")).not_to_have_text(heading)
    closed = frame.locator(f"span.day.closed[aria-label^='{_long_date(blocked)}']")
    expect(closed).to_be_visible()
    expect(frame.locator(f"button.day[value='{blocked.isoformat()}']")).to_have_count(0)
    open_day = blocked + timedelta(days=1) if blocked.day < 28 else blocked - timedelta(days=1)
    expect(frame.locator(f"button.day[value='{open_day.isoformat()}']")).to_be_visible()


def test_reset_a_forgotten_password_through_the_emailed_link(live_app, live_server, page):
    with live_app.app_context():
        tenant = make_tenant()
        email = tenant.owner.email
        db.session.commit()

    page.goto(live_server + "/portal/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email of your account").fill(email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_text("If an account uses that address")).to_be_visible()

    with live_app.app_context():
        message = db.session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.to_email == email, OutboxMessage.template == "password_reset"
            )
        ).one()
        link = re.search(r"http://\S+/portal/reset\?token=\S+", message.body_text).group(0)
    assert link.startswith(live_server)

    page.goto(link)
    page.get_by_label("New password").fill("my brand new password")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_text("Your password is changed and you are logged in.")).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    page.goto(link)  # single use
    page.get_by_label("New password").fill("yet another password")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid, used or expired")

    page.goto(live_server + "/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("my brand new password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_cancel_and_refund_a_booking(live_app, live_server, page):
    day = today() + timedelta(days=40)
    with live_app.app_context():
        tenant = make_tenant()
        email, password, tenant_id = tenant.owner.email, tenant.owner_password, tenant.id
        with tenant_scope(tenant):
            package = make_package(tenant, "Lighthouse ceremony", 180000)
            db.session.commit()
            hold = bookings.hold_date(
                tenant,
                package_slug=package.slug,
                addon_ids=[],
                on_date=day,
                couple=bookings.validate_couple("Ada Lovelace", "", "ada@example.com", ""),
            )
            booking_id = bookings.confirm_paid_hold(
                tenant, hold.id, checkout_session_id="cs_e2e", payment_intent_id="pi_e2e"
            )
            db.session.commit()

    page.goto(live_server + "/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Portal").get_by_role("link", name="Bookings").click()
    page.get_by_role("link", name=re.compile(f"{day.day} {day:%b %Y}")).click()
    expect(page.get_by_role("heading", name=re.compile("Booking "))).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    button = page.get_by_role("button", name="Cancel and refund $1,800.00")
    button.dblclick()
    expect(page.get_by_text(re.compile("is cancelled and refunded"))).to_be_visible()
    expect(page.locator("#booking-status")).to_contain_text("Refunded")
    expect(page.get_by_role("button", name=re.compile("Cancel and refund"))).to_have_count(0)

    with live_app.app_context(), tenant_scope(tenant_id):
        booking = db.session.get(Booking, booking_id)
        assert booking.status == BookingStatus.REFUNDED and booking.refund_id
        sent = select(OutboxMessage).where(
            OutboxMessage.dedup_key == f"booking-cancelled:{booking_id}"
        )
        assert len(db.session.scalars(sent).all()) == 1


PORTAL_PAGES = [
    "/",
    "/packages",
    "/addons",
    "/segments",
    "/calendar",
    "/bookings",
    "/settings",
    "/audit",
]


def test_pages_fit_a_phone_and_packages_edit_inline(live_app, live_server, browser_context_factory):
    with live_app.app_context():
        tenant = make_tenant()
        email, password = tenant.owner.email, tenant.owner_password
        with tenant_scope(tenant):
            make_package(tenant, "Harbour vows with a rather long title for a small screen", 99000)
        db.session.commit()
    page = browser_context_factory(viewport={"width": 360, "height": 740}).new_page()
    page.goto(live_server + "/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    for path in PORTAL_PAGES:
        page.goto(live_server + "/portal" + path)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 360, f"{path} is {overflow}px wide at 360px"

    # Inline editing swaps the row in place (HTMX), keyboard only.
    page.goto(live_server + "/portal/packages")
    page.get_by_role("link", name=re.compile("^Edit Harbour vows")).focus()
    page.keyboard.press("Enter")
    # The editor replaces the row; wait for it, not for any "Title" field (the page's own
    # "new package" form has one too).
    editor = page.locator("li.package-row.editing")
    expect(editor).to_be_visible()
    assert page.url.endswith("/portal/packages")  # no navigation: the row was swapped
    editor.get_by_label("Title").fill("Harbour vows")
    editor.get_by_label("Price").fill("950")
    editor.get_by_role("button", name="Save").click()
    row = page.locator("li.package-row").first
    expect(row).to_contain_text("Harbour vows")
    expect(row).to_contain_text("$950.00")
    assert page.url.endswith("/portal/packages")
