"""The audit trail of changes inside a tenant."""

from __future__ import annotations

from typing import Any

from .extensions import db
from .models import AuditLog, Tenant, User
from .tenancy import tenant_operation


@tenant_operation
def record_audit(
    tenant: Tenant,
    action: str,
    object_type: str,
    object_id: Any = None,
    *,
    user: User | None = None,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit row to the current transaction; it commits with the change it describes."""
    entry = AuditLog(
        tenant_id=tenant.id,
        user_id=user.id if user else None,
        actor=user.email if user else (actor or "system"),
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        details=details or {},
    )
    db.session.add(entry)
    # Written now, inside the tenant's scope: the guard refuses tenant rows flushed outside one.
    db.session.flush()
    return entry
