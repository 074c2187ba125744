"""The tenant-scoped cache.

Keys always begin with ``{namespace}:{tenant_id}:`` and cannot be built without a tenant.
Invalidation bumps a per-tenant generation number that is part of every key of that namespace,
so one tenant's writes invalidate all of its own entries (old and new slugs alike) and nothing of
any other tenant, on Redis and in-process backends alike.

On Redis the generation and the hit/miss counters are Redis integers changed with ``INCR``, so
every app server sees the same generation and the same figures; the bump is atomic, so two
concurrent invalidations can never collapse into one. In process they live in a dict beside the
cache: ``SimpleCache`` prunes its oldest entries first when full, and an evicted generation would
bring back entries that were already invalidated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from .extensions import cache

if TYPE_CHECKING:
    from .models import Tenant

T = TypeVar("T")

CATALOG = "catalog"
AVAILABILITY = "availability"
NAMESPACES = (CATALOG, AVAILABILITY)

_HITS_KEY = "stats:cache:hits"
_MISSES_KEY = "stats:cache:misses"


class CacheKeyError(ValueError):
    """A cache key was requested without a tenant."""


class _LocalCounters:
    """Generations and statistics of the in-process backend, one set per application."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, int] = {}

    def get(self, key: str) -> int:
        with self.lock:
            return self.values.get(key, 0)

    def inc(self, key: str) -> int:
        with self.lock:
            self.values[key] = self.values.get(key, 0) + 1
            return self.values[key]


def backend_name() -> str:
    """``"redis"`` when the cache is shared through Redis, ``"simple"`` for the in-process one."""
    return "redis" if _is_redis() else "simple"


def _is_redis() -> bool:
    return hasattr(cache.cache, "_write_client")


def _local_counters() -> _LocalCounters:
    extensions: dict[str, Any] = current_app.extensions
    counters = extensions.get("mais.cache_counters")
    if counters is None:
        counters = extensions.setdefault("mais.cache_counters", _LocalCounters())
    return counters


def _counter(key: str) -> int:
    if _is_redis():
        return int(cache.get(key) or 0)
    return _local_counters().get(key)


def _increment(key: str) -> int:
    if _is_redis():
        # INCR: atomic across threads, processes and hosts; the key has no expiry.
        return int(cache.cache.inc(key))
    return _local_counters().inc(key)


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
    generation = _counter(_generation_key(namespace, tenant_id))
    suffix = ":".join(str(part) for part in parts)
    return f"{namespace}:{tenant_id}:g{generation}:{suffix}"


def get_or_set(
    tenant: Tenant | int,
    namespace: str,
    parts: tuple[object, ...],
    produce: Callable[[], T],
    timeout: int | None = None,
) -> T:
    """The cached value for ``parts`` of this tenant, or ``produce()`` stored under its key.

    ``None`` is never cached (it is the backends' "missing"), and an exception from ``produce``
    caches nothing, so a "not found" is looked up again next time.
    """
    key = tenant_key(tenant, namespace, *parts)
    value = cache.get(key)
    if value is not None:
        _increment(_HITS_KEY)
        return value  # type: ignore[no-any-return]
    _increment(_MISSES_KEY)
    value = produce()
    if value is not None:
        cache.set(key, value, timeout=timeout)
    return value


def generation(tenant: Tenant | int, namespace: str) -> int:
    """The tenant's current generation of ``namespace``. Read it before reading what a versioned
    entry will hold: an invalidation after that read then makes the entry stale, never the
    reverse."""
    if namespace not in NAMESPACES:
        raise CacheKeyError(f"Unknown cache namespace {namespace!r}")
    return _counter(_generation_key(namespace, _tenant_id(tenant)))


def _versioned_key(namespace: str, tenant_id: int, parts: tuple[object, ...]) -> str:
    return f"{namespace}:{tenant_id}:v:" + ":".join(str(part) for part in parts)


def store_versioned(
    tenant: Tenant | int,
    namespace: str,
    parts: tuple[object, ...],
    generation: int,
    value: object,
    timeout: int | None = None,
) -> None:
    """Store ``value`` tagged with the generation it was computed under. Unlike ``store``, the
    key holds no generation, so a reader needs one round trip for both (``VersionedReader``)."""
    if namespace not in NAMESPACES:
        raise CacheKeyError(f"Unknown cache namespace {namespace!r}")
    if value is not None:
        key = _versioned_key(namespace, _tenant_id(tenant), parts)
        cache.set(key, (generation, value), timeout=timeout)


