"""Provider webhooks: verify, record once, process in the same transaction.

Each event is inserted into ``webhook_events`` with ``ON CONFLICT DO NOTHING`` and then locked, so
concurrent deliveries of one event queue up behind the first; a delivery that finds the event
processed answers 200 and changes nothing. Processing runs in a savepoint: when it raises, its
effects roll back, the event is kept as failed with a sanitized error, and the provider's retry
(or an operator's replay) runs it again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError

from . import booking as booking_service
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
from .tenancy import platform_scope

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
    """The whole of ``POST /webhooks/stripe`` (and of the mock provider's Pay button)."""
    try:
        event = get_provider().construct_event(payload, signature_header or "")
    except InvalidSignature:
        log.warning("webhook refused: invalid or stale signature")
        record_webhook_outcome("rejected")
        return WebhookResult(400, "invalid signature")
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


def _insert_ignoring_duplicate(event_id: str, event_type: str, payload: dict[str, Any]) -> None:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    db.session.execute(
        insert(WebhookEvent)
        .values(
            provider_event_id=event_id,
            type=event_type,
            status=WebhookStatus.PENDING,
            attempts=0,
            payload=payload,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["provider_event_id"])
    )


def _record_and_process(event_id: str, event_type: str, payload: dict[str, Any]) -> WebhookResult:
    session = db.session
    if session.get_bind().dialect.name == "sqlite":
        # SQLite serializes writers; take the write lock now so the date lock inside the
        # handler does not have to end this transaction to get it.
        begin_immediate(session)
    with platform_scope("webhook events are routed to their tenant by their payload"):
        _insert_ignoring_duplicate(event_id, event_type, payload)
        record = session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.provider_event_id == event_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if record.status == WebhookStatus.PROCESSED:
            session.commit()
            record_webhook_outcome("duplicate")
            return WebhookResult(200, "duplicate")
        record.attempts += 1
        try:
            with session.begin_nested():
                tenant_id = _process(event_type, payload)
        except MalformedEvent as error:
            record.status = WebhookStatus.FAILED
            record.last_error = sanitize_error(error, payload)
            session.commit()
            log.warning(
                "webhook event %s (%s) rejected: %s", record.id, event_type, record.last_error
            )
            record_webhook_outcome("rejected")
            return WebhookResult(400, f"rejected: {error}")
        except Exception as error:
            record.status = WebhookStatus.FAILED
            record.last_error = sanitize_error(error, payload)
            record.tenant_id = record.tenant_id or _tenant_id_hint(payload)
            session.commit()
            # The sanitized text only: a traceback could carry the couple's details.
            log.warning(
                "webhook event %s (%s) failed: %s", record.id, event_type, record.last_error
            )
            record_webhook_outcome("failed")
            return WebhookResult(500, "processing failed")
        record.status = WebhookStatus.PROCESSED
        record.processed_at = utcnow()
        record.last_error = None
        record.tenant_id = tenant_id or record.tenant_id
        session.commit()
    record_webhook_outcome("processed")
    return WebhookResult(200, "processed")


def archive_webhook_events(older_than: timedelta = ARCHIVE_AFTER) -> int:
    """Move events older than ``older_than`` into ``webhook_events_archive``. Commits."""
    cutoff = utcnow() - older_than
    archived_at = utcnow()
    with platform_scope("maintenance archives old webhook events of every tenant"):
        old = db.session.scalars(
            select(WebhookEvent).where(WebhookEvent.created_at < cutoff).order_by(WebhookEvent.id)
        ).all()
        for event in old:
            db.session.add(
                WebhookEventArchive(
                    provider_event_id=event.provider_event_id,
                    type=event.type,
                    tenant_id=event.tenant_id,
                    status=str(event.status),
                    attempts=event.attempts,
                    last_error=event.last_error,
                    payload=event.payload,
                    created_at=event.created_at,
                    archived_at=archived_at,
                )
            )
            db.session.delete(event)
        db.session.commit()
    return len(old)


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


def _tenant_and_hold(session_object: dict[str, Any]) -> tuple[Tenant, str] | None:
    """The MAIS tenant and hold a checkout session belongs to; None for a session MAIS did not
    create (another integration on the same Stripe account)."""
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
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise MalformedEvent("metadata.tenant_id names no MAIS tenant")
    return tenant, hold_id


def _checkout_completed(payload: dict[str, Any]) -> int | None:
    session_object = _object(payload)
    owner = _tenant_and_hold(session_object)
    if owner is None:
        return None
    tenant, hold_id = owner
    if session_object.get("payment_status") not in ("paid", "no_payment_required"):
        # Delayed payment methods: the booking waits for async_payment_succeeded.
        return tenant.id
    try:
        booking_service.confirm_paid_hold(
            tenant,
            hold_id,
            checkout_session_id=_text(session_object, "id"),
            payment_intent_id=_text(session_object, "payment_intent"),
        )
    except LookupError:
        raise MalformedEvent("metadata.hold_id names no hold of that tenant") from None
    return tenant.id


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

_EMAIL = re.compile(r"[^\s@'\"<>(),;]+@[^\s@'\"<>(),;]+")
_LONG_NUMBER = re.compile(r"\+?\d[\d ().-]{6,}\d")


def _personal_values(payload: dict[str, Any]) -> list[str]:
    obj = _object(payload)
    details = obj.get("customer_details") or {}
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
    for value in _personal_values(payload):
        message = message.replace(value, "[redacted]")
    message = _EMAIL.sub("[email]", message)
    message = _LONG_NUMBER.sub("[number]", message)
    return f"{type(error).__name__}: {message}"[:500]
