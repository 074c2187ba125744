"""The central guard: a query that forgets its tenant fails loudly; B never sees A's rows."""

from datetime import date

import pytest
from sqlalchemy import delete, func, select, update

from mais.errors import NotFound
from mais.extensions import db
from mais.models import Blackout, Package
from mais.tenancy import (
    TenantScopeError,
    get_owned_or_404,
    platform_scope,
    tenant_scope,
)
from tests.factories import make_blackout, make_package, make_tenant


@pytest.fixture
def two_tenants(app_ctx):
    a, b = make_tenant(), make_tenant()
    with tenant_scope(a):
        package_a = make_package(a, "A's package", slug="shared-slug")
        make_blackout(a, date(2030, 1, 1))
    with tenant_scope(b):
        make_package(b, "B's package", slug="shared-slug")
    return a, b, package_a


def test_query_without_a_tenant_scope_raises(two_tenants):
    with pytest.raises(TenantScopeError):
        db.session.execute(select(Package)).all()


@pytest.mark.parametrize(
    "statement",
    [
        lambda: select(func.count()).select_from(Package),
        lambda: select(func.count()).where(Blackout.on_date == date(2030, 1, 1)),
        lambda: select(Package.title),
        lambda: select(func.max(Package.sort_order)),
        lambda: select(func.count()).select_from(select(Package.id).subquery()),
        lambda: update(Package).values(title="hijacked"),
        lambda: delete(Blackout),
    ],
    ids=["count", "implicit-from", "column", "aggregate", "subquery", "update", "delete"],
)
def test_every_statement_shape_is_refused_outside_a_scope(two_tenants, statement):
    with pytest.raises(TenantScopeError):
        db.session.execute(statement())


def test_tenant_b_never_sees_tenant_a_rows(two_tenants):
    a, b, package_a = two_tenants
    with tenant_scope(b):
        titles = db.session.scalars(select(Package.title)).all()
        assert titles == ["B's package"]
        assert db.session.scalar(select(func.count()).select_from(Package)) == 1
        assert (
            db.session.scalar(select(func.count()).where(Blackout.on_date == date(2030, 1, 1))) == 0
        )
        db.session.expunge_all()
        assert db.session.get(Package, package_a.id) is None


def test_updates_and_deletes_in_b_leave_a_untouched(two_tenants):
    a, b, package_a = two_tenants
    with tenant_scope(b):
        db.session.execute(update(Package).values(title="renamed by B"))
        db.session.execute(delete(Blackout))
    db.session.expire_all()
    with tenant_scope(a):
        assert db.session.scalars(select(Package.title)).all() == ["A's package"]
        assert db.session.scalar(select(func.count()).select_from(Blackout)) == 1


def test_another_tenants_object_is_not_found(two_tenants):
    a, b, package_a = two_tenants
    db.session.expunge_all()
    with pytest.raises(NotFound):
        get_owned_or_404(db.session, b, Package, package_a.id)
    assert get_owned_or_404(db.session, a, Package, package_a.id).title == "A's package"


def test_writing_into_another_tenant_is_refused(two_tenants):
    a, b, _ = two_tenants
    with tenant_scope(b), pytest.raises(TenantScopeError):
        db.session.add(Blackout(tenant_id=a.id, on_date=date(2031, 5, 5)))
        db.session.flush()
    db.session.rollback()


def test_new_rows_take_the_scope_tenant(app_ctx):
    tenant = make_tenant()
    with tenant_scope(tenant):
        blackout = Blackout(on_date=date(2032, 2, 2))
        db.session.add(blackout)
        db.session.flush()
        assert blackout.tenant_id == tenant.id


def test_nested_scope_of_another_tenant_is_an_error(two_tenants):
    a, b, _ = two_tenants
    with tenant_scope(a), pytest.raises(TenantScopeError), tenant_scope(b):
        pass


def test_platform_scope_sees_everyone_and_needs_a_reason(two_tenants):
    with platform_scope("test: counting all packages"):
        assert db.session.scalar(select(func.count()).select_from(Package)) >= 2
    with pytest.raises(ValueError), platform_scope(""):
        pass


def test_aggregates_and_implicit_froms_are_filtered_inside_a_scope(two_tenants):
    a, b, _ = two_tenants
    with tenant_scope(a):
        make_package(a, "A's second", price_cents=999)
    with tenant_scope(b):
        assert db.session.scalar(select(func.max(Package.price_cents))) == 120000
        assert db.session.scalar(select(func.count(Package.id))) == 1
        assert db.session.scalar(select(func.count()).where(Package.price_cents < 1000)) == 0