class VersionedReader:
    """Reads one application's versioned entries without an application context, for answers
    given before Flask builds one. On Redis the generation and the entry come in one ``MGET``."""

    def __init__(self, app: Flask) -> None:
        with app.app_context():
            self._backend = cache.cache
            self._counters = None if _is_redis() else _local_counters()

    def lookup(self, tenant_id: int, namespace: str, parts: tuple[object, ...]) -> Any:
        """The value, when it was stored under the tenant's current generation; else None.
        Counted as a hit or a miss."""
        generation_key = _generation_key(namespace, tenant_id)
        key = _versioned_key(namespace, tenant_id, parts)
        if self._counters is not None:
            current, entry = self._counters.get(generation_key), self._backend.get(key)
            value = entry[1] if entry is not None and entry[0] == current else None
            self._counters.inc(_HITS_KEY if value is not None else _MISSES_KEY)
            return value
        # One round trip for a hit, the common case: read both and count a hit at once; a miss
        # (about to render the page anyway) turns its hit into a miss afterwards.
        prefix = self._backend._get_prefix()
        pipeline = self._backend._write_client.pipeline(transaction=False)
        pipeline.mget([prefix + generation_key, prefix + key])
        pipeline.incr(prefix + _HITS_KEY)
        (raw_generation, raw_entry), _hits = pipeline.execute()
        entry = self._backend.serializer.loads(raw_entry)
        if entry is not None and entry[0] == int(raw_generation or 0):
            return entry[1]
        pipeline = self._backend._write_client.pipeline(transaction=False)
        pipeline.decr(prefix + _HITS_KEY)
        pipeline.incr(prefix + _MISSES_KEY)
        pipeline.execute()
        return None


def invalidate(tenant: Tenant | int, namespace: str) -> int:
    """Make every entry of this tenant's namespace unreachable; returns the new generation."""
    if namespace not in NAMESPACES:
        raise CacheKeyError(f"Unknown cache namespace {namespace!r}")
    return _increment(_generation_key(namespace, _tenant_id(tenant)))


def invalidate_catalog(tenant: Tenant | int) -> None:
    """After any catalog write: the generation bump drops every catalog entry of the tenant,
    under old and new slugs alike, so a rename needs no list of what changed."""
    invalidate(tenant, CATALOG)


def invalidate_availability(tenant: Tenant | int) -> None:
    """After any write that opens or closes a date: blackouts, holds, bookings, iCal imports."""
    invalidate(tenant, AVAILABILITY)


def stats() -> dict[str, Any]:
    """Hits and misses since the counters began (shared by every process on Redis)."""
    hits, misses = _counter(_HITS_KEY), _counter(_MISSES_KEY)
    total = hits + misses
    return {
        "backend": backend_name(),
        "hits": hits,
        "misses": misses,
        "hit_rate": round(hits / total, 4) if total else 0.0,
    }


# --- Invalidation on every write ---------------------------------------------------------------
# Domain functions call invalidate_* themselves; these listeners back them up centrally, so a
# write that forgets (or a direct ORM change in a job) still drops the entries it affects. Each
# tenant is invalidated at flush and again after commit: between the two, another request may have
# cached the state that the commit just replaced. Core statements (the hot paths' holds and
# bookings) are invisible to the flush listener: they say what they changed with
# ``invalidate_on_commit``, and the same commit listener invalidates it.

_AVAILABILITY_MODELS = frozenset({"DateHold", "Booking", "Blackout"})
_CATALOG_MODELS = frozenset({"Package", "AddOn", "Segment", "PackagePhoto"})
_TOUCHED = "mais.cache_touched"


def _touched_by(objects: Any) -> set[tuple[str, int]]:
    touched: set[tuple[str, int]] = set()
    for obj in objects:
        name = type(obj).__name__
        if name == "Tenant":
            tenant_id = getattr(obj, "id", None)
            namespaces: tuple[str, ...] = NAMESPACES
        else:
            tenant_id = getattr(obj, "tenant_id", None)
            if name in _AVAILABILITY_MODELS:
                namespaces = (AVAILABILITY,)
            elif name in _CATALOG_MODELS:
                namespaces = (CATALOG,)
            else:
                continue
        if isinstance(tenant_id, int):
            touched.update((namespace, tenant_id) for namespace in namespaces)
    return touched


def _invalidate_all(touched: set[tuple[str, int]]) -> None:
    if not touched or not has_app_context():
        return
    for namespace, tenant_id in touched:
        try:
            invalidate(tenant_id, namespace)
        except Exception:  # noqa: BLE001 - a cache outage must not undo the write itself
            logging.getLogger(__name__).exception(
                "cache invalidation failed for %s of tenant %s", namespace, tenant_id
            )


def invalidate_on_commit(session: Session, tenant: Tenant | int, namespace: str) -> None:
    """A write the flush listener cannot see (a Core statement) changed ``namespace`` of this
    tenant: invalidate it once ``session``'s transaction commits (not at all if it rolls back)."""
    if namespace not in NAMESPACES:
        raise CacheKeyError(f"Unknown cache namespace {namespace!r}")
    session.info.setdefault(_TOUCHED, set()).add((namespace, _tenant_id(tenant)))


@event.listens_for(Session, "after_flush")
def _invalidate_after_flush(session: Session, flush_context: Any) -> None:
    touched = _touched_by([*session.new, *session.dirty, *session.deleted])
    if touched:
        session.info.setdefault(_TOUCHED, set()).update(touched)
        _invalidate_all(touched)


@event.listens_for(Session, "after_commit")
def _invalidate_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: nobody else sees the change until the real commit
    _invalidate_all(session.info.pop(_TOUCHED, set()))


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, previous_transaction: Any) -> None:
    # A savepoint rolled back leaves the outer transaction's writes to be invalidated.
    if previous_transaction.parent is None:
        session.info.pop(_TOUCHED, None)
