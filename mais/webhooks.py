"""Provider webhooks: verify, record once, process in the same transaction.

Each event is inserted into ``webhook_events`` with ``ON CONFLICT DO NOTHING … RETURNING``: a
fresh event is this transaction's own row, which concurrent deliveries of the same event wait
for; a known one is locked (``FOR UPDATE``), and a delivery that finds it processed answers 200
and changes nothing. The handler runs in that same transaction, and the event is marked
processed when it returns. When it raises, the whole attempt rolls back (its effects, a fresh
event's row) and the failure is recorded in a transaction of its own, with a sanitized error;
the provider's retry (or an operator's replay) runs it again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, literal, select, update
from sqlalchemy.exc import StatementError

from . import booking as booking_service
from . import unit_of_work
from .extensions import db
from .locking import begin_immediate
from .metrics import record_webhook_outcome
from .models import (
    Booking,
    OnboardingState,
    Tenant,
    WebhookEvent,
    WebhookEventArchive,
    WebhookStatus,
)
from .models.base import utcnow
from .payments import InvalidSignature, get_provider
from .personal_data import scrub
from .tenancy import insert_or_skip, platform_scope

log = logging.getLogger(__name__)

_EVENT_TOKEN = re.compile(r"[A-Za-z0-9_.\-]{1,255}")


class MalformedEvent(ValueError):
    """A signed event MAIS cannot act on as sent (wrong shape, unknown tenant or hold): a retry
    would not help, so it is rejected with the reason and kept as failed for operators."""


ARCHIVE_AFTER = timedelta(days=90)


@dataclass(frozen=True)
class WebhookResult:
    status_code: int
    message: str


def receive_webhook(payload: bytes, signature_header: str | None) -> WebhookResult:
    """The whole of ``POST /webhooks/stripe`` (and of the mock provider's Pay button).

    A unit of work of its own, unlike other requests' domain calls: it commits the processed
    event itself, and after a handler error rolls that attempt back and records the failure in a
    second transaction, which one commit at the end of the request could not do. The webhook view
    is therefore marked ``unit_of_work.owns_its_transactions``."""
    try:
        event = get_provider().construct_event(payload, signature_header or "")
    except InvalidSignature:
        log.warning("webhook refused: invalid or stale signature")
        record_webhook_outcome("rejected")
        return WebhookResult(400, "invalid signature")
    if not isinstance(event, dict):
        return WebhookResult(400, "rejected: not an event (an event is a JSON object)")
    event_id, event_type = event.get("id"), event.get("type")
    if not (
        isinstance(event_id, str)
        and _EVENT_TOKEN.fullmatch(event_id)
        and isinstance(event_type, str)
        and _EVENT_TOKEN.fullmatch(event_type)
    ):
        return WebhookResult(400, "rejected: not an event (id and type must be short tokens)")
    return _record_and_process(event_id, event_type, event)


def replay_webhook_event(event_id: int) -> WebhookStatus:
    """Run a stored (failed) event again through the same idempotent processing. Commits."""
    with platform_scope("an operator replays a stored webhook event"):
        record = db.session.get(WebhookEvent, event_id)
        if record is None:
            raise LookupError(f"webhook event {event_id} does not exist")
        provider_event_id, event_type, payload = (
            record.provider_event_id,
            record.type,
            record.payload,
        )
    record_webhook_outcome("replayed")
    _record_and_process(provider_event_id, event_type, payload)
    with platform_scope("reading the replayed event's outcome"):
        return db.session.get(WebhookEvent, event_id).status  # type: ignore[union-attr]


_EVENTS = WebhookEvent.__table__
# A fresh event is inserted already counting its first attempt; RETURNING tells a fresh event
# (ours until we commit: a concurrent delivery of it waits on its key) from a known one.
_INSERT_NEW_EVENT = insert_or_skip(_EVENTS, "(provider_event_id)", returning="id")
# One statement for a fresh event and a known one: a known event's attempt is counted here
# (a fresh one's was counted by its insert), and a tenant already learned is kept.
_MARK_PROCESSED = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("event_id"))
    .values(
        status=WebhookStatus.PROCESSED,
        attempts=_EVENTS.c.attempts + bindparam("more_attempts"),
        last_error=None,
        processed_at=bindparam("now"),
        updated_at=bindparam("now"),
        tenant_id=func.coalesce(bindparam("new_tenant_id"), _EVENTS.c.tenant_id),
    )
)


def _insert_event(
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    *,
    status: WebhookStatus = WebhookStatus.PENDING,
    last_error: str | None = None,
    tenant_id: int | None = None,
) -> int | None:
    """The new row's id, or None when the event is already stored."""
    now = utcnow()
    # On the session's connection: events are a platform table, nothing for the ORM to check.
    return (
        db.session.connection()
        .execute(
            _INSERT_NEW_EVENT,
            {
                "provider_event_id": event_id,
                "type": event_type,
                "status": status,
                "attempts": 1,
                "last_error": last_error,
                "tenant_id": tenant_id,
                "payload": payload,
                "processed_at": None,
                "created_at": now,
                "updated_at": now,
            },
        )
        .scalar()
    )


def _locked_event(event_id: str) -> WebhookEvent:
    return db.session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.provider_event_id == event_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _begin() -> None:
    if db.session.get_bind().dialect.name == "sqlite":
        # SQLite serializes writers; take the write lock now so the date lock inside the
        # handler does not have to end this transaction to get it.
        begin_immediate(db.session)


def _record_and_process(event_id: str, event_type: str, payload: dict[str, Any]) -> WebhookResult:
    session = db.session
    _begin()
    with platform_scope("webhook events are routed to their tenant by their payload"):
        new_id = _insert_event(event_id, event_type, payload)
        record = None
        if new_id is None:
            # Known already: wait for any delivery processing it, then look at its outcome.
            record = _locked_event(event_id)
            if record.status == WebhookStatus.PROCESSED:
                unit_of_work.commit()
                record_webhook_outcome("duplicate")
                return WebhookResult(200, "duplicate")
        try:
            tenant_id = _process(event_type, payload)
            session.flush()
        except Exception as error:
            # Nothing of the attempt stays (the handler's effects, a fresh event's row); the
            # failure is recorded on its own.
            session.rollback()
            return _record_failure(event_id, event_type, payload, error)
        session.connection().execute(
            _MARK_PROCESSED,
            {
                "event_id": new_id if record is None else record.id,
                "more_attempts": 0 if record is None else 1,
                "now": utcnow(),
                "new_tenant_id": tenant_id,
            },
        )
        # Then the provider calls the handler decided on (a refund), with no lock held.
        unit_of_work.commit()
    record_webhook_outcome("processed")
    return WebhookResult(200, "processed")


def _record_failure(
    event_id: str, event_type: str, payload: dict[str, Any], error: Exception
) -> WebhookResult:
    """Keep the event as failed, with a sanitized error, in a transaction of its own."""
    last_error = sanitize_error(error, payload)
    malformed = isinstance(error, MalformedEvent)
    _begin()
    with platform_scope("a failed webhook event is recorded for operators and retries"):
        tenant_hint = None if malformed else _tenant_id_hint(payload)
        new_id = _insert_event(
            event_id,
            event_type,
            payload,
            status=WebhookStatus.FAILED,
            last_error=last_error,
            tenant_id=tenant_hint,
        )
        if new_id is None:
            record = _locked_event(event_id)
            # A concurrent delivery may have processed it since this one rolled back.
            if record.status != WebhookStatus.PROCESSED:
                record.attempts += 1
                record.status = WebhookStatus.FAILED
                record.last_error = last_error
                record.tenant_id = record.tenant_id or tenant_hint
            new_id = record.id
        unit_of_work.commit()
    if malformed:
        log.warning("webhook event %s (%s) rejected: %s", new_id, event_type, last_error)
        record_webhook_outcome("rejected")
        return WebhookResult(400, f"rejected: {error}")
    # The sanitized text only: a traceback could carry the couple's details.
    log.warning("webhook event %s (%s) failed: %s", new_id, event_type, last_error)
    record_webhook_outcome("failed")
    return WebhookResult(500, "processing failed")


ARCHIVE_BATCH = 2000
_ARCHIVED_COLUMNS = (
    "provider_event_id",
    "type",
    "tenant_id",
    "status",
    "attempts",
    "last_error",
    "payload",
    "created_at",
)


def archive_webhook_events(
    older_than: timedelta = ARCHIVE_AFTER, *, batch_size: int = ARCHIVE_BATCH
) -> int:
    """Move events older than ``older_than`` into ``webhook_events_archive``, oldest first,
    ``batch_size`` per transaction: copied and deleted by one statement each, in the database,
    so memory stays flat and no transaction grows with the backlog; a run cut short resumes
    where it stopped (each committed batch is moved whole). An event a delivery or a replay
    holds right now is skipped until the next run. Commits."""
    cutoff = utcnow() - older_than
    moved = 0
    with platform_scope("maintenance archives old webhook events of every tenant"):
        while True:
            ids = db.session.scalars(
                select(WebhookEvent.id)
                .where(WebhookEvent.created_at < cutoff)
                .order_by(WebhookEvent.created_at, WebhookEvent.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not ids:
                return moved
            columns = [getattr(WebhookEvent, name) for name in _ARCHIVED_COLUMNS]
            archived_at = literal(utcnow(), WebhookEventArchive.archived_at.type)
            db.session.execute(
                insert(WebhookEventArchive).from_select(
                    [*_ARCHIVED_COLUMNS, "archived_at"],
                    select(*columns, archived_at).where(WebhookEvent.id.in_(ids)),
                )
            )
            db.session.execute(
                delete(WebhookEvent)
                .where(WebhookEvent.id.in_(ids))
                .execution_options(synchronize_session=False)
            )
            # A job of its own: one batch per transaction, so a run cut short keeps what it moved.
            unit_of_work.commit()
            moved += len(ids)
            if len(ids) < batch_size:
                return moved


# --- Handlers: each returns the tenant id the event concerned, when there is one -------------


def _object(payload: dict[str, Any]) -> dict[str, Any]:
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise MalformedEvent("data.object is missing or not an object")
    return obj


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedEvent(f"{key} must be a string")
    return value


def _whole_number(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedEvent(f"{key} must be a whole number of cents")
    return value


def _tenant_id_hint(payload: dict[str, Any]) -> int | None:
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    raw = metadata.get("tenant_id") if isinstance(metadata, dict) else None
    try:
        tenant = db.session.get(Tenant, int(raw)) if raw is not None else None
    except (TypeError, ValueError, OverflowError):
        return None
    return tenant.id if tenant else None


_NO_TENANT = "metadata.tenant_id names no MAIS tenant"


def _checkout_owner(session_object: dict[str, Any]) -> tuple[int, str] | None:
    """The MAIS tenant id and hold id a checkout session names; None for a session MAIS did
    not create (another integration on the same Stripe account)."""
    metadata = session_object.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise MalformedEvent("metadata must be an object")
    raw_tenant = metadata.get("tenant_id")
    hold_id = metadata.get("hold_id") or session_object.get("client_reference_id")
    if raw_tenant is None and hold_id is None:
        return None
    try:
        tenant_id = int(raw_tenant)
        if not 0 < tenant_id < 2**31:
            raise ValueError
    except (TypeError, ValueError):
        raise MalformedEvent("metadata.tenant_id is not a MAIS tenant id") from None
    if not isinstance(hold_id, str) or not _EVENT_TOKEN.fullmatch(hold_id):
        raise MalformedEvent("metadata.hold_id is not a MAIS hold id")
    return tenant_id, hold_id


def _tenant_and_hold(session_object: dict[str, Any]) -> tuple[Tenant, str] | None:
    """``_checkout_owner`` with the tenant loaded."""
    owner = _checkout_owner(session_object)
    if owner is None:
        return None
    tenant = db.session.get(Tenant, owner[0])
    if tenant is None:
        raise MalformedEvent(_NO_TENANT)
    return tenant, owner[1]


def _checkout_completed(payload: dict[str, Any]) -> int | None:
    session_object = _object(payload)
    if session_object.get("payment_status") not in ("paid", "no_payment_required"):
        # Delayed payment methods: the booking waits for async_payment_succeeded.
        owner = _tenant_and_hold(session_object)
        return owner[0].id if owner else None
    ids = _checkout_owner(session_object)
    if ids is None:
        return None
    tenant_id, hold_id = ids
    try:
        # By id: the booking path reads the tenant with the hold, in the same query.
        booking_service.confirm_paid_hold(
            tenant_id,
            hold_id,
            checkout_session_id=_text(session_object, "id"),
            payment_intent_id=_text(session_object, "payment_intent"),
        )
    except booking_service.TenantNotFound:
        raise MalformedEvent(_NO_TENANT) from None
    except booking_service.HoldNotFound:
        # Not any LookupError: a KeyError of a bug must fail (and be retried), not be rejected.
        raise MalformedEvent("metadata.hold_id names no hold of that tenant") from None
    return tenant_id


def _checkout_expired(payload: dict[str, Any]) -> int | None:
    owner = _tenant_and_hold(_object(payload))
    if owner is None:
        return None
    tenant, hold_id = owner
    booking_service.release_hold(tenant, hold_id)
    return tenant.id


def _charge_refunded(payload: dict[str, Any]) -> int | None:
    charge = _object(payload)
    payment_intent_id = _text(charge, "payment_intent")
    refunded, amount = _whole_number(charge, "amount_refunded"), _whole_number(charge, "amount")
    if not payment_intent_id or refunded < amount:
        return None  # a partial refund leaves the booking as it is
    booking = db.session.scalar(
        select(Booking).where(Booking.payment_intent_id == payment_intent_id)
    )
    if booking is None:
        return None
    tenant = db.session.get(Tenant, booking.tenant_id)
    booking_service.mark_booking_refunded(tenant, payment_intent_id)
    return booking.tenant_id


def _account_updated(payload: dict[str, Any]) -> int | None:
    account = _object(payload)
    account_id = _text(account, "id")
    if not account_id:
        raise MalformedEvent("the account has no id")
    tenant = db.session.scalar(select(Tenant).where(Tenant.stripe_account_id == account_id))
    if tenant is None:
        return None
    if account.get("charges_enabled") is True:
        tenant.onboarding_state = OnboardingState.COMPLETE
    else:
        tenant.onboarding_state = OnboardingState.PENDING
    return tenant.id


HANDLERS: dict[str, Callable[[dict[str, Any]], int | None]] = {
    "checkout.session.completed": _checkout_completed,
    "checkout.session.async_payment_succeeded": _checkout_completed,
    "checkout.session.expired": _checkout_expired,
    "checkout.session.async_payment_failed": _checkout_expired,
    "charge.refunded": _charge_refunded,
    "account.updated": _account_updated,
}


def _process(event_type: str, payload: dict[str, Any]) -> int | None:
    handler = HANDLERS.get(event_type)
    return handler(payload) if handler else None


# --- Errors without personal data -----------------------------------------------------------


def _personal_values(payload: dict[str, Any]) -> list[str]:
    # Whatever the payload's shape: it is read while recording why the event was refused.
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return []
    details = obj.get("customer_details")
    details = details if isinstance(details, dict) else {}
    values = [details.get("name"), details.get("email"), details.get("phone")]
    values += [obj.get("customer_email"), obj.get("name"), obj.get("email")]
    return [v for v in values if isinstance(v, str) and v.strip()]


def sanitize_error(error: BaseException, payload: dict[str, Any]) -> str:
    """The exception's class and a message stripped of emails, phone numbers and names.

    Database errors keep only the driver's first line: their full text repeats the statement's
    parameters, which include the couple's details.
    """
    if isinstance(error, StatementError) and error.orig is not None:
        message = f"{type(error.orig).__name__}: {str(error.orig).splitlines()[0]}"
    else:
        message = str(error)
    return f"{type(error).__name__}: {scrub(message, *_personal_values(payload))}"[:500]
