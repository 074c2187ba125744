import pytest

from mais.catalog import catalog_sections, get_active_package, list_active_packages
from mais.errors import Conflict, NotFound
from tests.factories import make_addon, make_package, make_segment, make_tenant


def test_sections_group_active_packages_in_order(tenant):
    elopements = make_segment(tenant, "Elopements")
    weddings = make_segment(tenant, "Weddings")
    bouquet = make_addon(tenant, "Bouquet", 9000)
    make_package(tenant, "Courthouse", segment=elopements, addons=[bouquet])
    make_package(tenant, "Garden", segment=weddings)
    make_package(tenant, "Hidden", segment=weddings, is_active=False)
    make_package(tenant, "Loose")
    sections = catalog_sections(tenant)
    assert [(s.title, [p.title for p in s.packages]) for s in sections] == [
        ("Elopements", ["Courthouse"]),
        ("Weddings", ["Garden"]),
        (None, ["Loose"]),
    ]
    assert sections[0].packages[0].addons[0].title == "Bouquet"


def test_descriptions_are_sanitized(tenant):
    package = make_package(
        tenant, "Risky", description_html='<p onclick="x()">Hi<script>alert(1)</script></p>'
    )
    view = get_active_package(tenant, package.slug)
    assert "script" not in view.description_html and "onclick" not in view.description_html
    assert "<p>Hi</p>" in view.description_html


def test_slugs_are_unique_per_tenant_only(app_ctx):
    # Domain functions enter their tenant's scope themselves; no fixture scope here.
    first, second = make_tenant(), make_tenant()
    make_package(first, "Courthouse", slug="courthouse")
    with pytest.raises(Conflict):
        make_package(first, "Courthouse again", slug="courthouse")
    make_package(second, "Courthouse", slug="courthouse")  # another tenant: fine


def test_unknown_or_inactive_package_is_not_found(app_ctx):
    tenant, other = make_tenant(), make_tenant()
    make_package(other, "Theirs", slug="theirs")
    for slug in ("nope", "theirs"):
        with pytest.raises(NotFound):
            get_active_package(tenant, slug)
    assert list_active_packages(tenant) == []
