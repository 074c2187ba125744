"""The booking path: availability, hold, checkout, confirm, lost-race refund, expiry, cancellation.

Every decision that can take or free a tenant's date runs under ``locking.lock_date`` and then
reads the current state, so two couples can never both get one date; the partial unique index on
confirmed bookings backs the lock up.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from . import ical, mail, refunds, unit_of_work
from .audit import record_audit
from .cache import AVAILABILITY, invalidate_on_commit
from .catalog import ADDON_IS_OFFERED, ADDON_ORDER, PACKAGE_IS_OFFERED, AddOnView
from .errors import DateUnavailable, DomainError, FormErrors, NotFound
from .extensions import db
from .locking import lock_date
from .metrics import record_booking, record_hold_lost_to_race
from .models import (
    AddOn,
    Blackout,
    Booking,
    BookingAddOn,
    BookingStatus,
    DateHold,
    HoldStatus,
    Package,
    Tenant,
    User,
    package_addons,
)
from .models.base import utcnow
from .models.booking import CONFIRMED_PREDICATE
from .money import checked_fee
from .payments import get_provider
from .tenancy import execute_in_scope, insert_or_skip, scope_tenant_id, tenant_operation
from .tenant_registry import local_today, validate_email_address

log = logging.getLogger(__name__)

REASON_PAST = "past"
REASON_BOOKED = "booked"
REASON_UNAVAILABLE = "unavailable"
REASON_BEYOND_HORIZON = "beyond horizon"
TAKEN_MESSAGE = "This date was just taken."


class TenantNotFound(LookupError):
    """The tenant named by a provider's event does not exist."""


class HoldNotFound(LookupError):
    """The hold named by a provider's event does not exist (in that tenant)."""


# --- Statements of the hot paths -----------------------------------------------------------
# Pay and the payment webhook run prebuilt Core statements: an ORM statement costs several
# times more CPU than the round trip it makes, and these two paths carry the load. Each names
# its tenant as ``scope_tenant_id()``, which ``execute_in_scope`` binds to the current scope
# (and checks, once per statement, that it filters every tenant-owned table and inserts its
# rows with that tenant).

_PACKAGES, _ADDONS, _PACKAGE_ADDONS = Package.__table__, AddOn.__table__, package_addons
_HOLDS, _BOOKINGS, _BOOKING_ADDONS = DateHold.__table__, Booking.__table__, BookingAddOn.__table__
_BLACKOUTS, _USERS, _TENANTS = Blackout.__table__, User.__table__, Tenant.__table__

# The package and its offered add-ons (as the catalog shows them), in one round trip instead
# of a package and a lazy load.
_SELECTION = (
    select(
        _PACKAGES.c.id,
        _PACKAGES.c.price_cents,
        _ADDONS.c.id.label("addon_id"),
        _ADDONS.c.title.label("addon_title"),
        _ADDONS.c.price_cents.label("addon_price_cents"),
    )
    .select_from(
        _PACKAGES.outerjoin(
            _PACKAGE_ADDONS, _PACKAGE_ADDONS.c.package_id == _PACKAGES.c.id
        ).outerjoin(_ADDONS, and_(ADDON_IS_OFFERED, _ADDONS.c.tenant_id == scope_tenant_id()))
    )
    .where(
        _PACKAGES.c.tenant_id == scope_tenant_id(),
        _PACKAGES.c.slug == bindparam("slug"),
        PACKAGE_IS_OFFERED,
    )
    .order_by(*ADDON_ORDER)
)


def _first_on_date(table: Any, *where: Any, column: Any = None) -> Any:
    """A scalar subquery: the first ``column`` of the tenant's rows on ``:on_date``."""
    return (
        select(table.c.id if column is None else column)
        .where(
            table.c.tenant_id == scope_tenant_id(),
            table.c.on_date == bindparam("on_date"),
            *where,
        )
        .limit(1)
        .correlate(None)  # a subquery of its own, even inside a query on the same table
        .scalar_subquery()
    )


# What closes a day besides a blackout, read alike for one day and for a range: a confirmed
# booking, and a hold that is active and not yet expired at ``:now``.
_IS_BOOKED = _BOOKINGS.c.status == BookingStatus.CONFIRMED
_IS_HELD = and_(_HOLDS.c.status == HoldStatus.ACTIVE, _HOLDS.c.expires_at > bindparam("now"))

