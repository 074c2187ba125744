"""The admin area in a real browser, on a 360 px wide screen and with the keyboard only."""

from __future__ import annotations

import uuid

from flask import Flask
from playwright.sync_api import expect

from mais.extensions import db
from mais.tenant_registry import create_platform_admin
from tests.factories import make_tenant

PASSWORD = "operator-password-123"


def _seed(live_app: Flask) -> tuple[str, str, str]:
    marker = uuid.uuid4().hex[:8]
    with live_app.app_context():
        admin = create_platform_admin(f"ops-{marker}@platform.example", PASSWORD)
        tenant = make_tenant(name=f"Harbour {marker}")
        make_tenant(name=f"Other {uuid.uuid4().hex[:8]}")
        db.session.commit()
        return admin.email, tenant.name, marker


def test_an_operator_works_the_admin_with_the_keyboard_at_360_px(
    live_app: Flask, live_server: str, browser_context_factory
) -> None:  # noqa: ANN001
    email, tenant_name, marker = _seed(live_app)
    page = browser_context_factory(viewport={"width": 360, "height": 740}).new_page()
    problems: list[str] = []
    # Resource errors (the favicon, the refused form's 400) are expected; CSP refusals are not.
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(live_server + "/admin/login")
    page.get_by_label("Email").focus()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()

    # Searching updates the table in place through HTMX, and the address follows.
    page.get_by_label("Search by name or address").fill(marker)
    expect(page.get_by_role("link", name=tenant_name)).to_be_visible()
    expect(page.locator("#tenant-results")).not_to_contain_text("Other ")
    expect(page).to_have_url(f"{live_server}/admin/?q={marker}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.get_by_role("link", name=tenant_name).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=tenant_name)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    commission = page.get_by_label("Commission percent")
    commission.fill("60")
    commission.press("Enter")
    expect(page.locator("#commission_percent-error")).to_have_text(
        "The commission must be between 0 and 50 percent."
    )
    expect(page.get_by_label("Commission percent")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Commission percent").fill("15")
    page.get_by_label("Commission percent").press("Enter")
    expect(page.get_by_role("status")).to_contain_text("is now 15.00%")

    assert not problems, problems
