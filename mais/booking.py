"""The booking path: availability, hold, checkout, confirm, lost-race refund, expiry, cancellation.

Every decision that can take or free a tenant's date runs under ``locking.lock_date`` and then
reads the current state, so two couples can never both get one date; the partial unique index on
confirmed bookings backs the lock up.
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import mail
from .audit import record_audit
from .catalog import AddOnView
from .errors import DateUnavailable, DomainError, FormErrors, NotFound
from .extensions import db
from .locking import lock_date
from .metrics import record_booking, record_hold_lost_to_race
from .models import (
    Blackout,
    Booking,
    BookingAddOn,
    BookingStatus,
    DateHold,
    HoldStatus,
    Package,
    Tenant,
    User,
)
from .models.base import utcnow
from .money import checked_fee
from .tenancy import tenant_operation

log = logging.getLogger(__name__)

REASON_PAST = "past"
REASON_BOOKED = "booked"
REASON_UNAVAILABLE = "unavailable"
REASON_BEYOND_HORIZON = "beyond horizon"
TAKEN_MESSAGE = "This date was just taken."


# --- Availability ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DayStatus:
    """One day of the month grid."""

    on_date: date
    is_open: bool
    # None when open; else "past", "booked", "unavailable" or "beyond horizon".
    reason: str | None
    note: str | None = None


def today() -> date:
    return utcnow().date()


def _external_busy_dates(tenant: Tenant, start: date, end: date) -> set[date]:
    """Busy days of the tenant's iCal feed, once the portal's importer exists."""
    if importlib.util.find_spec("mais.ical") is None:
        return set()
    from . import ical  # type: ignore[attr-defined]

    return set(ical.busy_dates(tenant, start, end))


@tenant_operation
def day_statuses(tenant: Tenant, start: date, end: date) -> list[DayStatus]:
    """The status of every day from ``start`` to ``end`` inclusive: one query per kind of
    closure, whatever the length of the range."""
    return _statuses(tenant, start, end, _external_busy_dates(tenant, start, end))


def _statuses(tenant: Tenant, start: date, end: date, busy: set[date]) -> list[DayStatus]:
    if end < start:
        return []
    first_day, horizon = today(), today() + timedelta(days=tenant.booking_horizon_days)
    blackouts = {
        row.on_date: row.reason
        for row in db.session.execute(
            select(Blackout.on_date, Blackout.reason).where(Blackout.on_date.between(start, end))
        )
    }
    booked = set(
        db.session.scalars(
            select(Booking.on_date).where(
                Booking.on_date.between(start, end), Booking.status == BookingStatus.CONFIRMED
            )
        )
    )
    held = set(
        db.session.scalars(
            select(DateHold.on_date).where(
                DateHold.on_date.between(start, end),
                DateHold.status == HoldStatus.ACTIVE,
                DateHold.expires_at > utcnow(),
            )
        )
    )
    statuses = []
    day = start
    while day <= end:
        if day < first_day:
            status = DayStatus(day, False, REASON_PAST)
        elif day > horizon:
            status = DayStatus(day, False, REASON_BEYOND_HORIZON)
        elif day in booked:
            status = DayStatus(day, False, REASON_BOOKED)
        elif day in blackouts:
            status = DayStatus(day, False, REASON_UNAVAILABLE, blackouts[day] or None)
        elif day in held or day in busy:
            status = DayStatus(day, False, REASON_UNAVAILABLE)
        else:
            status = DayStatus(day, True, None)
        statuses.append(status)
        day += timedelta(days=1)
    return statuses


@tenant_operation
def next_open_dates(tenant: Tenant, after: date, count: int = 3) -> list[date]:
    """The first ``count`` open dates strictly after ``after`` (fewer near the horizon)."""
    found: list[date] = []
    start = max(after + timedelta(days=1), today())
    horizon = today() + timedelta(days=tenant.booking_horizon_days)
    while len(found) < count and start <= horizon:
        end = min(start + timedelta(days=62), horizon)
        found += [s.on_date for s in day_statuses(tenant, start, end) if s.is_open]
        start = end + timedelta(days=1)
    return found[:count]


def _closed_message(status: DayStatus) -> str:
    if status.reason == REASON_PAST:
        return "That date has passed; choose another."
    if status.reason == REASON_BEYOND_HORIZON:
        return "That date is too far ahead to book yet; choose an earlier one."
    return TAKEN_MESSAGE


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
        email = validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        errors["email"] = "Enter an email address such as name@example.com."
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


def _priced_selection(tenant: Tenant, package_slug: str, addon_ids: Iterable[int]):  # noqa: ANN202
    package = db.session.scalar(
        select(Package).where(Package.slug == package_slug, Package.is_active.is_(True))
    )
    if package is None:
        raise NotFound("That package is not offered.", field="package")
    offered = {addon.id: addon for addon in package.addons if addon.is_active}
    wanted: list[int] = []
    for raw in addon_ids:
        try:
            addon_id = int(raw)
        except (TypeError, ValueError):
            raise DomainError("That extra is not available.", field="addons") from None
        if addon_id not in offered:
            raise DomainError("That extra is not available.", field="addons")
        if addon_id not in wanted:
            wanted.append(addon_id)
    lines = tuple(
        AddOnView(offered[i].id, offered[i].title, offered[i].price_cents)
        for i in sorted(wanted, key=lambda i: (offered[i].sort_order, i))
    )
    total = package.price_cents + sum(line.price_cents for line in lines)
    return package, Quote(package.price_cents, lines, total, tenant.currency)


@tenant_operation
def quote(tenant: Tenant, package_slug: str, addon_ids: Iterable[int]) -> Quote:
    """The price of a selection, from the catalog; unknown, foreign or inactive add-ons refuse."""
    return _priced_selection(tenant, package_slug, addon_ids)[1]


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
    """Reserve ``on_date`` for this couple while they pay. Commits.

    Raises ``DateUnavailable`` (with ``.alternatives``) when the date is closed or was just taken.
    """
    return _hold(
        tenant,
        package_slug=package_slug,
        addon_ids=addon_ids,
        on_date=on_date,
        couple=couple,
        return_url=return_url,
    )


def _hold(
    tenant: Tenant,
    *,
    package_slug: str,
    addon_ids: Iterable[int],
    on_date: date,
    couple: CoupleDetails,
    return_url: str | None = None,
    use_lock: bool = True,
) -> DateHold:
    """``hold_date``; ``use_lock=False`` exists only for the benchmark of the lock's cost."""
    _require_bookable(tenant)
    package, priced = _priced_selection(tenant, package_slug, list(addon_ids))
    fee = checked_fee(priced.total_cents, tenant.commission_percent)
    tenant_id, percent, hold_minutes = (
        tenant.id,
        tenant.commission_percent,
        current_app.config["MAIS_HOLD_MINUTES"],
    )
    package_id = package.id
    # Read the external calendar before locking: it may have to be fetched over the network.
    busy = _external_busy_dates(tenant, on_date, on_date)

    if use_lock:
        lock_date(db.session, tenant_id, on_date)
    status = _statuses(tenant, on_date, on_date, busy)[0]
    if not status.is_open:
        db.session.rollback()
        # The picker offers open dates only: a refusal under the lock is a race lost.
        record_hold_lost_to_race()
        raise _unavailable(tenant, on_date, _closed_message(status))
    hold = DateHold(
        tenant_id=tenant_id,
        on_date=on_date,
        package_id=package_id,
        addon_lines=[
            {"addon_id": line.id, "title": line.title, "price_cents": line.price_cents}
            for line in priced.addon_lines
        ],
        package_price_cents=priced.package_price_cents,
        total_cents=priced.total_cents,
        commission_percent=percent,
        commission_cents=fee,
        currency=priced.currency,
        couple_name=couple.couple_name,
        partner_name=couple.partner_name,
        email=couple.email,
        phone=couple.phone,
        return_url=return_url,
        status=HoldStatus.ACTIVE,
        expires_at=utcnow() + timedelta(minutes=hold_minutes),
    )
    db.session.add(hold)
    db.session.commit()
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
    window. Calling it again for the same hold reuses the same session (idempotency key)."""
    from .payments import get_provider

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
    hold.checkout_session_id = session.id
    db.session.commit()
    return session.url


@tenant_operation
def find_booking_for_hold(tenant: Tenant, hold_id: str) -> Booking | None:
    return db.session.scalar(select(Booking).where(Booking.hold_id == hold_id))


# --- Confirmation, expiry, lost races (driven by the provider's webhooks) -------------------


def _owner_emails(tenant: Tenant) -> list[str]:
    return list(
        db.session.scalars(select(User.email).where(User.tenant_id == tenant.id).order_by(User.id))
    )


def _locked_hold(tenant: Tenant, hold_id: str) -> DateHold | None:
    """The hold, re-read after taking its date's lock so that its state is current."""
    on_date = db.session.scalar(select(DateHold.on_date).where(DateHold.id == hold_id))
    if on_date is None:
        return None
    lock_date(db.session, tenant.id, on_date)
    return db.session.scalar(
        select(DateHold).where(DateHold.id == hold_id).execution_options(populate_existing=True)
    )