_BOOKED_ON_DATE = _first_on_date(_BOOKINGS, _IS_BOOKED)

# Every closure of one day, in one round trip: for the day alone, or with the selection under
# the lock (the row ``_status_of_row`` reads).
_CLOSURES = (
    _BOOKED_ON_DATE.label("booking_id"),
    _first_on_date(_BLACKOUTS, column=_BLACKOUTS.c.reason).label("blackout_reason"),
    _first_on_date(_HOLDS, _IS_HELD).label("hold_id"),
)
_DAY_CLOSURES = select(*_CLOSURES)
_SELECTION_AND_DAY = _SELECTION.add_columns(*_CLOSURES)


def _in_range(table: Any, *columns: Any, where: Any = None) -> Any:
    """The tenant's rows from ``:start`` to ``:end``: one query per kind of closure."""
    statement = select(*columns).where(
        table.c.tenant_id == scope_tenant_id(),
        table.c.on_date.between(bindparam("start"), bindparam("end")),
    )
    return statement if where is None else statement.where(where)


_BLACKOUTS_IN_RANGE = _in_range(_BLACKOUTS, _BLACKOUTS.c.on_date, _BLACKOUTS.c.reason)
_BOOKED_IN_RANGE = _in_range(_BOOKINGS, _BOOKINGS.c.on_date, where=_IS_BOOKED)
_HELD_IN_RANGE = _in_range(_HOLDS, _HOLDS.c.on_date, where=_IS_HELD)

_INSERT_HOLD = insert(_HOLDS).values(tenant_id=scope_tenant_id())

_SET_CHECKOUT_SESSION = (
    update(_HOLDS)
    .where(_HOLDS.c.id == bindparam("hold_id"), _HOLDS.c.tenant_id == scope_tenant_id())
    .values(checkout_session_id=bindparam("session_id"), updated_at=bindparam("now"))
)

# Before the lock: the date to lock, and what the booking copies that the lock does not guard
# (the tenant's name, the package's title). No row: no such tenant; no date: no such hold.
_HOLD_BEFORE_LOCK = (
    select(_TENANTS.c.name, _HOLDS.c.on_date, _PACKAGES.c.title)
    .select_from(
        _TENANTS.outerjoin(
            _HOLDS,
            and_(_HOLDS.c.id == bindparam("hold_id"), _HOLDS.c.tenant_id == scope_tenant_id()),
        ).outerjoin(
            _PACKAGES,
            and_(_PACKAGES.c.id == _HOLDS.c.package_id, _PACKAGES.c.tenant_id == scope_tenant_id()),
        )
    )
    .where(_TENANTS.c.id == scope_tenant_id())
)

# Under the lock: the hold as it is now, and whether another booking or active hold has its
# date (a statement of its own, so it sees everything committed before the lock was granted).
_HOLD_UNDER_LOCK = select(
    _HOLDS.c.status,
    _HOLDS.c.on_date,
    _HOLDS.c.package_id,
    _HOLDS.c.addon_lines,
    _HOLDS.c.package_price_cents,
    _HOLDS.c.total_cents,
    _HOLDS.c.commission_percent,
    _HOLDS.c.commission_cents,
    _HOLDS.c.currency,
    _HOLDS.c.couple_name,
    _HOLDS.c.partner_name,
    _HOLDS.c.email,
    _HOLDS.c.phone,
    _HOLDS.c.checkout_session_id,
    _HOLDS.c.payment_intent_id,
    _BOOKED_ON_DATE.label("booked_by"),
    _first_on_date(_HOLDS, _HOLDS.c.id != bindparam("hold_id"), _IS_HELD).label("held_by"),
).where(_HOLDS.c.id == bindparam("hold_id"), _HOLDS.c.tenant_id == scope_tenant_id())


# What a booking keeps of its hold as it was paid for: the date, the couple, the prices.
_KEPT_FROM_HOLD = (
    "on_date",
    "package_id",
    "package_price_cents",
    "couple_name",
    "partner_name",
    "email",
    "phone",
    "total_cents",
    "currency",
    "commission_percent",
    "commission_cents",
)

# The partial unique index on confirmed bookings is the arbiter: a conflict means the date was
# sold meanwhile (the lock should prevent it), and the insert returns no id.
_INSERT_BOOKING = insert_or_skip(
    _BOOKINGS, f"(tenant_id, on_date) WHERE {CONFIRMED_PREDICATE}", returning="id"
)
_INSERT_BOOKING_ADDONS = insert(_BOOKING_ADDONS).values(tenant_id=scope_tenant_id()).inline()

