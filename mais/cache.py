"""The tenant-scoped cache.

Keys always begin with ``{namespace}:{tenant_id}:`` and cannot be built without a tenant.
Invalidation bumps a per-tenant generation number that is part of every key of that namespace,
so one tenant's writes invalidate all of its own entries (old and new slugs alike) and nothing of
any other tenant, on Redis and in-process backends alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .extensions import cache

if TYPE_CHECKING:
    from .models import Tenant

T = TypeVar("T")

CATALOG = "catalog"
AVAILABILITY = "availability"
NAMESPACES = (CATALOG, AVAILABILITY)


class CacheKeyError(ValueError):
    """A cache key was requested without a tenant."""


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def record(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def snapshot(self) -> dict[str, float | int]:
        with self._lock:
            total = self.hits + self.misses
            return {
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": round(self.hits / total, 4) if total else 0.0,
            }


stats = _Stats()


def _tenant_id(tenant: Tenant | int | None) -> int:
    tenant_id = tenant if isinstance(tenant, int) else getattr(tenant, "id", None)
    if not isinstance(tenant_id, int) or isinstance(tenant_id, bool) or tenant_id <= 0:
        raise CacheKeyError("A cache key needs a tenant")
    return tenant_id


def _generation_key(namespace: str, tenant_id: int) -> str:
    return f"{namespace}:{tenant_id}:generation"


def tenant_key(tenant: Tenant | int, namespace: str, *parts: object) -> str:
    """``{namespace}:{tenant_id}:g{generation}:{parts…}``: the only way keys are made."""
    if namespace not in NAMESPACES:
        raise CacheKeyError(f"Unknown cache namespace {namespace!r}")
    tenant_id = _tenant_id(tenant)
    generation = cache.get(_generation_key(namespace, tenant_id)) or 0
    suffix = ":".join(str(part) for part in parts)
    return f"{namespace}:{tenant_id}:g{generation}:{suffix}"


_MISSING = object()


def get_or_set(
    tenant: Tenant | int,
    namespace: str,
    parts: tuple[object, ...],
    produce: Callable[[], T],
    timeout: int | None = None,
) -> T:
    key = tenant_key(tenant, namespace, *parts)
    value = cache.get(key)
    if value is not None:
        stats.record(hit=True)
        return value  # type: ignore[no-any-return]
    stats.record(hit=False)
    value = produce()
    cache.set(key, value, timeout=timeout)
    return value


def invalidate(tenant: Tenant | int, namespace: str) -> None:
    tenant_id = _tenant_id(tenant)
    key = _generation_key(namespace, tenant_id)
    current = cache.get(key) or 0
    # A generation key never expires, so older entries can never be addressed again.
    cache.set(key, current + 1, timeout=0)


def invalidate_catalog(tenant: Tenant | int, *slugs: str) -> None:
    """After any catalog write (``slugs``: old and new, for the record; all go at once)."""
    invalidate(tenant, CATALOG)


def invalidate_availability(tenant: Tenant | int) -> None:
    """After any write that opens or closes a date: blackouts, holds, bookings, iCal imports."""
    invalidate(tenant, AVAILABILITY)
