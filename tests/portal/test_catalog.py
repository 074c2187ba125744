"""Catalog editing in the portal: packages, photos, add-ons, segments; every change audited."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from mais.extensions import db
from mais.models import AuditLog, Package
from tests.factories import make_addon, make_package, make_segment

from .conftest import make_booking

HTMX = {"HX-Request": "true"}


def _audit_actions(tenant) -> list[str]:
    return list(db.session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def test_create_package_sanitizes_the_description_and_audits(owner, tenant):
    response = owner.post(
        "/portal/packages",
        data={
            "title": "Sunrise elopement",
            "price": "1,250.50",
            "description": '<p onclick="x()">Hi <script>alert(1)</script><strong>there</strong></p>',
        },
    )
    assert response.status_code == 302
    package = db.session.scalar(select(Package).where(Package.slug == "sunrise-elopement"))
    assert package.price_cents == 125050
    assert package.description_html == "<p>Hi <strong>there</strong></p>"
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "package.create")).one()
    assert entry.actor == tenant.owner.email and entry.object_id == str(package.id)


def test_create_package_shows_the_error_beside_the_field(owner):
    response = owner.post("/portal/packages", data={"title": "Nice", "price": "abc"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert 'id="f-price-error"' in body and "Enter an amount" in body
    assert 'aria-invalid="true"' in body


def test_inline_edit_swaps_the_row_over_htmx(owner, tenant):
    package = make_package(tenant, "Old title")
    db.session.commit()  # the refused edit below rolls its own transaction back
    editor = owner.get(f"/portal/packages/{package.id}/edit", headers=HTMX)
    assert editor.status_code == 200
    assert f'id="package-{package.id}"' in editor.get_data(as_text=True)
    assert "<html" not in editor.get_data(as_text=True)
    assert "HX-Request" in editor.headers["Vary"]

    saved = owner.post(
        f"/portal/packages/{package.id}",
        data={"title": "New title", "price": "900", "slug": package.slug},
        headers=HTMX,
    )
    body = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "New title" in body and "<html" not in body
    assert package.title == "New title" and package.price_cents == 90000

    invalid = owner.post(
        f"/portal/packages/{package.id}", data={"title": "", "price": "900"}, headers=HTMX
    )
    assert "Enter a title." in invalid.get_data(as_text=True)


def test_edit_without_javascript_uses_the_package_page(owner, tenant):
    package = make_package(tenant, "Plain")
    assert owner.get(f"/portal/packages/{package.id}/edit").status_code == 302
    response = owner.post(f"/portal/packages/{package.id}", data={"title": "Plainer", "price": "1"})
    assert response.status_code == 302 and package.title == "Plainer"


def test_reorder_activate_and_delete(owner, tenant):
    first, second = make_package(tenant, "First"), make_package(tenant, "Second")
    owner.post(f"/portal/packages/{second.id}/move", data={"direction": "up"})
    assert second.sort_order < first.sort_order
    owner.post(f"/portal/packages/{first.id}/active", data={})
    assert first.is_active is False
    owner.post(f"/portal/packages/{first.id}/active", data={"active": "1"})
    assert first.is_active is True
    first_id = first.id
    assert owner.post(f"/portal/packages/{first_id}/delete").status_code == 302
    assert db.session.get(Package, first_id) is None
    actions = _audit_actions(tenant)
    for action in ("package.reorder", "package.deactivate", "package.activate", "package.delete"):
        assert action in actions


def test_a_booked_package_cannot_be_deleted(owner, tenant):
    package = make_package(tenant, "Booked one")
    make_booking(tenant, package, date.today() + timedelta(days=30))
    db.session.commit()  # the refused request rolls its own transaction back
    response = owner.post(f"/portal/packages/{package.id}/delete")
    assert response.status_code == 409
    assert "Deactivate it instead" in response.get_data(as_text=True)
    assert db.session.get(Package, package.id) is not None


def test_addons_links_and_segments(owner, tenant):
    package = make_package(tenant)
    bouquet = make_addon(tenant, "Bouquet")
    owner.post(f"/portal/packages/{package.id}/addons", data={"addons": [str(bouquet.id)]})
    assert [a.title for a in package.addons] == ["Bouquet"]

    owner.post(f"/portal/addons/{bouquet.id}", data={"title": "Big bouquet", "price": "120"})
    assert bouquet.title == "Big bouquet" and bouquet.price_cents == 12000
    assert bouquet.is_active is False  # the "Offered" box was not ticked

    one, two = make_segment(tenant, "One"), make_segment(tenant, "Two")
    owner.post(f"/portal/segments/{two.id}/move", data={"direction": "up"})
    assert two.sort_order < one.sort_order
    owner.post(f"/portal/segments/{one.id}", data={"title": "Uno"})
    assert one.title == "Uno"
    assert owner.post(f"/portal/segments/{one.id}/delete").status_code == 302
    assert owner.post(f"/portal/addons/{bouquet.id}/delete").status_code == 302
    assert {"addon.update", "segment.reorder", "segment.delete", "addon.delete"} <= set(
        _audit_actions(tenant)
    )