_HOLD_UPDATE = update(_HOLDS).where(
    _HOLDS.c.id == bindparam("hold_id"), _HOLDS.c.tenant_id == scope_tenant_id()
)
_CONVERT_HOLD = _HOLD_UPDATE.values(
    status=HoldStatus.CONVERTED,
    checkout_session_id=bindparam("session_id"),
    payment_intent_id=bindparam("intent_id"),
    updated_at=bindparam("now"),
)
_REFUND_HOLD = _HOLD_UPDATE.values(
    status=HoldStatus.REFUNDED,
    checkout_session_id=bindparam("session_id"),
    payment_intent_id=bindparam("intent_id"),
    is_refund_owed=bindparam("refund_owed"),
    updated_at=bindparam("now"),
)
_RELEASE_HOLD = _HOLD_UPDATE.where(_HOLDS.c.status == HoldStatus.ACTIVE).values(
    status=HoldStatus.RELEASED, updated_at=bindparam("now")
)
_BOOKING_OF_HOLD = select(_BOOKINGS.c.id).where(
    _BOOKINGS.c.hold_id == bindparam("hold_id"), _BOOKINGS.c.tenant_id == scope_tenant_id()
)
_OWNER_EMAILS = (
    select(_USERS.c.email).where(_USERS.c.tenant_id == scope_tenant_id()).order_by(_USERS.c.id)
)


def _autoflush() -> None:
    """Core statements do not autoflush as ORM queries do: write what the caller changed
    first, so that they read it."""
    if db.session.autoflush:
        db.session.flush()


def _expire_loaded(model: type, object_id: Any) -> None:
    """A row changed by a Core statement: make its object, if the session holds one, read
    it again instead of showing the old values."""
    loaded = db.session.identity_map.get(identity_key(model, object_id))
    if loaded is not None:
        db.session.expire(loaded)


# --- Availability ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DayStatus:
    """One day of the month grid."""

    on_date: date
    is_open: bool
    # None when open; else "past", "booked", "unavailable" or "beyond horizon".
    reason: str | None
    note: str | None = None
    # What a couple who tries to take a closed day is told; None when open.
    message: str | None = None


def today(tenant: Tenant | None = None) -> date:
    """The tenant's current day in its time zone (UTC's without a tenant)."""
    return utcnow().date() if tenant is None else local_today(tenant)


def _bookable_window(tenant: Tenant) -> tuple[date, date]:
    """The tenant's first and last bookable days (today, and today plus its horizon)."""
    first_day = today(tenant)
    return first_day, first_day + timedelta(days=tenant.booking_horizon_days)


_PAST_MESSAGE = "That date has passed; choose another."
_BEYOND_HORIZON_MESSAGE = "That date is too far ahead to book yet; choose an earlier one."


def _day_status(
    day: date,
    window: tuple[date, date],
    *,
    booked: bool,
    blackout: str | None,
    held: bool,
    busy: bool,
) -> DayStatus:
    """Whether ``day`` can be booked, why not and what the couple is told: the one rule behind
    the calendar, the API and the check under the date lock. ``blackout`` is the blackout's
    reason ('' when it gave none), None when there is none; ``busy``: the external calendar
    closes the day."""
    first_day, horizon = window
    if day < first_day:
        return DayStatus(day, False, REASON_PAST, message=_PAST_MESSAGE)
    if day > horizon:
        return DayStatus(day, False, REASON_BEYOND_HORIZON, message=_BEYOND_HORIZON_MESSAGE)
    if booked:
        return DayStatus(day, False, REASON_BOOKED, message=TAKEN_MESSAGE)
    if blackout is not None:
        return DayStatus(day, False, REASON_UNAVAILABLE, blackout or None, TAKEN_MESSAGE)
    if held or busy:
        return DayStatus(day, False, REASON_UNAVAILABLE, message=TAKEN_MESSAGE)
    return DayStatus(day, True, None)


def _status_of_row(day: date, window: tuple[date, date], row: Any, busy: set[date]) -> DayStatus:
    """``_day_status`` from a row of ``_CLOSURES``."""
    return _day_status(
        day,
        window,
        booked=row.booking_id is not None,
        blackout=row.blackout_reason,
        held=row.hold_id is not None,
        busy=day in busy,
    )


