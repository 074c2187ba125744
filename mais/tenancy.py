"""Tenant isolation by construction.

Every tenant-owned model inherits ``TenantOwned``. A listener on every ORM ``Session`` adds
``tenant_id = <current tenant>`` to each SELECT, UPDATE and DELETE that touches such a model, and
refuses the statement outside a scope. Code therefore cannot forget the filter: a query without a
tenant raises ``TenantScopeError`` instead of returning everybody's rows.

Scopes are set with ``tenant_scope(tenant)`` (requests, domain functions) or, for the few
platform-level jobs that must see all tenants (admin figures, the mail relay, maintenance,
webhook routing), ``platform_scope(reason)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy import ForeignKey, Select, Table, event, select
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql.util import find_tables

from .errors import NotFound
from .extensions import Base

if TYPE_CHECKING:
    from .models.tenant import Tenant


class TenantScopeError(RuntimeError):
    """A tenant-owned query or write was attempted without (or against) the current tenant."""


@dataclass(frozen=True)
class Scope:
    tenant_id: int | None
    reason: str = ""

    @property
    def is_platform(self) -> bool:
        return self.tenant_id is None


_current_scope: ContextVar[Scope | None] = ContextVar("mais_tenant_scope", default=None)


class TenantOwned:
    """Mixin for rows that belong to exactly one tenant."""

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


def current_scope() -> Scope | None:
    return _current_scope.get()


def current_tenant_id() -> int:
    scope = _current_scope.get()
    if scope is None or scope.tenant_id is None:
        raise TenantScopeError("No tenant scope is active")
    return scope.tenant_id


def _tenant_id_of(tenant: Tenant | int) -> int:
    tenant_id = tenant if isinstance(tenant, int) else tenant.id
    if tenant_id is None:
        raise TenantScopeError("The tenant has no id yet; flush it before entering its scope")
    return tenant_id


@contextmanager
def tenant_scope(tenant: Tenant | int) -> Iterator[int]:
    """See only ``tenant``'s rows. Nesting the same tenant is fine; another tenant is an error."""
    tenant_id = _tenant_id_of(tenant)
    outer = _current_scope.get()
    if outer is not None and not outer.is_platform and outer.tenant_id != tenant_id:
        raise TenantScopeError(
            f"Tenant {tenant_id} was requested inside the scope of tenant {outer.tenant_id}"
        )
    token = _current_scope.set(Scope(tenant_id))
    try:
        yield tenant_id
    finally:
        _current_scope.reset(token)


@contextmanager
def platform_scope(reason: str) -> Iterator[None]:
    """See every tenant's rows. Only for platform jobs; ``reason`` documents why at the call."""
    if not reason:
        raise ValueError("platform_scope needs a reason")
    token = _current_scope.set(Scope(None, reason))
    try:
        yield
    finally:
        _current_scope.reset(token)


def enter_scope(scope: Scope | None) -> object:
    """Set the scope for the rest of the current context (a request); returns a reset token."""
    return _current_scope.set(scope)


def reset_scope(token: Any) -> None:
    _current_scope.reset(token)


P = ParamSpec("P")
R = TypeVar("R")


def tenant_operation(func: Callable[P, R]) -> Callable[P, R]:
    """Run a domain function ``verb_noun(tenant, ...)`` inside its tenant's scope."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        tenant = args[0] if args else kwargs.get("tenant")
        if tenant is None:
            raise TenantScopeError(f"{func.__qualname__} needs a tenant as its first argument")
        with tenant_scope(tenant):  # type: ignore[arg-type]
            return func(*args, **kwargs)

    return wrapper


_owned_tables_cache: tuple[int, dict[Table, type]] = (-1, {})


def _tenant_owned_tables() -> dict[Table, type]:
    global _owned_tables_cache
    mappers = Base.registry.mappers
    if _owned_tables_cache[0] != len(mappers):
        tables = {
            mapper.local_table: mapper.class_
            for mapper in mappers
            if issubclass(mapper.class_, TenantOwned)
        }
        _owned_tables_cache = (len(mappers), tables)  # type: ignore[assignment]
    return _owned_tables_cache[1]


def _tenant_tables_in(state: ORMExecuteState) -> tuple[dict[Table, type], set[Table]]:
    """Every tenant-owned table a statement reads or writes, however it names it: entities,
    bare columns, subqueries, joins and UPDATE/DELETE targets alike; and the tables that the
    statement names as ORM entities."""
    owned = _tenant_owned_tables()
    found = {
        table: owned[table]
        for table in find_tables(
            state.statement,
            check_columns=True,
            include_aliases=True,
            include_joins=True,
            include_crud=True,
        )
        if table in owned
    }
    entity_tables = set()
    for mapper in state.all_mappers:
        entity_tables.add(mapper.local_table)
        if issubclass(mapper.class_, TenantOwned):
            found[mapper.local_table] = mapper.class_  # type: ignore[index]
    return found, entity_tables


@event.listens_for(Session, "do_orm_execute")
def _apply_tenant_criteria(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get("mais_cross_tenant_ok"):
        return
    scope = _current_scope.get()
    if scope is not None and scope.is_platform:
        return
    tables, entity_tables = _tenant_tables_in(state)
    if not tables:
        return
    if scope is None:
        raise TenantScopeError(
            "A query on tenant-owned data ran outside a tenant scope: "
            + ", ".join(sorted(cls.__name__ for cls in tables.values()))
        )
    tenant_id = scope.tenant_id
    statement = state.statement
    if isinstance(statement, Select) and not tables.keys() <= entity_tables:
        # A table named only in WHERE or in an aggregate (select(func.count()).where(X.a == 1))
        # is an implicit FROM that loader criteria do not reach; name it as an entity so they do.
        # (get_final_froms is costly, so only statements with such tables pay for it.)
        for from_clause in statement.get_final_froms():
            if isinstance(from_clause, Table) and from_clause in tables:
                statement = statement.select_from(tables[from_clause])
    state.statement = statement.options(
        with_loader_criteria(
            TenantOwned,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
            track_closure_variables=True,
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_and_check_tenant(session: Session, flush_context: Any, instances: Any) -> None:
    scope = _current_scope.get()
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantOwned):
            continue
        if scope is None:
            raise TenantScopeError(f"{type(obj).__name__} was written outside a tenant scope")
        if scope.is_platform:
            if obj.tenant_id is None:
                raise TenantScopeError(f"{type(obj).__name__} needs a tenant_id")
            continue
        if obj.tenant_id is None:
            obj.tenant_id = scope.tenant_id
        elif obj.tenant_id != scope.tenant_id:
            raise TenantScopeError(
                f"{type(obj).__name__} of tenant {obj.tenant_id} was written in the scope of "
                f"tenant {scope.tenant_id}"
            )


M = TypeVar("M")


def get_owned_or_404(session: Session, tenant: Tenant | int, model: type[M], object_id: Any) -> M:
    """Load a tenant-owned object by primary key; another tenant's object is simply not found."""
    with tenant_scope(tenant):
        obj = session.execute(
            select(model).where(model.id == object_id)  # type: ignore[attr-defined]
        ).scalar_one_or_none()
    if obj is None:
        raise NotFound("Not found")
    return obj
