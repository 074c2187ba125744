"""The audit trail of changes inside a tenant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from .extensions import db
from .models import AuditLog, Tenant, User
from .tenancy import execute_in_scope, scope_tenant_id, tenant_operation

# A Core INSERT: the ORM's unit of work costs more than the row itself, and nobody reads the
# entry back (hence no RETURNING of its id either). Its tenant is the scope's, by construction.
_INSERT_ENTRY = insert(AuditLog.__table__).values(tenant_id=scope_tenant_id()).inline()


@tenant_operation
def record_audit(
    tenant: Tenant | int,
    action: str,
    object_type: str,
    object_id: Any = None,
    *,
    user: User | None = None,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the current transaction; it commits with the change it describes."""
    session = db.session
    # Written now, inside the tenant's scope, after what the caller changed so far: the guard
    # refuses tenant rows flushed outside a scope, and the entry may refer to them.
    session.flush()
    execute_in_scope(
        session,
        _INSERT_ENTRY,
        {
            "user_id": user.id if user else None,
            "actor": user.email if user else (actor or "system"),
            "action": action,
            "object_type": object_type,
            "object_id": None if object_id is None else str(object_id),
            "details": details or {},
        },
    )
