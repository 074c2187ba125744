"""What platform operators do: find and create tenants, set their commission, switch them on
and off, read their figures, replay failed webhooks and retry failed mail.

Listings cross tenants, so they run in a ``platform_scope`` that says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, or_, select

from .audit import record_audit
from .errors import DomainError, NotFound
from .extensions import db
from .models import (
    Booking,
    BookingStatus,
    OutboxMessage,
    OutboxStatus,
    Tenant,
    User,
    WebhookEvent,
    WebhookStatus,
)
from .models.base import utcnow
from .tenancy import platform_scope, tenant_scope
from .tenant_registry import IssuedKeys, create_tenant, validate_commission_percent
from .webhooks import replay_webhook_event

LISTING_LIMIT = 200


@dataclass(frozen=True)
class TenantFigures:
    bookings: int
    revenue_cents: int
    commission_cents: int


@dataclass(frozen=True)
class TenantRow:
    tenant: Tenant
    figures: TenantFigures


def _audit(tenant: Tenant, action: str, admin: User, details: dict[str, str] | None = None) -> None:
    # Flushed inside the tenant's scope: the audit row is tenant-owned, the request is not.
    with tenant_scope(tenant):
        record_audit(tenant, action, "tenant", tenant.id, user=admin, details=details)
        db.session.flush()


def _figures_by_tenant(tenant_ids: list[int]) -> dict[int, TenantFigures]:
    if not tenant_ids:
        return {}
    with platform_scope("admin: booking figures per tenant"):
        rows = db.session.execute(
            select(
                Booking.tenant_id,
                func.count(Booking.id),
                func.coalesce(func.sum(Booking.total_cents), 0),
                func.coalesce(func.sum(Booking.commission_cents), 0),
            )
            .where(Booking.tenant_id.in_(tenant_ids), Booking.status == BookingStatus.CONFIRMED)
            .group_by(Booking.tenant_id)
        ).all()
    return {
        tenant_id: TenantFigures(int(count), int(revenue), int(commission))
        for tenant_id, count, revenue, commission in rows
    }


def search_tenants(query: str = "") -> list[TenantRow]:
    """Tenants whose slug or name contains ``query`` (all when empty), newest first, with their
    confirmed bookings, revenue and commission."""
    statement = select(Tenant).order_by(Tenant.created_at.desc(), Tenant.id.desc())
    query = query.strip()
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(
            or_(Tenant.slug.ilike(pattern, escape="\\"), Tenant.name.ilike(pattern, escape="\\"))
        )
    tenants = list(db.session.scalars(statement.limit(LISTING_LIMIT)))
    figures = _figures_by_tenant([t.id for t in tenants])
    empty = TenantFigures(0, 0, 0)
    return [TenantRow(t, figures.get(t.id, empty)) for t in tenants]


def get_tenant(tenant_id: int) -> Tenant:
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    return tenant


def tenant_figures(tenant: Tenant) -> TenantFigures:
    return _figures_by_tenant([tenant.id]).get(tenant.id, TenantFigures(0, 0, 0))


def create_tenant_as_admin(
    admin: User,
    *,
    slug: str,
    name: str,
    owner_email: str,
    owner_password: str,
    commission_percent: str,
) -> tuple[Tenant, IssuedKeys]:
    percent = validate_commission_percent(commission_percent or "12.5")
    tenant, _owner, keys = create_tenant(
        slug=slug,
        name=name,
        owner_email=owner_email,
        owner_password=owner_password,
        commission_percent=percent,
    )
    _audit(tenant, "tenant.create", admin)
    return tenant, keys


def set_commission_percent(admin: User, tenant: Tenant, value: str) -> Decimal:
    """New bookings use the new rate; existing bookings keep the snapshot they were made with."""
    percent = validate_commission_percent(value)
    old = tenant.commission_percent
    tenant.commission_percent = percent
    _audit(tenant, "tenant.commission", admin, {"from": str(old), "to": str(percent)})
    return percent


def set_tenant_active(admin: User, tenant: Tenant, is_active: bool) -> None:
    """An inactive tenant keeps its data; its widget takes no bookings and its API answers 404."""
    tenant.is_active = is_active
    _audit(tenant, "tenant.activate" if is_active else "tenant.deactivate", admin)


def failed_webhook_events(limit: int = LISTING_LIMIT) -> list[WebhookEvent]:
    with platform_scope("admin: the webhook dead-letter list"):
        return list(
            db.session.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.status == WebhookStatus.FAILED)
                .order_by(WebhookEvent.created_at.desc(), WebhookEvent.id.desc())
                .limit(limit)
            )
        )


def replay_failed_event(event_id: int) -> WebhookStatus:
    """Run a failed event again through the webhook handler (idempotent: a processed event is
    never processed twice). Commits, like the handler."""
    with platform_scope("admin: replaying one webhook event"):
        event = db.session.get(WebhookEvent, event_id)
        if event is None:
            raise NotFound("No such webhook event.")
        if event.status != WebhookStatus.FAILED:
            raise DomainError("Only failed events can be replayed; this one is " + event.status)
    return replay_webhook_event(event_id)


@dataclass(frozen=True)
class OutboxSummary:
    counts: dict[str, int]
    dead: list[OutboxMessage]
    # Pending messages, soonest attempt first: new ones and those waiting to be retried.
    waiting: list[OutboxMessage]


OPERATOR_COUNTED = (OutboxStatus.PENDING, OutboxStatus.DEAD)


def outbox_summary(limit: int = LISTING_LIMIT) -> OutboxSummary:
    # Only what an operator acts on: sent messages (nearly every row, ever) are not counted, so
    # the count reads a few index entries, not the whole history.
    counts = {status.value: 0 for status in OPERATOR_COUNTED}
    for status, count in db.session.execute(
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.status.in_(OPERATOR_COUNTED))
        .group_by(OutboxMessage.status)
    ):
        counts[OutboxStatus(status).value] = int(count)
    dead = list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.DEAD)
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
    )
    waiting = list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
    )
    return OutboxSummary(counts, dead, waiting)


def retry_outbox_message(admin: User, message_id: int) -> OutboxMessage:
    """Send a dead or waiting message on the relay's next run, with a fresh backoff."""
    # Locked: a relay sending this very message holds the row, and once it has committed
    # "sent" the message must not be put back in line (it would be delivered twice).
    message = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if message is None:
        raise NotFound("No such message.")
    if message.status == OutboxStatus.SENT:
        raise DomainError(f"Message {message_id} was sent already; it is not sent again.")
    previous = {"status": message.status.value, "attempts": str(message.attempts)}
    message.status = OutboxStatus.PENDING
    message.next_attempt_at = utcnow()
    message.attempts = 0
    message.last_error = None
    if message.tenant_id is not None:
        # The audit trail is per tenant; a platform message (no tenant) has none to go into.
        record_audit(
            message.tenant_id,
            "outbox.retry",
            "outbox_message",
            message.id,
            user=admin,
            details=previous,
        )
    return message


def masked_email(email: str) -> str:
    """Enough of an address for an operator to tell messages apart, not to read it."""
    local, _, domain = email.partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"
