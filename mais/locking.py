"""The date lock: the one place that serializes everything that can take a tenant's date.

PostgreSQL: a transaction-level advisory lock on a stable 64-bit key of (tenant, date), so two
hosts racing for the same date queue up while unrelated dates never wait for each other. It is
released by the commit or rollback that ends the transaction.

SQLite has no row or advisory locks; ``BEGIN IMMEDIATE`` takes the database's write lock when the
transaction starts, which serializes every writer (coarser, but correct for one machine).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def date_lock_key(tenant_id: int, on_date: date) -> int:
    """FNV-1a 64 of ``"{tenant_id}:{iso date}"`` as a signed bigint (what PostgreSQL accepts)."""
    value = _FNV_OFFSET
    for byte in f"{tenant_id}:{on_date.isoformat()}".encode():
        value = ((value ^ byte) * _FNV_PRIME) & _MASK
    return value - (1 << 64) if value >= 1 << 63 else value


def lock_date(session: Session, tenant_id: int, on_date: date) -> None:
    """Hold the (tenant, date) lock until the session's transaction ends.

    On SQLite this must open the transaction, so any transaction already open is committed first:
    call it before reading anything the decision depends on.
    """
    if session.get_bind().dialect.name == "sqlite":
        begin_immediate(session)
        return
    # On the session's connection: the ORM's per-statement machinery would cost more than the
    # lock itself, and this statement names no table.
    session.connection().execute(_ADVISORY_LOCK, {"key": date_lock_key(tenant_id, on_date)})


def begin_immediate(session: Session) -> None:
    """SQLite: make sure the session's transaction holds the database's write lock.

    A transaction already opened with ``BEGIN IMMEDIATE`` is kept (webhook processing opens one
    before its savepoints); any other open transaction is committed and a new one begun.
    """
    if isinstance(session, scoped_session):
        session = session()
    if session.in_transaction() and session.connection().get_execution_options().get(
        "sqlite_begin_immediate"
    ):
        return
    session.commit()
    session.connection(execution_options={"sqlite_begin_immediate": True})