@tenant_operation
def day_statuses(tenant: Tenant, start: date, end: date) -> list[DayStatus]:
    """The status of every day from ``start`` to ``end`` inclusive: one query per kind of
    closure, whatever the length of the range; one query in all for a single day, none for a
    day outside the bookable window."""
    if end < start:
        return []
    busy = ical.busy_dates(tenant, start, end)
    window = _bookable_window(tenant)
    _autoflush()
    if start == end:
        if not window[0] <= start <= window[1]:
            return [_day_status(start, window, booked=False, blackout=None, held=False, busy=False)]
        row = execute_in_scope(db.session, _DAY_CLOSURES, {"on_date": start, "now": utcnow()})
        return [_status_of_row(start, window, row.one(), busy)]
    span = {"start": start, "end": end}
    blackouts = dict(execute_in_scope(db.session, _BLACKOUTS_IN_RANGE, span).tuples().all())
    booked = set(execute_in_scope(db.session, _BOOKED_IN_RANGE, span).scalars())
    held = set(execute_in_scope(db.session, _HELD_IN_RANGE, {**span, "now": utcnow()}).scalars())
    days = (start + timedelta(days=offset) for offset in range((end - start).days + 1))
    return [
        _day_status(
            day,
            window,
            booked=day in booked,
            blackout=blackouts.get(day),
            held=day in held,
            busy=day in busy,
        )
        for day in days
    ]


@tenant_operation
def next_open_dates(tenant: Tenant, after: date, count: int = 3) -> list[date]:
    """The first ``count`` open dates strictly after ``after`` (fewer near the horizon)."""
    found: list[date] = []
    first_day, horizon = _bookable_window(tenant)
    start = max(after + timedelta(days=1), first_day)
    while len(found) < count and start <= horizon:
        end = min(start + timedelta(days=62), horizon)
        found += [s.on_date for s in day_statuses(tenant, start, end) if s.is_open]
        start = end + timedelta(days=1)
    return found[:count]


# --- The couple and the price ---------------------------------------------------------------


@dataclass(frozen=True)
class CoupleDetails:
    couple_name: str
    partner_name: str
    email: str
    phone: str


def validate_couple(couple_name: str, partner_name: str, email: str, phone: str) -> CoupleDetails:
    """Trimmed, checked details; raises ``FormErrors`` naming every bad field at once."""
    couple_name = (couple_name or "").strip()
    partner_name = (partner_name or "").strip()
    phone = (phone or "").strip()
    errors: dict[str, str] = {}
    if not couple_name:
        errors["couple_name"] = "Enter your name."
    elif len(couple_name) > 200:
        errors["couple_name"] = "Keep your name under 200 characters."
    if len(partner_name) > 200:
        errors["partner_name"] = "Keep your partner's name under 200 characters."
    try:
        email = validate_email_address(email)
    except DomainError as error:
        errors["email"] = error.message
    digits = sum(ch.isdigit() for ch in phone)
    if phone and (
        digits < 7 or len(phone) > 40 or any(ch not in "0123456789+-() ." for ch in phone)
    ):
        errors["phone"] = "Enter a phone number such as +1 555 123 4567."
    if errors:
        raise FormErrors(errors)
    return CoupleDetails(couple_name, partner_name, email, phone)


@dataclass(frozen=True)
class Quote:
    package_price_cents: int
    addon_lines: tuple[AddOnView, ...]
    total_cents: int
    currency: str


@dataclass(frozen=True)
class _Priced:
    package_id: int
    quote: Quote


def _priced_selection(tenant: Tenant, package_slug: str, addon_ids: Iterable[int]) -> _Priced:
    _autoflush()
    rows = execute_in_scope(db.session, _SELECTION, {"slug": package_slug}).all()
    return _price(rows, addon_ids, tenant.currency)


def _price(rows: Sequence[Any], addon_ids: Iterable[int], currency: str) -> _Priced:
    """The selection priced from ``_SELECTION``'s rows (the package once per offered add-on,
    in the catalog's order)."""
    if not rows:
        raise NotFound("That package is not offered.", field="package")
    package = rows[0]
    offered = {row.addon_id: row for row in rows if row.addon_id is not None}
    wanted: set[int] = set()
    for raw in addon_ids:
        try:
            addon_id = int(raw)
        except (TypeError, ValueError):
            raise DomainError("That extra is not available.", field="addons") from None
        if addon_id not in offered:
            raise DomainError("That extra is not available.", field="addons")
        wanted.add(addon_id)
    lines = tuple(
        AddOnView(i, row.addon_title, row.addon_price_cents)
        for i, row in offered.items()
        if i in wanted
    )
    total = package.price_cents + sum(line.price_cents for line in lines)
    return _Priced(package.id, Quote(package.price_cents, lines, total, currency))


