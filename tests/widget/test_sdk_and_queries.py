"""The served loader's size budget, the widget's messaging rules, and a catalog step without N+1."""

from __future__ import annotations

import re
from contextlib import contextmanager

from sqlalchemy import event

from mais.extensions import db
from mais.models import PackagePhoto
from mais.tenancy import tenant_scope
from tests.factories import make_addon, make_package, make_segment, make_tenant
from tests.support import ROOT

WIDGET_JS = ROOT / "static" / "widget" / "widget.js"


def test_the_served_loader_fits_in_one_kilobyte_on_the_wire(client):
    # What every host page downloads: the built file at the snippet's fixed URL, as a browser
    # asks for it. What it does is driven in a real browser (e2e/widget/).
    for coding in ("gzip", "br"):
        answer = client.get(
            "/static/sdk/mais-sdk.js", headers={"Accept-Encoding": coding}, buffered=True
        )
        assert answer.status_code == 200
        assert answer.headers["Content-Encoding"] == coding
        assert len(answer.get_data()) <= 1024


def test_widget_posts_only_to_the_checked_origin():
    source = WIDGET_JS.read_text()
    calls = re.findall(r"postMessage\(([^)]*)\)", source)
    assert calls == ["message, parentOrigin"]


@contextmanager
def count_statements():
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _catalog_tenant(size: int):
    tenant = make_tenant()
    with tenant_scope(tenant):
        segments = [make_segment(tenant, f"Segment {i}") for i in range(3)]
        addons = [make_addon(tenant) for _ in range(3)]
        for i in range(size):
            package = make_package(tenant, segment=segments[i % 3], addons=addons)
            db.session.add(
                PackagePhoto(
                    package_id=package.id,
                    storage_key=f"t{tenant.id}/{i:032x}.jpg",
                    thumbnail_key=f"t{tenant.id}/{i:032x}-thumb.jpg",
                    content_type="image/jpeg",
                    alt_text="A photo",
                )
            )
        db.session.flush()
    return tenant


def test_catalog_step_issues_as_many_queries_for_200_packages_as_for_5(client, app_ctx):
    counts = {}
    for size in (5, 200):
        tenant = _catalog_tenant(size)
        embed = {"key": tenant.public_key, "origin": "https://studio.example"}
        with count_statements() as statements:
            response = client.get(f"/widget/{tenant.slug}/", query_string=embed)
        assert response.status_code == 200
        assert response.get_data(as_text=True).count('class="package-card"') == size
        counts[size] = len(statements)
    assert counts[5] == counts[200], counts