def _date_taken_by_other(hold: DateHold) -> bool:
    if db.session.scalar(
        select(Booking.id).where(
            Booking.on_date == hold.on_date, Booking.status == BookingStatus.CONFIRMED
        )
    ):
        return True
    return bool(
        db.session.scalar(
            select(DateHold.id).where(
                DateHold.on_date == hold.on_date,
                DateHold.id != hold.id,
                DateHold.status == HoldStatus.ACTIVE,
                DateHold.expires_at > utcnow(),
            )
        )
    )


def _mail_context(tenant: Tenant, record: DateHold | Booking, **extra: Any) -> dict[str, Any]:
    return {
        "tenant_name": tenant.name,
        "couple_name": record.couple_name,
        "partner_name": record.partner_name,
        "on_date": record.on_date,
        "total_cents": record.total_cents,
        "currency": record.currency,
        **extra,
    }


@tenant_operation
def confirm_paid_hold(
    tenant: Tenant,
    hold_id: str,
    *,
    checkout_session_id: str | None,
    payment_intent_id: str | None,
) -> Booking | None:
    """The provider says the couple paid for ``hold_id``: make the booking, or, when the date
    was lost meanwhile, refund once and apologise. Idempotent; the caller commits."""
    return _confirm(
        tenant,
        hold_id,
        checkout_session_id=checkout_session_id,
        payment_intent_id=payment_intent_id,
    )