@tenant_operation
def quote(tenant: Tenant, package_slug: str, addon_ids: Iterable[int]) -> Quote:
    """The price of a selection, from the catalog; unknown, foreign or inactive add-ons refuse."""
    return _priced_selection(tenant, package_slug, addon_ids).quote


# --- Hold and checkout ----------------------------------------------------------------------


def _require_bookable(tenant: Tenant) -> None:
    if not tenant.is_active:
        raise DomainError(f"{tenant.name} is not taking bookings at the moment.")
    if not tenant.stripe_account_id:
        raise DomainError(
            f"{tenant.name} cannot take online payments yet; please contact them directly."
        )


@tenant_operation
def hold_date(
    tenant: Tenant,
    *,
    package_slug: str,
    addon_ids: Iterable[int],
    on_date: date,
    couple: CoupleDetails,
    return_url: str | None = None,
) -> DateHold:
    """Reserve ``on_date`` for this couple while they pay. The caller commits (Pay: at once,
    before the checkout, with ``unit_of_work.commit_before_network_call``).

    Raises ``DateUnavailable`` (with ``.alternatives``) when the date is closed or was just taken.
    """
    _require_bookable(tenant)
    addon_ids = list(addon_ids)
    tenant_id, percent, currency, hold_minutes = (
        tenant.id,
        tenant.commission_percent,
        tenant.currency,
        current_app.config["MAIS_HOLD_MINUTES"],
    )
    window = _bookable_window(tenant)
    # The external calendar as last synced (never fetched here): read before the lock, which
    # guards only what MAIS itself writes.
    busy = ical.busy_dates(tenant, on_date, on_date)

    _autoflush()
    lock_date(db.session, tenant_id, on_date)
    # The selection and the date's state in one round trip, under the lock.
    rows = execute_in_scope(
        db.session,
        _SELECTION_AND_DAY,
        {"slug": package_slug, "on_date": on_date, "now": utcnow()},
    ).all()
    try:
        priced = _price(rows, addon_ids, currency)
    except DomainError:
        db.session.rollback()  # releases the lock at once
        raise
    quote = priced.quote
    fee = checked_fee(quote.total_cents, percent)
    status = _status_of_row(on_date, window, rows[0], busy)
    if not status.is_open:
        db.session.rollback()
        # The picker offers open dates only: a refusal under the lock is a race lost.
        record_hold_lost_to_race()
        raise _unavailable(tenant, on_date, status.message or TAKEN_MESSAGE)
    now = utcnow()
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "on_date": on_date,
        "package_id": priced.package_id,
        "addon_lines": [
            {"addon_id": line.id, "title": line.title, "price_cents": line.price_cents}
            for line in quote.addon_lines
        ],
        "package_price_cents": quote.package_price_cents,
        "total_cents": quote.total_cents,
        "commission_percent": percent,
        "commission_cents": fee,
        "currency": quote.currency,
        "couple_name": couple.couple_name,
        "partner_name": couple.partner_name,
        "email": couple.email,
        "phone": couple.phone,
        "return_url": return_url,
        "status": HoldStatus.ACTIVE,
        "expires_at": now + timedelta(minutes=hold_minutes),
        "checkout_session_id": None,
        "payment_intent_id": None,
        "refund_id": None,
        "is_refund_owed": False,
        "created_at": now,
        "updated_at": now,
    }
    execute_in_scope(db.session, _INSERT_HOLD, values)
    invalidate_on_commit(db.session, tenant_id, AVAILABILITY)
    # The row as written, handed back as a loaded object of the session (no read back).
    hold = DateHold(tenant_id=tenant_id, **values)
    make_transient_to_detached(hold)
    db.session.add(hold)
    log.info("hold %s created for tenant %s", hold.id, tenant_id)
    return hold


def _unavailable(tenant: Tenant, on_date: date, message: str) -> DateUnavailable:
    error = DateUnavailable(message, field="on_date")
    error.alternatives = next_open_dates(tenant, on_date)  # type: ignore[attr-defined]
    return error


