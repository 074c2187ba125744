"""Typed SQLAlchemy 2 models, one module per aggregate. The schema is built only by migrations."""

from .audit import AuditLog
from .booking import Booking, BookingAddOn, BookingStatus, DateHold, HoldStatus
from .catalog import AddOn, Blackout, Package, PackagePhoto, Segment, package_addons
from .outbox import OutboxMessage, OutboxStatus
from .tenant import OnboardingState, Tenant
from .user import PasswordResetToken, User
from .webhook import WebhookEvent, WebhookEventArchive, WebhookStatus

__all__ = [
    "AddOn",
    "AuditLog",
    "Blackout",
    "Booking",
    "BookingAddOn",
    "BookingStatus",
    "DateHold",
    "HoldStatus",
    "OnboardingState",
    "OutboxMessage",
    "OutboxStatus",
    "Package",
    "PackagePhoto",
    "PasswordResetToken",
    "Segment",
    "Tenant",
    "User",
    "WebhookEvent",
    "WebhookEventArchive",
    "WebhookStatus",
    "package_addons",
]