def _confirm(
    tenant: Tenant,
    hold_id: str,
    *,
    checkout_session_id: str | None,
    payment_intent_id: str | None,
    use_lock: bool = True,
) -> Booking | None:
    """``confirm_paid_hold``; ``use_lock=False`` exists only for the benchmark."""
    if use_lock:
        hold = _locked_hold(tenant, hold_id)
    else:
        hold = db.session.scalar(select(DateHold).where(DateHold.id == hold_id))
    if hold is None:
        raise LookupError(f"hold {hold_id} does not exist")
    if hold.status == HoldStatus.CONVERTED:
        return find_booking_for_hold(tenant, hold.id)
    if hold.status == HoldStatus.REFUNDED:
        return None
    hold.payment_intent_id = payment_intent_id or hold.payment_intent_id
    hold.checkout_session_id = checkout_session_id or hold.checkout_session_id

    if _date_taken_by_other(hold):
        _refund_lost_hold(tenant, hold)
        return None
    try:
        with db.session.begin_nested():
            booking = _booking_from_hold(hold)
            db.session.add(booking)
            db.session.flush()
    except IntegrityError:
        # The unique (tenant, date) index caught what the lock should have: still never sell twice.
        _refund_lost_hold(tenant, hold)
        return None
    hold.status = HoldStatus.CONVERTED
    context = _mail_context(tenant, booking, reference=booking.reference)
    context["package_title"] = booking.package_title
    context["addon_titles"] = [line["title"] for line in hold.addon_lines]
    mail.enqueue_mail(
        template="booking_confirmation",
        to=booking.email,
        dedup_key=f"booking-confirmation:{booking.id}",
        context=context,
        tenant_id=tenant.id,
    )
    for index, owner_email in enumerate(_owner_emails(tenant)):
        mail.enqueue_mail(
            template="booking_notice",
            to=owner_email,
            dedup_key=f"booking-notice:{booking.id}:{index}",
            context=context,
            tenant_id=tenant.id,
        )
    record_audit(tenant, "booking.confirmed", "booking", booking.id, actor="stripe")
    record_booking()
    log.info("hold %s converted into booking %s", hold.id, booking.id)
    return booking