@tenant_operation
def get_hold(tenant: Tenant, hold_id: str) -> DateHold:
    hold = db.session.scalar(select(DateHold).where(DateHold.id == hold_id))
    if hold is None:
        raise NotFound("That reservation was not found.")
    return hold


@tenant_operation
def start_checkout(tenant: Tenant, hold: DateHold, *, success_url: str, cancel_url: str) -> str:
    """Open the provider's payment page for an active hold; returns where to send the top
    window. Calling it again for the same hold reuses the same session (idempotency key).
    The caller commits."""
    if hold.tenant_id != tenant.id:
        raise NotFound("That reservation was not found.")
    if hold.status != HoldStatus.ACTIVE or hold.expires_at <= utcnow():
        raise _unavailable(
            tenant,
            hold.on_date,
            "Your reservation of this date has expired; please choose the date again.",
        )
    session = get_provider().create_checkout_session(
        tenant=tenant, hold=hold, success_url=success_url, cancel_url=cancel_url
    )
    now = utcnow()
    execute_in_scope(
        db.session,
        _SET_CHECKOUT_SESSION,
        {"hold_id": hold.id, "session_id": session.id, "now": now},
    )
    set_committed_value(hold, "checkout_session_id", session.id)
    set_committed_value(hold, "updated_at", now)
    return session.url


@tenant_operation
def find_booking_for_hold(tenant: Tenant, hold_id: str) -> Booking | None:
    return db.session.scalar(select(Booking).where(Booking.hold_id == hold_id))


# --- Confirmation, expiry, lost races (driven by the provider's webhooks) -------------------


def _owner_emails() -> list[str]:
    """The addresses of the current scope's tenant's owners, in a stable order (it numbers
    their notices' dedup keys)."""
    return list(execute_in_scope(db.session, _OWNER_EMAILS).scalars())


def _mail_context(tenant_name: str, record: Any, **extra: Any) -> dict[str, Any]:
    """``record``: a hold or a booking (object or row), which name the couple alike."""
    return {
        "tenant_name": tenant_name,
        "couple_name": record.couple_name,
        "partner_name": record.partner_name,
        "on_date": record.on_date,
        "total_cents": record.total_cents,
        "currency": record.currency,
        **extra,
    }


@tenant_operation
def confirm_paid_hold(
    tenant: Tenant | int,
    hold_id: str,
    *,
    checkout_session_id: str | None,
    payment_intent_id: str | None,
) -> int | None:
    """The provider says the couple paid for ``hold_id``: make the booking and return its id,
    or, when the date was lost meanwhile, owe a refund, apologise and return None. Idempotent;
    the caller commits (and so issues the refund: ``mais.refunds``).

    Raises ``TenantNotFound`` or ``HoldNotFound`` when the tenant or the hold does not exist.
    """
    tenant_id = tenant if isinstance(tenant, int) else tenant.id
    session = db.session
    _autoflush()
    before = execute_in_scope(session, _HOLD_BEFORE_LOCK, {"hold_id": hold_id}).first()
    if before is None:
        raise TenantNotFound(f"tenant {tenant_id} does not exist")
    if before.on_date is None:
        raise HoldNotFound(f"hold {hold_id} does not exist")
    lock_date(session, tenant_id, before.on_date)
    now = utcnow()
    hold = execute_in_scope(
        session, _HOLD_UNDER_LOCK, {"hold_id": hold_id, "on_date": before.on_date, "now": now}
    ).first()
    if hold is None:
        raise HoldNotFound(f"hold {hold_id} does not exist")
    if hold.status == HoldStatus.CONVERTED:
        return execute_in_scope(session, _BOOKING_OF_HOLD, {"hold_id": hold_id}).scalar()
    if hold.status == HoldStatus.REFUNDED:
        return None
    payment = {
        "hold_id": hold_id,
        "session_id": checkout_session_id or hold.checkout_session_id,
        "intent_id": payment_intent_id or hold.payment_intent_id,
        "now": now,
    }
    if hold.booked_by is not None or hold.held_by is not None:
        _refund_lost_hold(tenant_id, before.name, hold, payment)
        return None
    values: dict[str, Any] = {
        **{name: getattr(hold, name) for name in _KEPT_FROM_HOLD},
        "reference": secrets.token_hex(5).upper(),
        "hold_id": hold_id,
        "package_title": before.title or "",
        "status": BookingStatus.CONFIRMED,
        "checkout_session_id": payment["session_id"],
        "payment_intent_id": payment["intent_id"],
        "refund_id": None,
        "is_refund_owed": False,
        "cancelled_at": None,
        "created_at": now,
        "updated_at": now,
    }
    booking_id = execute_in_scope(session, _INSERT_BOOKING, values).scalar()
    if booking_id is None:
        # The unique (tenant, date) index caught what the lock should have: still never sell twice.
        _refund_lost_hold(tenant_id, before.name, hold, payment)
        return None
    if hold.addon_lines:
        execute_in_scope(
            session,
            _INSERT_BOOKING_ADDONS,
            [
                {
                    "booking_id": booking_id,
                    "addon_id": line.get("addon_id"),
                    "title": line["title"],
                    "price_cents": line["price_cents"],
                }
                for line in hold.addon_lines
            ],
        )
    execute_in_scope(session, _CONVERT_HOLD, payment)
    _expire_loaded(DateHold, hold_id)
    invalidate_on_commit(db.session, tenant_id, AVAILABILITY)
    context = _mail_context(
        before.name,
        hold,
        reference=values["reference"],
        package_title=values["package_title"],
        addon_titles=[line["title"] for line in hold.addon_lines],
    )
    mails = [
        mail.Mail(
            "booking_confirmation",
            hold.email,
            f"booking-confirmation:{booking_id}",
            context,
            tenant_id,
        )
    ]
    mails += [
        mail.Mail(
            "booking_notice",
            owner_email,
            f"booking-notice:{booking_id}:{index}",
            context,
            tenant_id,
        )
        for index, owner_email in enumerate(_owner_emails())
    ]
    mail.enqueue_mails(mails)
    record_audit(tenant_id, "booking.confirmed", "booking", booking_id, actor="stripe")
    record_booking()
    log.info("hold %s converted into booking %s", hold_id, booking_id)
    return booking_id


