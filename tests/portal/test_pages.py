"""Every portal page renders for a logged-in owner, and answers the anonymous with the login."""

from __future__ import annotations

import pytest

from tests.factories import make_addon, make_blackout, make_package, make_segment

PAGES = [
    "/portal/",
    "/portal/packages",
    "/portal/addons",
    "/portal/segments",
    "/portal/calendar",
    "/portal/bookings",
    "/portal/bookings?filter=past",
    "/portal/bookings?filter=cancelled",
    "/portal/settings",
    "/portal/audit",
]


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_for_the_owner(owner, tenant, path):
    from datetime import date, timedelta

    segment = make_segment(tenant)
    make_package(tenant, "Courthouse", segment=segment, addons=[make_addon(tenant)])
    make_blackout(tenant, date.today() + timedelta(days=3))
    response = owner.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    body = response.get_data(as_text=True)
    assert "Log out" in body
    assert "style=" not in body and "<script>" not in body


@pytest.mark.parametrize("path", PAGES)
def test_page_needs_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/portal/login")
