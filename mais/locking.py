"""The date lock: the one place that serializes everything that can take a tenant's date.

PostgreSQL: a transaction-level advisory lock keyed by the two integers (tenant id, the date's
day number), so two hosts racing for the same date queue up while unrelated dates never wait for
each other, and no two dates can share a key. It is released by the commit or rollback that ends
the transaction. Waiting is bounded by ``lock_timeout`` (``MAIS_DATE_LOCK_TIMEOUT_MS``): a stuck
holder makes the others answer "busy, try again" within seconds instead of hanging. Nothing that
waits on another server may run while the lock is held (see ``mais.refunds``).

SQLite has no row or advisory locks; ``BEGIN IMMEDIATE`` takes the database's write lock when the
transaction starts, which serializes every writer (coarser, but correct for one machine).
"""

from __future__ import annotations

from datetime import date

from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session

from .errors import DateUnavailable

DEFAULT_LOCK_TIMEOUT_MS = 5000
# One round trip: the materialized CTE sets the transaction's lock_timeout before the outer
# query can ask for the lock. The setting lasts until the transaction ends, which bounds any
# other lock the same transaction waits for too.
_ADVISORY_LOCK = text(
    "WITH bounded AS MATERIALIZED (SELECT set_config('lock_timeout', :timeout, true)) "
    "SELECT pg_advisory_xact_lock(:tenant_id, :day_number) FROM bounded"
)
_LOCK_NOT_AVAILABLE = "55P03"


class DateBusy(DateUnavailable):
    """Another request held the date's lock for longer than the lock timeout."""

    def __init__(self) -> None:
        super().__init__(
            "Someone else is booking this date at this very moment. Please try again in a "
            "few seconds.",
            field="on_date",
        )


def date_lock_key(tenant_id: int, on_date: date) -> tuple[int, int]:
    """The two 32-bit integers of the lock: the tenant, and the date as its proleptic
    Gregorian day number (about 740,000 today, far inside an int4)."""
    return tenant_id, on_date.toordinal()


def lock_date(session: Session, tenant_id: int, on_date: date) -> None:
    """Hold the (tenant, date) lock until the session's transaction ends, or raise ``DateBusy``
    (with the transaction rolled back) when it cannot be had within the lock timeout.

    On SQLite this must open the transaction, so any transaction already open is committed first:
    call it before reading anything the decision depends on.
    """
    if session.get_bind().dialect.name == "sqlite":
        begin_immediate(session)
        return
    tenant_key, day_key = date_lock_key(tenant_id, on_date)
    timeout = current_app.config.get("MAIS_DATE_LOCK_TIMEOUT_MS", DEFAULT_LOCK_TIMEOUT_MS)
    try:
        # On the session's connection: the ORM's per-statement machinery would cost more than
        # the lock itself, and this statement names no table.
        session.connection().execute(
            _ADVISORY_LOCK,
            {"timeout": f"{int(timeout)}ms", "tenant_id": tenant_key, "day_number": day_key},
        )
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        # The transaction is aborted; ending it here lets the caller answer (and offer other
        # dates) on a usable session.
        session.rollback()
        raise DateBusy() from None


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