def _refund_lost_hold(tenant_id: int, tenant_name: str, hold: Any, payment: dict[str, Any]) -> None:
    """``hold``: the row read under the lock; ``payment``: the parameters of its update. The
    refund itself is issued after the commit (``mais.refunds``)."""
    hold_id = payment["hold_id"]
    intent_id = payment["intent_id"]
    execute_in_scope(db.session, _REFUND_HOLD, {**payment, "refund_owed": bool(intent_id)})
    if intent_id:
        refunds.owe_refund(refunds.OwedRefund(DateHold, tenant_id, hold_id, intent_id))
    _expire_loaded(DateHold, hold_id)
    invalidate_on_commit(db.session, tenant_id, AVAILABILITY)
    mail.enqueue_mails(
        [
            mail.Mail(
                "lost_race_refund",
                hold.email,
                f"lost-race-refund:{hold_id}",
                _mail_context(tenant_name, hold),
                tenant_id,
            )
        ]
    )
    record_audit(tenant_id, "hold.refunded_after_losing_date", "hold", hold_id, actor="stripe")
    log.warning("hold %s paid after losing its date; refunded", hold_id)


@tenant_operation
def release_hold(tenant: Tenant, hold_id: str) -> bool:
    """The checkout expired or was abandoned: free the date at once. A hold already paid for
    (or released) stays as it is; the status condition makes this one atomic step, so it
    needs no date lock (a confirmation that got there first leaves nothing to release).
    Returns whether it released the hold. The caller commits."""
    released = execute_in_scope(db.session, _RELEASE_HOLD, {"hold_id": hold_id, "now": utcnow()})
    if not released.rowcount:
        return False
    _expire_loaded(DateHold, hold_id)
    invalidate_on_commit(db.session, tenant.id, AVAILABILITY)
    return True


@tenant_operation
def open_checkout_of(tenant: Tenant, hold_id: str) -> str | None:
    """The provider's checkout session of a hold still waiting for its payment, if any."""
    hold = db.session.scalar(select(DateHold).where(DateHold.id == hold_id))
    if hold is None or hold.status != HoldStatus.ACTIVE or not hold.checkout_session_id:
        return None
    return hold.checkout_session_id