def _booking_from_hold(hold: DateHold) -> Booking:
    package = db.session.get(Package, hold.package_id)
    booking = Booking(
        tenant_id=hold.tenant_id,
        reference=secrets.token_hex(5).upper(),
        hold_id=hold.id,
        on_date=hold.on_date,
        package_id=hold.package_id,
        package_title=package.title if package else "",
        package_price_cents=hold.package_price_cents,
        couple_name=hold.couple_name,
        partner_name=hold.partner_name,
        email=hold.email,
        phone=hold.phone,
        total_cents=hold.total_cents,
        currency=hold.currency,
        commission_percent=hold.commission_percent,
        commission_cents=hold.commission_cents,
        status=BookingStatus.CONFIRMED,
        checkout_session_id=hold.checkout_session_id,
        payment_intent_id=hold.payment_intent_id,
    )
    booking.addons = [
        BookingAddOn(
            tenant_id=hold.tenant_id,
            addon_id=line.get("addon_id"),
            title=line["title"],
            price_cents=line["price_cents"],
        )
        for line in hold.addon_lines
    ]
    return booking


def _refund_lost_hold(tenant: Tenant, hold: DateHold) -> None:
    from .payments import get_provider

    if hold.payment_intent_id:
        hold.refund_id = get_provider().refund(
            payment_intent_id=hold.payment_intent_id, idempotency_key=f"lost-hold-{hold.id}"
        )
    hold.status = HoldStatus.REFUNDED
    mail.enqueue_mail(
        template="lost_race_refund",
        to=hold.email,
        dedup_key=f"lost-race-refund:{hold.id}",
        context=_mail_context(tenant, hold),
        tenant_id=tenant.id,
    )
    record_audit(tenant, "hold.refunded_after_losing_date", "hold", hold.id, actor="stripe")
    log.warning("hold %s paid after losing its date; refunded", hold.id)


@tenant_operation
def release_hold(tenant: Tenant, hold_id: str) -> DateHold | None:
    """The checkout expired or was abandoned; a hold already paid for stays as it is.
    The caller commits."""
    hold = _locked_hold(tenant, hold_id)
    if hold is not None and hold.status == HoldStatus.ACTIVE:
        hold.status = HoldStatus.RELEASED
    return hold


@tenant_operation
def abandon_checkout(tenant: Tenant, hold_id: str) -> None:
    """The couple came back from the checkout without paying: close the checkout at the
    provider and free the date at once, instead of blocking it until the hold expires. When the
    provider cannot close it (it was paid meanwhile), its own event decides. Commits."""
    from .payments import get_provider

    hold = db.session.scalar(select(DateHold).where(DateHold.id == hold_id))
    if hold is None or hold.status != HoldStatus.ACTIVE or not hold.checkout_session_id:
        return
    session_id = hold.checkout_session_id
    db.session.commit()  # no transaction held open across the provider's answer
    if get_provider().expire_checkout_session(session_id=session_id):
        release_hold(tenant, hold_id)
        db.session.commit()


def release_expired_holds(now: datetime | None = None) -> int:
    """Mark every expired active hold released (all tenants); expired holds already block
    nothing, so no date lock is needed. Commits."""
    from .tenancy import platform_scope

    with platform_scope("maintenance releases expired holds of every tenant"):
        holds = db.session.scalars(
            select(DateHold).where(
                DateHold.status == HoldStatus.ACTIVE, DateHold.expires_at <= (now or utcnow())
            )
        ).all()
        for hold in holds:
            hold.status = HoldStatus.RELEASED
        db.session.commit()
    return len(holds)


# --- Cancellation by the tenant -------------------------------------------------------------


@tenant_operation
def cancel_booking(
    tenant: Tenant, booking_id: int, *, refund: bool, user: User | None = None
) -> Booking:
    """Cancel a confirmed booking, freeing its date, refunding through the provider if asked.
    Calling it again (even concurrently) changes nothing and refunds nothing. Commits."""
    from .payments import get_provider

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
        db.session.commit()
        return booking
    if refund and booking.payment_intent_id:
        booking.refund_id = get_provider().refund(
            payment_intent_id=booking.payment_intent_id,
            idempotency_key=f"cancel-booking-{booking.id}",
        )
        booking.status = BookingStatus.REFUNDED
    else:
        booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = utcnow()
    mail.enqueue_mail(
        template="booking_cancelled",
        to=booking.email,
        dedup_key=f"booking-cancelled:{booking.id}",
        context=_mail_context(
            tenant, booking, reference=booking.reference, refunded=booking.refund_id is not None
        ),
        tenant_id=tenant.id,
    )
    record_audit(
        tenant,
        "booking.cancelled",
        "booking",
        booking.id,
        user=user,
        details={"refund": bool(refund), "on_date": booking.on_date.isoformat()},
    )
    db.session.commit()
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
