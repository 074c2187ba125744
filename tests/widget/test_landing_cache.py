"""The widget's landing page is answered from the cache, and every change that could alter it
(the catalog, the key, the allowed origins, the tenant's activation) is seen at once."""

from __future__ import annotations

from sqlalchemy import event

from mais.extensions import db
from mais.tenants import rotate_public_key
from tests.factories import make_package

from .conftest import HOST_ORIGIN


def _landing(client, shop, **params):
    query = {**shop.embed, **params}
    return client.get(f"/widget/{shop.tenant.slug}/", query_string=query)


def _statements_during(request) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        request()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_repeated_landing_costs_one_id_lookup_and_keeps_its_headers(client, shop):
    url, query = f"/widget/{shop.tenant.slug}/", dict(shop.embed)
    first = client.get(url, query_string=query)
    statements = _statements_during(lambda: client.get(url, query_string=query))
    statements = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    again = client.get(url, query_string=query)
    assert first.status_code == again.status_code == 200
    assert again.get_data() == first.get_data()
    # One indexed lookup of the tenant's id, not the whole tenant row.
    assert len(statements) == 1 and "FROM tenants" in statements[0]
    assert "tenants.name" not in statements[0]
    assert f"frame-ancestors {HOST_ORIGIN}" in again.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in again.headers


def test_changes_to_the_catalog_or_the_tenant_are_seen_at_once(client, shop):
    assert "Courthouse" in _landing(client, shop).get_data(as_text=True)
    make_package(shop.tenant, "Lighthouse vows", 90000)
    db.session.commit()
    assert "Lighthouse vows" in _landing(client, shop).get_data(as_text=True)

    old_key = shop.tenant.public_key
    rotate_public_key(shop.tenant)
    db.session.commit()
    assert _landing(client, shop, key=old_key).status_code == 403

    shop.tenant.allowed_origins = ["https://elsewhere.example"]
    db.session.commit()
    assert _landing(client, shop).status_code == 403

    shop.tenant.allowed_origins = [HOST_ORIGIN]
    shop.tenant.is_active = False
    db.session.commit()
    closed = _landing(client, shop)
    assert (
        "not taking bookings" in closed.get_data(as_text=True).lower() or closed.status_code == 200
    )
    assert "Courthouse" not in closed.get_data(as_text=True)