@tenant_operation
def abandon_checkout(tenant: Tenant, hold_id: str, session_id: str) -> None:
    """The couple came back from the checkout without paying: close the checkout at the
    provider and free the date at once, instead of blocking it until the hold expires. When the
    provider cannot close it (it was paid meanwhile), its own event decides. Call it with no
    transaction open (``unit_of_work.commit_before_network_call``); the caller commits."""
    if get_provider().expire_checkout_session(session_id=session_id):
        release_hold(tenant, hold_id)


RELEASE_BATCH = 2000


def release_expired_holds(now: datetime | None = None, *, batch_size: int = RELEASE_BATCH) -> int:
    """Mark every expired active hold released (all tenants), ``batch_size`` holds per
    statement and commit, so memory and lock time stay flat however many are due and a run cut
    short resumes where it stopped. Expired holds already block nothing, so no date lock is
    needed; a hold being confirmed right now is locked and skipped. Commits."""
    from .tenancy import platform_scope

    now = now or utcnow()
    released = 0
    with platform_scope("maintenance releases expired holds of every tenant"):
        while True:
            # The ids are read first: a LIMIT inside the UPDATE's own subquery may be run
            # again per row by the planner and then match more than one batch.
            due = db.session.scalars(
                select(DateHold.id)
                .where(DateHold.status == HoldStatus.ACTIVE, DateHold.expires_at <= now)
                .order_by(DateHold.expires_at)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not due:
                return released
            tenant_ids = db.session.scalars(
                update(DateHold)
                .where(DateHold.id.in_(due), DateHold.status == HoldStatus.ACTIVE)
                .values(status=HoldStatus.RELEASED, updated_at=utcnow())
                .returning(DateHold.tenant_id)
                .execution_options(synchronize_session=False)
            ).all()
            for tenant_id in set(tenant_ids):
                invalidate_on_commit(db.session, tenant_id, AVAILABILITY)
            # A job of its own: one batch per transaction, so a run cut short keeps what it did.
            unit_of_work.commit()
            released += len(tenant_ids)
            if len(due) < batch_size:
                return released


# --- Cancellation by the tenant -------------------------------------------------------------


@tenant_operation
def cancel_booking(
    tenant: Tenant, booking_id: int, *, refund: bool, user: User | None = None
) -> Booking:
    """Cancel a confirmed booking, freeing its date, refunding through the provider if asked
    (after the commit: ``mais.refunds``). Calling it again (even concurrently) changes nothing and
    refunds nothing. The caller commits (which issues the refund)."""
    booking = db.session.scalar(select(Booking).where(Booking.id == booking_id))
    if booking is None:
        raise NotFound("That booking was not found.")
    lock_date(db.session, tenant.id, booking.on_date)
    booking = db.session.scalar(
        select(Booking)
        .where(Booking.id == booking_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if booking is None:
        raise NotFound("That booking was not found.")
    if booking.status != BookingStatus.CONFIRMED:
        return booking
    if refund and booking.payment_intent_id:
        booking.status = BookingStatus.REFUNDED
        booking.is_refund_owed = True
        refunds.owe_refund(
            refunds.OwedRefund(Booking, tenant.id, booking.id, booking.payment_intent_id)
        )
    else:
        booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = utcnow()
    mail.enqueue_mails(
        [
            mail.Mail(
                "booking_cancelled",
                booking.email,
                f"booking-cancelled:{booking.id}",
                _mail_context(
                    tenant.name,
                    booking,
                    reference=booking.reference,
                    refunded=booking.is_refund_owed,
                ),
                tenant.id,
            )
        ]
    )
    record_audit(
        tenant,
        "booking.cancelled",
        "booking",
        booking.id,
        user=user,
        details={"refund": bool(refund), "on_date": booking.on_date.isoformat()},
    )
    return booking


@tenant_operation
def mark_booking_refunded(tenant: Tenant, payment_intent_id: str) -> Booking | None:
    """The provider reports a full refund made outside MAIS (e.g. in the Stripe dashboard).
    The caller commits."""
    booking = db.session.scalar(
        select(Booking).where(Booking.payment_intent_id == payment_intent_id)
    )
    if booking is None or booking.status == BookingStatus.REFUNDED:
        return booking
    lock_date(db.session, tenant.id, booking.on_date)
    db.session.refresh(booking)
    if booking.status != BookingStatus.REFUNDED:
        booking.status = BookingStatus.REFUNDED
        booking.cancelled_at = booking.cancelled_at or utcnow()
        record_audit(tenant, "booking.refunded", "booking", booking.id, actor="stripe")
    return booking
