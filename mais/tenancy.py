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
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy import (
    BinaryExpression,
    BindParameter,
    ColumnClause,
    Delete,
    ForeignKey,
    Insert,
    Result,
    Select,
    Table,
    TextClause,
    Update,
    bindparam,
    event,
    select,
    text,
)
from sqlalchemy.orm import (
    Mapped,
    Mapper,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BooleanClauseList, ClauseElement, Grouping
from sqlalchemy.sql.selectable import Join, ScalarSelect, SelectBase, TextualSelect
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


_owned_tables_cache: dict[Table, type] | None = None


@event.listens_for(Mapper, "after_mapper_constructed")
def _forget_owned_tables(mapper: Mapper[Any], class_: type) -> None:
    # Every statement asks for this map; building it walks all mappers, so it is rebuilt only
    # when a model is mapped.
    global _owned_tables_cache
    _owned_tables_cache = None


def _tenant_owned_tables() -> dict[Table, type]:
    global _owned_tables_cache
    if _owned_tables_cache is None:
        _owned_tables_cache = {
            mapper.local_table: mapper.class_  # type: ignore[misc]
            for mapper in Base.registry.mappers
            if issubclass(mapper.class_, TenantOwned)
        }
    return _owned_tables_cache


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
    if state.is_insert:
        _check_insert(state)
        return
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
    if (
        not state.is_orm_statement
        and isinstance(statement, Update | Delete)
        and statement.table in tables
    ):
        # Loader criteria reach only ORM entities: a Core UPDATE or DELETE of the table itself
        # (update(Package.__table__)) would otherwise write every tenant's rows.
        statement = statement.where(statement.table.c.tenant_id == tenant_id)
    state.statement = statement.options(
        with_loader_criteria(
            TenantOwned,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
            track_closure_variables=True,
        )
    )


# --- Core INSERTs ---------------------------------------------------------------------------
# ``before_flush`` stamps and checks the rows the ORM writes; a Core INSERT (the hot paths write
# with prebuilt statements) never passes through it, so the same rule is checked here, on the
# values the statement will actually send.

_MISSING = object()


def _insert_tenant_ids(state: ORMExecuteState) -> list[Any]:
    """The tenant_id of every row the INSERT writes (``_MISSING`` where it names none)."""
    statement: Insert = state.statement  # type: ignore[assignment]
    if statement.select is not None:
        raise TenantScopeError(
            "INSERT … SELECT into a tenant-owned table cannot be checked; insert values"
        )
    parameters = state.parameters
    parameter_sets = parameters if isinstance(parameters, list) else [parameters or {}]
    rows = statement._multi_values[0] if statement._multi_values else [statement._values or {}]
    found = []
    for row in rows:
        value = next(
            (v for k, v in row.items() if getattr(k, "key", k) == "tenant_id"),
            _MISSING,
        )
        for given in parameter_sets:
            if value is _MISSING:
                found.append(given.get("tenant_id", _MISSING))
            elif isinstance(value, BindParameter):
                found.append(given.get(value.key, value.value))
            elif isinstance(value, ClauseElement):
                # A SQL expression (a subquery, a function) is only known to the database.
                raise TenantScopeError("tenant_id of a Core INSERT must be a plain value")
            else:
                found.append(value)
    return found


def _check_insert(state: ORMExecuteState) -> None:
    table = getattr(state.statement, "table", None)
    owned = _tenant_owned_tables()
    if table is None or table not in owned:
        return
    name = owned[table].__name__
    scope = _current_scope.get()
    if scope is None:
        raise TenantScopeError(f"{name} was inserted outside a tenant scope")
    for tenant_id in _insert_tenant_ids(state):
        if tenant_id is _MISSING or tenant_id is None:
            raise TenantScopeError(f"{name} was inserted without a tenant_id")
        if not scope.is_platform and tenant_id != scope.tenant_id:
            raise TenantScopeError(
                f"{name} of tenant {tenant_id} was inserted in the scope of tenant "
                f"{scope.tenant_id}"
            )


# --- Prebuilt Core statements ---------------------------------------------------------------
# The listener above costs more than a small query itself (it walks the statement and re-derives
# its cache key on every call). The hot paths therefore run statements built once at import
# time, which name their tenant as the bound parameter ``scope_tenant_id()``: each statement is
# checked once to filter every tenant-owned table it reads or writes by that parameter (and to
# insert rows with it), and the parameter is always the current scope's tenant, so it can be
# neither forgotten nor crossed.

# Statements are built once at import, so a few dozen are ever checked; the memo is bounded all
# the same, so that a statement built per call costs a re-check, never unbounded memory.
_CHECKED_MEMO_SIZE = 256
_checked_statements: OrderedDict[int, ClauseElement] = OrderedDict()

# Not "tenant_id": in an UPDATE, a parameter named like a column would also be SET.
SCOPE_TENANT_PARAM = "scope_tenant_id"


def scope_tenant_id() -> BindParameter[Any]:
    """The current scope's tenant in a prebuilt statement (``execute_in_scope`` binds it)."""
    return bindparam(SCOPE_TENANT_PARAM)


def _conjuncts(clause: Any) -> list[Any]:
    """The terms AND-ed together in ``clause``: each one restricts every row the clause
    admits. A term inside an OR, a NOT or a CASE restricts nothing on its own."""
    if clause is None:
        return []
    if isinstance(clause, Grouping):
        return _conjuncts(clause.element)
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        return [term for part in clause.clauses for term in _conjuncts(part)]
    return [clause]


def _tenant_restricted(clause: Any) -> set[Any]:
    """Tables that a conjunct of ``clause`` compares ``tenant_id = scope_tenant_id()``."""
    restricted: set[Any] = set()
    for term in _conjuncts(clause):
        if not (isinstance(term, BinaryExpression) and term.operator is operators.eq):
            continue
        for column, other in ((term.left, term.right), (term.right, term.left)):
            if (
                isinstance(column, ColumnClause)
                and column.name == "tenant_id"
                and isinstance(other, BindParameter)
                and other.key == SCOPE_TENANT_PARAM
            ):
                restricted.add(column.table)
    return restricted


def _join_leaves(from_clause: Any, restricted: set[Any]) -> list[Any]:
    """The tables a FROM item joins, adding to ``restricted`` those its ON clauses restrict:
    an inner join's condition restricts both sides; a left outer join's only the side it
    joins (the left side is kept whole whatever the condition says); a full join's neither."""
    if not isinstance(from_clause, Join):
        return [from_clause]
    left = _join_leaves(from_clause.left, restricted)
    right = _join_leaves(from_clause.right, restricted)
    if from_clause.full:
        kept: set[Any] = set()
    elif from_clause.isouter:
        kept = set(right)
    else:
        kept = set(left) | set(right)
    restricted |= _tenant_restricted(from_clause.onclause) & kept
    return left + right


def _tables_named_in(clause: Any) -> set[Any]:
    """Tables whose columns ``clause`` names outside nested SELECTs (an UPDATE or DELETE that
    names another table reads it as an implicit FROM)."""
    tables: set[Any] = set()
    stack = [clause] if clause is not None else []
    while stack:
        element = stack.pop()
        if isinstance(element, SelectBase | ScalarSelect):
            continue
        if isinstance(element, ColumnClause) and element.table is not None:
            tables.add(element.table)
        stack.extend(element.get_children())
    return tables


_inserts_or_skips: dict[int, TextClause | TextualSelect] = {}


def insert_or_skip(
    table: Table, conflict: str, *, returning: str | None = None
) -> TextClause | TextualSelect:
    """``INSERT … ON CONFLICT <conflict> DO NOTHING [RETURNING <returning>]`` of every column
    of ``table`` but its autoincremented key; parameters are named and typed as the columns.

    Plain SQL because PostgreSQL and SQLite share this syntax, while SQLAlchemy 2.0 compiles
    its dialect-specific insert constructs (which have no cache key) anew on every execution,
    at a cost greater than the round trip. In a tenant-owned table tenant_id is
    ``scope_tenant_id()``: such a statement runs through ``execute_in_scope`` only.
    """
    columns = [column for column in table.columns if column is not table.autoincrement_column]
    owned = table in _tenant_owned_tables()

    def placeholder(name: str) -> str:
        return f":{SCOPE_TENANT_PARAM}" if owned and name == "tenant_id" else f":{name}"

    sql = (
        f"INSERT INTO {table.name} ({', '.join(column.name for column in columns)}) "
        f"VALUES ({', '.join(placeholder(column.name) for column in columns)}) "
        f"ON CONFLICT {conflict} DO NOTHING"
    )
    binds = [bindparam(placeholder(column.name)[1:], type_=column.type) for column in columns]
    statement: TextClause | TextualSelect = text(
        sql + (f" RETURNING {returning}" if returning else "")
    ).bindparams(*binds)
    if returning:
        statement = statement.columns(table.c[returning])  # type: ignore[union-attr]
    _inserts_or_skips[id(statement)] = statement
    return statement


def check_tenant_filtered(statement: ClauseElement) -> None:
    """Raise unless every SELECT, UPDATE and DELETE inside ``statement`` restricts each
    tenant-owned table it reads (no aliases) by ``tenant_id = scope_tenant_id()``: a conjunct
    of its WHERE, or of the condition of a join that restricts that table (see
    ``_join_leaves``); and every INSERT into such a table takes its tenant_id from it. SQL text
    is refused unless ``insert_or_skip`` wrote it."""
    if isinstance(statement, TextClause | TextualSelect):
        if _inserts_or_skips.get(id(statement)) is not statement:
            raise TenantScopeError("SQL text on tenant data must come from insert_or_skip")
        return
    owned = _tenant_owned_tables()
    for element in visitors.iterate(statement):
        if isinstance(element, Insert):
            _check_scoped_insert(element, owned)
            continue
        restricted: set[Any] = set()
        if isinstance(element, Select):
            froms = [
                leaf
                for item in element.get_final_froms()
                for leaf in _join_leaves(item, restricted)
            ]
        elif isinstance(element, Update | Delete):
            froms = [element.table, *(_tables_named_in(element.whereclause) - {element.table})]
        else:
            continue
        restricted |= _tenant_restricted(element.whereclause)
        for from_clause in froms:
            base = getattr(from_clause, "element", None)
            if from_clause not in owned and base is not None and base in owned:
                raise TenantScopeError("prebuilt statements may not alias tenant-owned tables")
            if from_clause in owned and from_clause not in restricted:
                raise TenantScopeError(
                    f"{from_clause.name} is not restricted by tenant_id = scope_tenant_id() in "
                    f"{element}"
                )


def _check_scoped_insert(statement: Insert, owned: dict[Table, type]) -> None:
    """A row of a tenant-owned table takes its tenant_id from the scope, by construction."""
    if statement.table not in owned:
        return
    values = statement._values or {}
    tenant_id = next((v for k, v in values.items() if getattr(k, "key", k) == "tenant_id"), None)
    if statement.select is not None or not (
        isinstance(tenant_id, BindParameter) and tenant_id.key == SCOPE_TENANT_PARAM
    ):
        raise TenantScopeError(
            f"an INSERT into {statement.table.name} takes .values(tenant_id=scope_tenant_id())"
        )


Params = dict[str, Any] | list[dict[str, Any]]


def execute_in_scope(
    session: Session, statement: ClauseElement, params: Params | None = None
) -> Result[Any]:
    """Run a prebuilt Core statement in the current tenant's scope, binding
    ``scope_tenant_id()`` to that tenant (a list of parameter sets runs as an executemany).
    For statements built once (at module level): each is checked on its first use, and
    remembered."""
    scope = _current_scope.get()
    if scope is None or scope.is_platform:
        raise TenantScopeError("A tenant statement ran outside a tenant scope")
    if _checked_statements.get(id(statement)) is statement:
        _checked_statements.move_to_end(id(statement))
    else:
        check_tenant_filtered(statement)
        # Kept alive while remembered, so that its id stays its own.
        _checked_statements[id(statement)] = statement
        if len(_checked_statements) > _CHECKED_MEMO_SIZE:
            _checked_statements.popitem(last=False)
    tenant = {SCOPE_TENANT_PARAM: scope.tenant_id}
    bound: Params
    if params is None:
        bound = tenant
    elif isinstance(params, list):
        bound = [{**row, **tenant} for row in params]
    else:
        bound = {**params, **tenant}  # the scope's tenant last: a caller cannot replace it
    # The session's connection: same transaction, no ORM event (the check above replaces it).
    return session.connection().execute(statement, bound)  # type: ignore[arg-type]


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
