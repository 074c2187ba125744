"""Cache isolation scenarios from the old system's seed documents, on the real Redis and on the
in-process backend alike."""

from __future__ import annotations

import contextlib
import threading

import pytest
from flask import Flask, current_app

from mais import cache as tenant_cache
from mais import catalog
from mais.cache import AVAILABILITY, CATALOG, CacheKeyError, get_or_set, tenant_key
from mais.errors import NotFound
from mais.extensions import cache, db
from mais.tenancy import tenant_scope

from ..factories import make_package as _make_package
from ..factories import make_tenant


def make_package(tenant, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    """The factory, flushed inside the tenant's scope (its audit row is tenant-owned)."""
    with tenant_scope(tenant):
        package = _make_package(tenant, *args, **kwargs)
        db.session.flush()
    return package


def test_backend_is_the_one_asked_for(cache_backend: str) -> None:
    assert tenant_cache.backend_name() == cache_backend


def test_every_key_begins_with_its_namespace_and_tenant(cache_backend: str) -> None:
    tenant = make_tenant()
    for namespace in (CATALOG, AVAILABILITY):
        key = tenant_key(tenant, namespace, "package", "courthouse")
        assert key.startswith(f"{namespace}:{tenant.id}:g")
        assert key.endswith(":package:courthouse")
    assert tenant_key(tenant.id, CATALOG, "x") == tenant_key(tenant, CATALOG, "x")


@pytest.mark.parametrize("missing", [None, 0, -3, True, "7", object()])
def test_a_key_cannot_be_built_without_a_tenant(cache_backend: str, missing: object) -> None:
    with pytest.raises(CacheKeyError):
        tenant_key(missing, CATALOG, "packages")  # type: ignore[arg-type]
    with pytest.raises(CacheKeyError):
        get_or_set(missing, CATALOG, ("packages",), lambda: "leak")  # type: ignore[arg-type]


def test_an_unknown_namespace_is_refused(cache_backend: str) -> None:
    tenant = make_tenant()
    with pytest.raises(CacheKeyError):
        tenant_key(tenant, "sessions", "x")


def test_the_stored_entry_lives_under_the_tenant_key(cache_backend: str) -> None:
    tenant = make_tenant()
    get_or_set(tenant, CATALOG, ("probe",), lambda: "value")
    assert cache.get(tenant_key(tenant, CATALOG, "probe")) == "value"


def test_keys_stored_in_redis_carry_the_tenant(app_ctx: Flask, redis_app, redis_client) -> None:
    application, prefix = redis_app
    with application.app_context():
        tenant = make_tenant()
        get_or_set(tenant, CATALOG, ("probe",), lambda: "value")
        entry = prefix + tenant_key(tenant, CATALOG, "probe")
    stored = {k.decode() for k in redis_client.scan_iter(match=f"{prefix}catalog:{tenant.id}:*")}
    # The entry itself and the tenant's generation counter (an INCR integer), nothing else.
    assert stored <= {entry, f"{prefix}catalog:{tenant.id}:generation"}
    assert entry in stored
    cached_elsewhere = [
        k.decode()
        for k in redis_client.scan_iter(match=f"{prefix}*")
        if not k.decode().removeprefix(prefix).startswith(("catalog:", "availability:", "stats:"))
    ]
    assert cached_elsewhere == []


def test_a_tenant_never_receives_another_tenants_value(cache_backend: str) -> None:
    first, second = make_tenant(), make_tenant()
    # The same slug in both catalogs: only the tenant part of the key tells them apart.
    make_package(first, "First's courthouse", slug="courthouse")
    make_package(second, "Second's courthouse", slug="courthouse")

    assert catalog.get_active_package(first, "courthouse").title == "First's courthouse"
    # Cached for the first tenant now; the second must still get its own.
    assert catalog.get_active_package(second, "courthouse").title == "Second's courthouse"
    assert catalog.get_active_package(first, "courthouse").title == "First's courthouse"
    assert [p.title for p in catalog.list_active_packages(second)] == ["Second's courthouse"]
    assert [p.title for p in catalog.list_active_packages(first)] == ["First's courthouse"]


def test_cached_reads_are_served_from_the_cache(cache_backend: str) -> None:
    tenant = make_tenant()
    make_package(tenant, "Cached", slug="cached")
    before = tenant_cache.stats()
    catalog.get_active_package(tenant, "cached")
    catalog.get_active_package(tenant, "cached")
    after = tenant_cache.stats()
    assert after["misses"] - before["misses"] == 1
    assert after["hits"] - before["hits"] == 1


def test_invalidation_touches_only_its_tenant(cache_backend: str) -> None:
    first, second = make_tenant(), make_tenant()
    for tenant in (first, second):
        get_or_set(tenant, CATALOG, ("packages",), lambda t=tenant: f"packages of {t.id}")
        get_or_set(tenant, AVAILABILITY, ("2027-06",), lambda t=tenant: f"june of {t.id}")
    second_keys = {ns: tenant_key(second, ns, "x") for ns in (CATALOG, AVAILABILITY)}
    first_availability = tenant_key(first, AVAILABILITY, "x")

    tenant_cache.invalidate_catalog(first)

    def recomputed(tenant, namespace, part):  # noqa: ANN001, ANN202
        return get_or_set(tenant, namespace, (part,), lambda: "recomputed")

    assert recomputed(first, CATALOG, "packages") == "recomputed"
    assert tenant_key(first, AVAILABILITY, "x") == first_availability
    assert recomputed(first, AVAILABILITY, "2027-06") == f"june of {first.id}"
    assert {ns: tenant_key(second, ns, "x") for ns in (CATALOG, AVAILABILITY)} == second_keys
    assert recomputed(second, CATALOG, "packages") == f"packages of {second.id}"
    assert recomputed(second, AVAILABILITY, "2027-06") == f"june of {second.id}"


def test_a_catalog_write_invalidates_the_cached_catalog(cache_backend: str) -> None:
    tenant = make_tenant()
    make_package(tenant, "One", slug="one")
    assert [p.slug for p in catalog.list_active_packages(tenant)] == ["one"]
    make_package(tenant, "Two", slug="two")
    assert [p.slug for p in catalog.list_active_packages(tenant)] == ["one", "two"]


def test_a_write_is_invalidated_again_at_the_real_commit_whatever_its_savepoints_did(
    cache_backend: str,
) -> None:
    tenant = make_tenant()
    make_package(tenant, "One", slug="one")  # flushed: invalidated once already
    flushed = tenant_cache.generation(tenant, CATALOG)
    with contextlib.suppress(LookupError), db.session.begin_nested():
        raise LookupError  # a savepoint rolled back keeps the write around it
    with db.session.begin_nested():
        pass  # a savepoint released commits nothing yet
    assert tenant_cache.generation(tenant, CATALOG) == flushed
    db.session.commit()
    assert tenant_cache.generation(tenant, CATALOG) > flushed


def test_renaming_a_slug_invalidates_the_old_and_the_new_key(cache_backend: str) -> None:
    tenant = make_tenant()
    package = make_package(tenant, "Courthouse", slug="old-name")
    assert catalog.get_active_package(tenant, "old-name").slug == "old-name"
    # A stale entry under the new slug (say, from a package that used it before).
    stale_key = tenant_key(tenant, CATALOG, "package", "new-name")
    cache.set(stale_key, "stale")
    assert catalog.get_active_package(tenant, "new-name") == "stale"

    with tenant_scope(tenant):
        catalog.update_package(
            tenant, package.id, title="Courthouse", price_cents=120000, slug="new-name"
        )
        db.session.flush()

    with pytest.raises(NotFound):
        catalog.get_active_package(tenant, "old-name")
    renamed = catalog.get_active_package(tenant, "new-name")
    assert renamed.slug == "new-name" and renamed.id == package.id
    assert [p.slug for p in catalog.list_active_packages(tenant)] == ["new-name"]


def _worker(app: Flask, tenant_ids: list[int], errors: list[str], rounds: int) -> None:
    with app.app_context():
        for round_number in range(rounds):
            for tenant_id in tenant_ids:
                value = get_or_set(
                    tenant_id,
                    CATALOG,
                    ("slot", round_number % 5),
                    lambda t=tenant_id: f"tenant-{t}",
                )
                if value != f"tenant-{tenant_id}":
                    errors.append(f"tenant {tenant_id} received {value!r}")
                if round_number % 7 == 0:
                    tenant_cache.invalidate_catalog(tenant_id)


def test_concurrent_writes_across_tenants_stay_apart(cache_backend: str) -> None:
    tenant_ids = [make_tenant().id for _ in range(4)]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    errors: list[str] = []
    threads = [
        threading.Thread(target=_worker, args=(app, tenant_ids[i:] + tenant_ids[:i], errors, 40))
        for i in range(len(tenant_ids))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[:5]
    # Whatever each tenant's slot holds now (or recomputes to) is its own.
    for tenant_id in tenant_ids:
        value = get_or_set(tenant_id, CATALOG, ("slot", 0), lambda t=tenant_id: f"tenant-{t}")
        assert value == f"tenant-{tenant_id}"


def test_concurrent_invalidations_are_never_lost(cache_backend: str) -> None:
    tenant_id = make_tenant().id
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    start = tenant_cache.invalidate(tenant_id, AVAILABILITY)

    def bump() -> None:
        with app.app_context():
            for _ in range(50):
                tenant_cache.invalidate(tenant_id, AVAILABILITY)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert tenant_key(tenant_id, AVAILABILITY, "x") == f"availability:{tenant_id}:g{start + 200}:x"


def test_a_direct_orm_write_also_invalidates(cache_backend: str) -> None:
    """Domain functions invalidate explicitly; a session listener backs them up, so even a
    write that bypasses them (a job, a migration script) cannot leave a stale catalog."""
    tenant = make_tenant()
    package = make_package(tenant, "Before", slug="direct")
    assert catalog.get_active_package(tenant, "direct").title == "Before"
    with tenant_scope(tenant):
        package.title = "After"
        db.session.flush()
    assert catalog.get_active_package(tenant, "direct").title == "After"
    with tenant_scope(tenant):
        package.is_active = False
        db.session.flush()
    with pytest.raises(NotFound):
        catalog.get_active_package(tenant, "direct")


def test_a_direct_write_leaves_other_tenants_entries_alone(cache_backend: str) -> None:
    tenant, other = make_tenant(), make_tenant()
    package = make_package(tenant, "Mine", slug="mine")
    other_key = tenant_key(other, CATALOG, "packages")
    with tenant_scope(tenant):
        package.title = "Changed"
        db.session.flush()
    assert tenant_key(other, CATALOG, "packages") == other_key


def test_app_servers_sharing_redis_share_generations_and_figures(
    app_ctx: Flask, redis_app, database_url: str, tmp_path
) -> None:  # noqa: ANN001
    """Two application instances (two hosts) on one Redis: an invalidation on one is seen by
    the other, and /health/cache counts both."""
    from pathlib import Path

    from app import create_app

    from ..conftest import app_config
    from .conftest import REDIS_URL

    first, prefix = redis_app
    second = create_app(
        app_config(
            database_url,
            Path(tmp_path),
            CACHE_TYPE="RedisCache",
            CACHE_REDIS_URL=REDIS_URL,
            CACHE_KEY_PREFIX=prefix,
        )
    )
    tenant_id = make_tenant().id
    with first.app_context():
        assert get_or_set(tenant_id, CATALOG, ("shared",), lambda: "v1") == "v1"
    with second.app_context():
        assert get_or_set(tenant_id, CATALOG, ("shared",), lambda: "other") == "v1"
        before = tenant_cache.stats()
        tenant_cache.invalidate_catalog(tenant_id)
    with first.app_context():
        assert get_or_set(tenant_id, CATALOG, ("shared",), lambda: "v2") == "v2"
        after = tenant_cache.stats()
    assert after["misses"] == before["misses"] + 1
    with second.app_context():
        db.engine.dispose()


def test_a_versioned_entry_is_served_only_under_its_generation(cache_backend: str) -> None:
    first, second = make_tenant(), make_tenant()
    reader = tenant_cache.VersionedReader(current_app._get_current_object())
    parts = ("landing", "widget", "page")
    for tenant in (first, second):
        generation = tenant_cache.generation(tenant, CATALOG)
        tenant_cache.store_versioned(tenant, CATALOG, parts, generation, f"page of {tenant.id}")
    before = tenant_cache.stats()

    assert reader.lookup(first.id, CATALOG, parts) == f"page of {first.id}"
    assert reader.lookup(second.id, CATALOG, parts) == f"page of {second.id}"
    tenant_cache.invalidate_catalog(first)
    assert reader.lookup(first.id, CATALOG, parts) is None
    assert reader.lookup(second.id, CATALOG, parts) == f"page of {second.id}"

    after = tenant_cache.stats()
    assert (after["hits"] - before["hits"], after["misses"] - before["misses"]) == (3, 1)


def test_an_entry_computed_before_an_invalidation_is_never_served(cache_backend: str) -> None:
    tenant = make_tenant()
    reader = tenant_cache.VersionedReader(current_app._get_current_object())
    generation = tenant_cache.generation(tenant, CATALOG)
    # A write lands while the page is being rendered from the old catalog…
    tenant_cache.invalidate_catalog(tenant)
    tenant_cache.store_versioned(tenant, CATALOG, ("page",), generation, "rendered before")
    # …so what was stored afterwards carries the old generation and is not served.
    assert reader.lookup(tenant.id, CATALOG, ("page",)) is None
