"""Cross-tenant probe: every portal route that names an object answers 404 to another tenant's
owner, for GET and POST alike, and changes nothing. Routes are found by walking the url_map, so
new ones are covered without editing this test."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import inspect, select

from mais import catalog
from mais.extensions import db
from mais.models import AddOn, Blackout, Booking, Package, PackagePhoto, Segment, Tenant
from mais.tenancy import tenant_scope
from portal.auth import OBJECT_ARGUMENTS, PUBLIC_ARGUMENTS
from tests.factories import make_addon, make_blackout, make_package, make_segment, make_tenant

from .conftest import make_booking, png_bytes

OWNED_MODELS = (Package, PackagePhoto, AddOn, Segment, Blackout, Booking)
HOSTILE_FORM = {
    "title": "Taken over",
    "price": "1",
    "slug": "taken-over",
    "active": "1",
    "direction": "up",
    "refund": "1",
    "addons": [],
    "reason": "mine now",
}


def _objects_of(tenant: Tenant) -> dict[str, int]:
    with tenant_scope(tenant):
        segment = make_segment(tenant, "Segment A")
        addon = make_addon(tenant, "Add-on A")
        package = make_package(tenant, "Package A", segment=segment, addons=[addon])
        photo = catalog.add_package_photo(tenant, package.id, png_bytes())
        blackout = make_blackout(tenant, date.today() + timedelta(days=40))
        booking = make_booking(tenant, package, date.today() + timedelta(days=50))
    return {
        "package_id": package.id,
        "photo_id": photo.id,
        "addon_id": addon.id,
        "segment_id": segment.id,
        "blackout_id": blackout.id,
        "booking_id": booking.id,
    }


def _snapshot(tenant: Tenant) -> dict:
    db.session.expire_all()
    rows = {}
    with tenant_scope(tenant):
        for model in OWNED_MODELS:
            columns = [c.key for c in inspect(model).column_attrs]
            rows[model.__name__] = sorted(
                tuple(getattr(obj, c) for c in columns) for obj in db.session.scalars(select(model))
            )
    return rows


def test_every_object_route_answers_404_to_another_tenant(app, app_ctx, login):
    victim, intruder = make_tenant(), make_tenant()
    ids = _objects_of(victim)
    assert set(ids) == set(OBJECT_ARGUMENTS), "give the probe an object of every kind"
    db.session.commit()
    before = _snapshot(victim)
    client = login(intruder)

    urls = app.url_map.bind("localhost")
    probed = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("portal.") or not rule.arguments:
            continue
        arguments = set(rule.arguments)
        if arguments <= PUBLIC_ARGUMENTS:
            continue  # secret-token and media URLs: tested in test_public.py
        missing = arguments - set(ids)
        assert not missing, f"{rule.rule}: add {missing} to the probe and to OBJECT_ARGUMENTS"
        url = urls.build(rule.endpoint, {name: ids[name] for name in arguments})
        for method in sorted(rule.methods & {"GET", "POST"}):
            for headers in ({}, {"HX-Request": "true"}):
                response = client.open(url, method=method, data=HOSTILE_FORM, headers=headers)
                assert response.status_code == 404, f"{method} {rule.rule}: {response.status_code}"
                probed += 1
    assert probed >= 30  # each route with the methods it serves, with and without HTMX
    assert _snapshot(victim) == before


def test_the_owner_reaches_the_same_routes(app, app_ctx, login):
    """The probe's 404s come from ownership, not from broken routes."""
    owner_tenant = make_tenant()
    ids = _objects_of(owner_tenant)
    db.session.commit()
    client = login(owner_tenant)
    urls = app.url_map.bind("localhost")
    for endpoint in ("portal.package", "portal.booking"):
        rule_args = {n: ids[n] for n in next(app.url_map.iter_rules(endpoint)).arguments}
        assert client.get(urls.build(endpoint, rule_args)).status_code == 200
