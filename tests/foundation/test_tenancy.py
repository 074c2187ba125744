"""The central guard: a query that forgets its tenant fails loudly; B never sees A's rows."""

from datetime import date

import pytest
from sqlalchemy import and_, bindparam, delete, func, insert, not_, or_, select, text, update

from mais.errors import NotFound
from mais.extensions import db
from mais.models import AuditLog, Blackout, Package
from mais.models.base import utcnow
from mais.tenancy import (
    SCOPE_TENANT_PARAM,
    TenantScopeError,
    _checked_statements,
    execute_in_scope,
    get_owned_or_404,
    insert_or_skip,
    platform_scope,
    scope_tenant_id,
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


# --- Core statements: the hot paths write and read without the ORM -------------------------

AUDIT = AuditLog.__table__


def _audit_row(tenant_id):
    return {"tenant_id": tenant_id, "actor": "system", "action": "test.core", "object_type": "t"}


def _core_rows():
    with platform_scope("test: counting what the test inserted"):
        return db.session.scalar(
            select(func.count()).select_from(AUDIT).where(AUDIT.c.action == "test.core")
        )


def test_a_core_insert_into_another_tenant_is_refused(two_tenants):
    a, b, _ = two_tenants
    with tenant_scope(b):
        for statement, params in [
            (insert(AUDIT), _audit_row(a.id)),
            (insert(AUDIT).values(_audit_row(a.id)), None),
            (insert(AUDIT).values(tenant_id=bindparam("owner")), {"owner": a.id}),
            (insert(AUDIT), [_audit_row(b.id), _audit_row(a.id)]),
            (insert(AUDIT).values([_audit_row(b.id), _audit_row(a.id)]), None),
            (insert(AuditLog), [_audit_row(a.id)]),
        ]:
            with pytest.raises(TenantScopeError, match="of tenant"):
                db.session.execute(statement, params)
    assert _core_rows() == 0


def test_a_core_insert_needs_a_plain_tenant_id_and_a_scope(two_tenants):
    a, b, _ = two_tenants
    row = _audit_row(a.id)
    with pytest.raises(TenantScopeError, match="outside a tenant scope"):
        db.session.execute(insert(AUDIT), row)
    with tenant_scope(a):
        with pytest.raises(TenantScopeError, match="without a tenant_id"):
            db.session.execute(insert(AUDIT), {k: v for k, v in row.items() if k != "tenant_id"})
        with pytest.raises(TenantScopeError, match="plain value"):
            db.session.execute(
                insert(AUDIT).values(
                    tenant_id=select(func.max(AUDIT.c.tenant_id)).scalar_subquery()
                ),
                {k: v for k, v in row.items() if k != "tenant_id"},
            )
        db.session.execute(insert(AUDIT), row)
    with platform_scope("test: a platform job writes for a tenant it names"):
        db.session.execute(insert(AUDIT), _audit_row(b.id))
    assert _core_rows() == 2


def test_a_core_update_in_b_leaves_a_untouched(two_tenants):
    a, b, package_a = two_tenants
    with tenant_scope(b):
        db.session.execute(update(Package.__table__).values(title="renamed by B"))
        db.session.execute(delete(Blackout.__table__))
    db.session.expire_all()
    with tenant_scope(a):
        assert db.session.scalars(select(Package.title)).all() == ["A's package"]
        assert db.session.scalar(select(func.count()).select_from(Blackout)) == 1


PACKAGES = Package.__table__
BLACKOUTS = Blackout.__table__
_TITLES = select(PACKAGES.c.title).where(PACKAGES.c.tenant_id == scope_tenant_id())


def test_a_prebuilt_statement_reads_its_scope_tenant_only(two_tenants):
    a, b, _ = two_tenants
    with tenant_scope(b):
        assert execute_in_scope(db.session, _TITLES).scalars().all() == ["B's package"]
        # A caller cannot pass another tenant: the scope's tenant is always bound last.
        crossing = {SCOPE_TENANT_PARAM: a.id}
        assert execute_in_scope(db.session, _TITLES, crossing).scalars().all() == ["B's package"]
    with pytest.raises(TenantScopeError):
        execute_in_scope(db.session, _TITLES)
    with platform_scope("test: no tenant to bind"), pytest.raises(TenantScopeError):
        execute_in_scope(db.session, _TITLES)


@pytest.mark.parametrize(
    "statement",
    [
        lambda: select(PACKAGES.c.title),
        lambda: select(PACKAGES.c.title).where(PACKAGES.c.tenant_id == 1),
        lambda: select(PACKAGES.c.title).where(PACKAGES.c.tenant_id != scope_tenant_id()),
        lambda: select(
            select(PACKAGES.c.title).where(PACKAGES.c.slug == "x").scalar_subquery()
        ).where(Blackout.__table__.c.tenant_id == scope_tenant_id()),
        lambda: select(PACKAGES.c.title).where(
            PACKAGES.c.tenant_id == scope_tenant_id(),
            PACKAGES.c.id.in_(select(Blackout.__table__.c.id)),
        ),
        lambda: select(Blackout.__table__.c.id)
        .select_from(
            Blackout.__table__.join(
                PACKAGES, PACKAGES.c.tenant_id == Blackout.__table__.c.tenant_id
            )
        )
        .where(Blackout.__table__.c.tenant_id == scope_tenant_id()),
        lambda: select(PACKAGES.alias().c.title),
        lambda: update(PACKAGES).values(title="x"),
        lambda: delete(PACKAGES).where(PACKAGES.c.slug == "x"),
        lambda: insert(PACKAGES),
        lambda: insert(PACKAGES).values(tenant_id=1),
        lambda: text("SELECT title FROM packages WHERE tenant_id = :scope_tenant_id"),
        # A filter that does not restrict every row is no filter.
        lambda: select(PACKAGES.c.title).where(
            or_(PACKAGES.c.tenant_id == scope_tenant_id(), PACKAGES.c.slug == "x")
        ),
        lambda: select(PACKAGES.c.title).where(not_(PACKAGES.c.tenant_id == scope_tenant_id())),
        lambda: update(PACKAGES)
        .where(or_(PACKAGES.c.tenant_id == scope_tenant_id(), PACKAGES.c.id > 0))
        .values(title="x"),
        lambda: delete(PACKAGES).where(
            or_(PACKAGES.c.tenant_id == scope_tenant_id(), PACKAGES.c.id > 0)
        ),
        # A left outer join keeps its left side whole, whatever its ON clause says of it.
        lambda: select(PACKAGES.c.title).select_from(
            PACKAGES.outerjoin(
                BLACKOUTS,
                and_(
                    PACKAGES.c.tenant_id == scope_tenant_id(),
                    BLACKOUTS.c.tenant_id == scope_tenant_id(),
                ),
            )
        ),
        lambda: select(PACKAGES.c.title).select_from(
            PACKAGES.join(
                BLACKOUTS,
                and_(
                    PACKAGES.c.tenant_id == scope_tenant_id(),
                    BLACKOUTS.c.tenant_id == scope_tenant_id(),
                ),
                full=True,
            )
        ),
        # An UPDATE that names another tenant table reads all of it.
        lambda: update(PACKAGES)
        .where(PACKAGES.c.tenant_id == scope_tenant_id(), PACKAGES.c.id == BLACKOUTS.c.id)
        .values(title="x"),
    ],
    ids=[
        "unfiltered",
        "literal",
        "not-equal",
        "subquery",
        "in-subquery",
        "join",
        "alias",
        "update",
        "delete",
        "insert",
        "insert-literal",
        "text",
        "or",
        "not",
        "or-in-update",
        "or-in-delete",
        "outer-join-kept-side",
        "full-join",
        "update-from",
    ],
)
def test_a_prebuilt_statement_must_filter_every_tenant_table(two_tenants, statement):
    with tenant_scope(two_tenants[0]), pytest.raises(TenantScopeError):
        execute_in_scope(db.session, statement())


@pytest.mark.parametrize(
    "statement",
    [
        lambda: select(PACKAGES.c.title).where(
            and_(PACKAGES.c.slug != "x", and_(PACKAGES.c.tenant_id == scope_tenant_id()))
        ),
        lambda: select(PACKAGES.c.title).select_from(
            PACKAGES.join(
                BLACKOUTS,
                and_(
                    PACKAGES.c.tenant_id == scope_tenant_id(),
                    BLACKOUTS.c.tenant_id == scope_tenant_id(),
                ),
            )
        ),
        lambda: select(PACKAGES.c.title)
        .select_from(PACKAGES.outerjoin(BLACKOUTS, BLACKOUTS.c.tenant_id == scope_tenant_id()))
        .where(PACKAGES.c.tenant_id == scope_tenant_id()),
    ],
    ids=["nested-and", "inner-join", "outer-join-joined-side"],
)
def test_filters_that_restrict_every_row_are_accepted(two_tenants, statement):
    a, b, _ = two_tenants
    with tenant_scope(b):
        titles = set(execute_in_scope(db.session, statement()).scalars())
    assert titles <= {"B's package"}


def test_the_checked_statement_memo_stays_bounded(two_tenants):
    with tenant_scope(two_tenants[1]):
        for n in range(600):
            built_per_call = select(PACKAGES.c.title).where(
                PACKAGES.c.tenant_id == scope_tenant_id(), PACKAGES.c.id != n
            )
            execute_in_scope(db.session, built_per_call).all()
    assert len(_checked_statements) <= 256


def test_a_prebuilt_insert_writes_rows_of_its_scope_tenant(two_tenants):
    a, b, _ = two_tenants
    statement = insert(AUDIT).values(tenant_id=scope_tenant_id())
    with tenant_scope(b):
        execute_in_scope(db.session, statement, [_audit_row(a.id), _audit_row(a.id)])
    with platform_scope("test: reading what was written"):
        owners = db.session.scalars(
            select(AUDIT.c.tenant_id).where(AUDIT.c.action == "test.core")
        ).all()
    assert owners == [b.id, b.id]


def test_insert_or_skip_takes_the_tenant_from_the_scope(two_tenants):
    a, b, _ = two_tenants
    statement = insert_or_skip(Blackout.__table__, "(tenant_id, on_date)", returning="id")
    now = utcnow()
    row = {"on_date": date(2030, 1, 1), "reason": "", "created_at": now, "updated_at": now}
    with tenant_scope(b):
        made = execute_in_scope(db.session, statement, {**row, "tenant_id": a.id}).scalar()
        assert made is not None
        assert execute_in_scope(db.session, statement, row).scalar() is None  # skipped
    with tenant_scope(a):
        # A's blackout on that date is still A's only (the factory made it).
        assert db.session.scalar(select(func.count()).select_from(Blackout)) == 1
    with tenant_scope(b):
        assert db.session.scalars(select(Blackout.id)).all() == [made]
