"""Does MAIS stay flat as the platform grows? The same pages and jobs on 10 tenants and 10,000.

    .venv/bin/python -m bench.scale [--runs 15] [--keep] [--only dashboard,outbox] [--no-write]

Makes two throwaway PostgreSQL databases on ``TEST_DATABASE_URL``'s server (default the local
one), builds each with the migrations, fills them with bulk SQL (``INSERT … SELECT
generate_series``, then ``VACUUM ANALYZE``):

- small: 10 tenants, 1,000 bookings, 2,000 webhook events, 2,000 outbox messages;
- large: 10,000 tenants, 1,000,000 bookings over seven years, 2,000,000 webhook events,
  2,000,000 outbox messages, 100,000 holds, an owner and a package per tenant.

What an operator acts on is the same in both (200 failed webhook events, 200 waiting and 100 dead
messages): what grows is the history around it. The measured tenant ("scale-studio") has the
history of a busy studio: 200 bookings in the small database, 20,000 in the large one (about
2,300 of them confirmed, one per day over seven years, the rest cancelled or refunded).

Then it runs the same requests and jobs on both through the real application (Flask's test
client, logged in as the owner and as a platform admin through the real login forms): the
operators' and owners' pages, the maintenance jobs, and the paths a couple touches (which must
stay flat). Each row is the median of ``--runs`` timed runs after warm-up runs, with the number
of SQL statements one run executes; "cold" rows drop the tenant's availability cache first. It
prints both columns and their ratio and writes them into the "Scale" section of
``docs/performance.md`` (and ``bench/results/scale.json``). The databases are dropped at the end
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from bench.booking import SERVER_URL, make_app
from mais.extensions import db

ROOT = Path(__file__).resolve().parent.parent
HOST_ORIGIN = "https://studio.example"
OWNER_EMAIL = "owner@scale-studio.example"
OWNER_PASSWORD = "scale-owner-password-1"
ADMIN_EMAIL = "ops@scale.example"
ADMIN_PASSWORD = "scale-admin-password-1"
WEBHOOK_SECRET = "whsec_bench"  # bench.booking.make_app's
BULK_TABLES = ("bookings", "date_holds", "webhook_events", "outbox_messages", "tenants")
SPAN_DAYS = 2557  # seven years of history, ending a year from now


@dataclass(frozen=True)
class Size:
    name: str
    tenants: int
    bookings: int
    studio_bookings: int  # the measured tenant's share of ``bookings``
    events: int
    messages: int
    holds: int


SMALL = Size("10 tenants", 10, 1_000, 200, 2_000, 2_000, 1_000)
LARGE = Size("10,000 tenants", 10_000, 1_000_000, 20_000, 2_000_000, 2_000_000, 100_000)


@contextmanager
def database(keep: bool) -> Iterator[str]:
    name = f"mais_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield SERVER_URL.rpartition("/")[0] + "/" + name
    finally:
        if keep:
            print(f"kept database {name}", flush=True)
        else:
            with psycopg.connect(SERVER_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Building ----------------------------------------------------------------------------------


@dataclass
class Studio:
    tenant_id: int
    slug: str
    public_key: str
    package_slug: str
    export_token: str


def make_studio(app: Flask) -> Studio:
    """The measured tenant and a platform admin, made through the domain like real ones."""
    from mais.catalog import create_package
    from mais.models import OnboardingState
    from mais.tenancy import tenant_scope
    from mais.tenant_registry import create_platform_admin, create_tenant

    with app.app_context():
        tenant, _owner, keys = create_tenant(
            slug="scale-studio",
            name="Scale Studio",
            owner_email=OWNER_EMAIL,
            owner_password=OWNER_PASSWORD,
            allowed_origins=[HOST_ORIGIN],
        )
        tenant.stripe_account_id = "acct_scale"
        tenant.onboarding_state = OnboardingState.COMPLETE
        tenant.ical_export_token = secrets.token_urlsafe(32)
        with tenant_scope(tenant):
            package_slug = create_package(tenant, "Scale package", 150000).slug
        create_platform_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        db.session.commit()
        return Studio(
            tenant.id, tenant.slug, keys.public_key, package_slug, tenant.ical_export_token
        )


def fill(url: str, size: Size, studio: Studio) -> None:
    """Everything else, in a few set-based statements."""
    bulk = size.tenants - 1
    others = size.bookings - size.studio_bookings
    per_tenant = max(1, others // bulk)
    step = max(1, SPAN_DAYS // per_tenant)
    studio_days = min(size.studio_bookings, SPAN_DAYS)
    params = {
        "studio": studio.tenant_id,
        "bulk": bulk,
        "others": others,
        "per_tenant": per_tenant,
        "step": step,
        "span": SPAN_DAYS,
        "studio_bookings": size.studio_bookings,
        "studio_days": studio_days,
        "events": size.events,
        "messages": size.messages,
        "holds": size.holds,
        "start": date.today() - timedelta(days=SPAN_DAYS - 365),
    }
    statements = [
        (
            "tenants",
            """
            INSERT INTO tenants (slug, name, is_active, commission_percent, currency,
                stripe_account_id, onboarding_state, brand_primary_color, brand_accent_color,
                allowed_origins, public_key, secret_key_ciphertext, secret_key_hint,
                booking_horizon_days, created_at, updated_at, ical_busy_dates, time_zone)
            SELECT 'bulk-' || g,
                (ARRAY['Rose','Willow','Harbor','Meadow','Golden','Silver','Cedar','Ivy'])
                    [1 + g %% 8] || ' ' ||
                (ARRAY['Weddings','Elopements','Studio','Events','Photography'])
                    [1 + (g / 8) %% 5] || ' ' || g,
                g %% 50 <> 0, 12.5, 'usd', 'acct_bulk' || g, 'complete', t.brand_primary_color,
                t.brand_accent_color, t.allowed_origins, 'pk_live_bulk-' || g || '_x',
                t.secret_key_ciphertext, t.secret_key_hint, 730,
                now() - make_interval(days => (g * 7) %% %(span)s),
                now() - make_interval(days => (g * 7) %% %(span)s), '[]', 'UTC'
            FROM tenants t, generate_series(1, %(bulk)s) g WHERE t.id = %(studio)s
            """,
        ),
        (
            "owners",
            """
            INSERT INTO users (email, password_hash, tenant_id, created_at, updated_at,
                session_version)
            SELECT 'owner-' || t.slug || '@example.com', u.password_hash, t.id, t.created_at,
                t.created_at, 0
            FROM tenants t, users u WHERE t.slug LIKE 'bulk-%%' AND u.tenant_id = %(studio)s
            """,
        ),
        (
            "packages",
            """
            INSERT INTO packages (segment_id, slug, title, description_html, price_cents,
                is_active, sort_order, tenant_id, created_at, updated_at)
            SELECT NULL, 'package', 'Package', '<p>A lovely day.</p>', 150000, true, 0, t.id,
                t.created_at, t.created_at
            FROM tenants t WHERE t.slug LIKE 'bulk-%%'
            """,
        ),
        (
            "tenant map",
            """
            CREATE TABLE scale_tenants AS
            SELECT (row_number() OVER (ORDER BY t.id))::int - 1 AS i, t.id AS tenant_id,
                p.id AS package_id
            FROM tenants t JOIN packages p ON p.tenant_id = t.id
            WHERE t.slug LIKE 'bulk-%%'
            """,
        ),
        ("tenant map index", "CREATE UNIQUE INDEX ON scale_tenants (i)"),
        (
            "bookings of every tenant",
            """
            INSERT INTO bookings (reference, on_date, package_id, package_title,
                package_price_cents, couple_name, partner_name, email, phone, total_cents,
                currency, commission_percent, commission_cents, status, payment_intent_id,
                cancelled_at, tenant_id, created_at, updated_at, is_refund_owed)
            SELECT 'B' || lpad(to_hex(g), 12, '0'), b.on_date, s.package_id, 'Package', 150000,
                'Couple ' || g, '', 'couple' || g || '@example.com', '',
                150000 + (g %% 5) * 10000, 'usd', 12.5, (150000 + (g %% 5) * 10000) / 8,
                b.status, 'pi_bulk_' || g,
                CASE WHEN b.status <> 'confirmed' THEN b.created_at + interval '3 days' END,
                s.tenant_id, b.created_at, b.created_at, false
            FROM generate_series(0, %(others)s - 1) g
            JOIN scale_tenants s ON s.i = g %% %(bulk)s
            CROSS JOIN LATERAL (
                SELECT %(start)s::date + ((g / %(bulk)s) * %(step)s) %% %(span)s AS on_date,
                    CASE WHEN g %% 20 = 0 THEN 'cancelled' WHEN g %% 33 = 0 THEN 'refunded'
                        ELSE 'confirmed' END AS status,
                    least(now(), (%(start)s::date + ((g / %(bulk)s) * %(step)s) %% %(span)s)
                        - make_interval(days => 30 + g %% 300)) AS created_at
            ) b
            """,
        ),
        (
            "the studio's bookings",
            """
            INSERT INTO bookings (reference, on_date, package_id, package_title,
                package_price_cents, couple_name, partner_name, email, phone, total_cents,
                currency, commission_percent, commission_cents, status, payment_intent_id,
                cancelled_at, tenant_id, created_at, updated_at, is_refund_owed)
            SELECT 'S' || lpad(to_hex(k), 12, '0'), b.on_date, p.id, 'Scale package', 150000,
                'Couple ' || k, '', 'couple' || k || '@example.com', '', 150000, 'usd', 12.5,
                18750, b.status, 'pi_studio_' || k,
                CASE WHEN b.status <> 'confirmed' THEN b.created_at + interval '3 days' END,
                %(studio)s, b.created_at, b.created_at, false
            FROM generate_series(0, %(studio_bookings)s - 1) k
            JOIN packages p ON p.tenant_id = %(studio)s
            CROSS JOIN LATERAL (
                SELECT %(start)s::date + ((k %% %(studio_days)s) * %(span)s / %(studio_days)s)
                        AS on_date,
                    CASE WHEN k < %(studio_days)s AND k %% 10 <> 0 THEN 'confirmed'
                        WHEN k %% 3 = 0 THEN 'refunded' ELSE 'cancelled' END AS status,
                    least(now(), (%(start)s::date
                        + ((k %% %(studio_days)s) * %(span)s / %(studio_days)s))
                        - make_interval(days => 20 + k %% 200)) AS created_at
            ) b
            """,
        ),
        (
            "holds",
            """
            INSERT INTO date_holds (id, on_date, package_id, addon_lines, package_price_cents,
                total_cents, commission_percent, commission_cents, currency, couple_name,
                partner_name, email, phone, status, expires_at, tenant_id, created_at,
                updated_at, is_refund_owed)
            SELECT md5('hold' || g), %(start)s::date + g %% %(span)s, s.package_id, '[]',
                150000, 150000, 12.5, 18750, 'usd', 'Couple ' || g, '',
                'hold' || g || '@example.com', '',
                CASE WHEN g %% 3 = 0 THEN 'converted' ELSE 'released' END,
                now() - make_interval(days => g %% %(span)s) + interval '30 minutes',
                s.tenant_id, now() - make_interval(days => g %% %(span)s),
                now() - make_interval(days => g %% %(span)s), false
            FROM generate_series(0, %(holds)s - 1) g
            JOIN scale_tenants s ON s.i = g %% %(bulk)s
            """,
        ),
        (
            "webhook events",
            """
            INSERT INTO webhook_events (provider_event_id, type, tenant_id, status, attempts,
                last_error, payload, processed_at, created_at, updated_at)
            SELECT 'evt_bulk_' || g, 'checkout.session.completed', s.tenant_id,
                CASE WHEN g %% (%(events)s / 200) = 0 THEN 'failed' ELSE 'processed' END, 1,
                CASE WHEN g %% (%(events)s / 200) = 0
                    THEN 'MalformedEvent: data.object is missing' END,
                json_build_object('id', 'evt_bulk_' || g, 'object', 'event',
                    'type', 'checkout.session.completed',
                    'data', json_build_object('object', json_build_object(
                        'id', 'cs_bulk_' || g, 'payment_intent', 'pi_bulk_' || g,
                        'metadata', json_build_object('tenant_id', s.tenant_id::text,
                            'hold_id', md5('hold' || g))))),
                c.at, c.at, c.at
            FROM generate_series(0, %(events)s - 1) g
            JOIN scale_tenants s ON s.i = g %% %(bulk)s
            CROSS JOIN LATERAL (
                SELECT now() - make_interval(secs => (%(events)s - g)::float8
                    * (%(span)s - 365) * 86400 / %(events)s) AS at
            ) c
            """,
        ),
        (
            "outbox messages",
            """
            INSERT INTO outbox_messages (dedup_key, tenant_id, template, to_email, subject,
                body_text, body_html, status, attempts, last_error, sent_at, created_at,
                updated_at, next_attempt_at)
            SELECT 'bulk-' || g, s.tenant_id, 'booking_confirmed', 'couple' || g || '@example.com',
                'Your date is booked', 'Thank you for booking. See you on the day.', NULL,
                CASE WHEN g >= %(messages)s - 200 THEN 'pending'
                    WHEN g %% (%(messages)s / 100) = 2 THEN 'dead' ELSE 'sent' END,
                1, CASE WHEN g %% (%(messages)s / 100) = 2 THEN 'SMTPRecipientsRefused' END,
                CASE WHEN g < %(messages)s - 200 AND g %% (%(messages)s / 100) <> 2 THEN c.at END,
                c.at, c.at, c.at
            FROM generate_series(0, %(messages)s - 1) g
            JOIN scale_tenants s ON s.i = g %% %(bulk)s
            CROSS JOIN LATERAL (
                SELECT now() - make_interval(secs => (%(messages)s - g)::float8
                    * (%(span)s - 365) * 86400 / %(messages)s) AS at
            ) c
            """,
        ),
        ("drop tenant map", "DROP TABLE scale_tenants"),
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        # Filling tables without their secondary indexes and building those afterwards is
        # several times faster than updating them row by row; the migrations' definitions are
        # read back from the catalog, so the indexes are exactly theirs.
        indexes = conn.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            JOIN pg_class c ON c.relname = i.indexname
            WHERE i.schemaname = 'public' AND i.tablename = ANY(%(tables)s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)
            """,
            {"tables": list(BULK_TABLES)},
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for label, sql in statements:
            started = time.perf_counter()
            conn.execute(sql, params)
            print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        for _name, definition in indexes:
            conn.execute(definition)
        print(f"  {len(indexes)} indexes: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        print(f"  vacuum analyze: {time.perf_counter() - started:.1f} s", flush=True)


# --- Measuring ---------------------------------------------------------------------------------


class StatementCounter:
    def __init__(self, app: Flask) -> None:
        self.count = 0
        with app.app_context():
            event.listen(db.engine, "before_cursor_execute", self._count)

    def _count(self, *args: Any) -> None:
        self.count += 1


@dataclass
class Row:
    name: str
    flat: bool  # a path a couple touches: must not grow at all
    run: Callable[[], Any]
    prepare: Callable[[], None] = lambda: None
    runs: int | None = None  # None: --runs
    warmups: int = 2


@dataclass
class Figures:
    median_ms: float
    statements: int
    peak_rss_mib: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Built:
    size: Size
    app: Flask
    url: str
    studio: Studio
    counter: StatementCounter


def measure(pair: list[tuple[Built, Row]], default_runs: int) -> list[Figures]:
    """The same row on each database, run by run in turn, so that the load of whatever else
    shares the machine falls on both columns alike."""
    row = pair[0][1]
    for _ in range(row.warmups):
        for _built, each in pair:
            each.prepare()
            each.run()
    times: list[list[float]] = [[] for _ in pair]
    counts: list[list[int]] = [[] for _ in pair]
    grown = [0.0 for _ in pair]
    for _ in range(row.runs or default_runs):
        for n, (built, each) in enumerate(pair):
            each.prepare()
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            before = built.counter.count
            started = time.perf_counter()
            each.run()
            times[n].append((time.perf_counter() - started) * 1000)
            counts[n].append(built.counter.count - before)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
            grown[n] = max(grown[n], peak / 1024)
    return [
        Figures(round(statistics.median(times[n]), 2), max(counts[n]), round(grown[n], 1))
        for n in range(len(pair))
    ]


def _ok(response: Any, *expected: int) -> Any:
    if response.status_code not in (expected or (200,)):
        raise RuntimeError(
            f"{response.request.method} {response.request.path}: {response.status_code}\n"
            + response.get_data(as_text=True)[:2000]
        )
    return response


def _signed_webhook(tenant_id: int, hold_id: str) -> tuple[str, str]:
    from mais.payments import sign_payload

    payload = json.dumps(
        {
            "id": f"evt_scale_{hold_id}",
            "object": "event",
            "created": int(time.time()),
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": f"cs_scale_{hold_id}",
                    "object": "checkout.session",
                    "payment_intent": f"pi_scale_{hold_id}",
                    "payment_status": "paid",
                    "metadata": {"tenant_id": str(tenant_id), "hold_id": hold_id},
                }
            },
        }
    )
    return payload, sign_payload(payload, WEBHOOK_SECRET)


def rows_for(app: Flask, url: str, studio: Studio) -> list[Row]:
    from mais import booking, webhooks
    from mais.cache import invalidate_availability
    from mais.models import HoldStatus
    from widget.state import Selection, sign_selection

    owner, admin, couple = app.test_client(), app.test_client(), app.test_client()
    _ok(owner.post("/portal/login", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD}), 302)
    _ok(admin.post("/admin/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}), 302)

    def get(client: FlaskClient, path: str, **kwargs: Any) -> Callable[[], Any]:
        return lambda: _ok(client.get(path, **kwargs))

    def in_app(job: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with app.app_context():
                return job()

        return run

    def drop_availability_cache() -> None:
        with app.app_context():
            invalidate_availability(studio.tenant_id)

    def sql(statement: str) -> Callable[[], None]:
        def run() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(statement)

        return run

    def old_events(count: int) -> Callable[[], None]:
        def run() -> None:
            batch = uuid.uuid4().hex[:8]
            sql(
                "INSERT INTO webhook_events (provider_event_id, type, tenant_id, status, "
                "attempts, payload, processed_at, created_at, updated_at) "
                f"SELECT 'evt_day_{batch}_' || g, 'checkout.session.completed', NULL, "
                "'processed', 1, '{}', now() - interval '91 days', now() - interval '91 days', "
                f"now() - interval '91 days' FROM generate_series(1, {count}) g"
            )()

        return run

    today = date.today()
    landing = (
        f"/widget/{studio.slug}/?key={studio.public_key}"
        f"&origin={urllib.parse.quote(HOST_ORIGIN, safe='')}"
    )
    month = today + timedelta(days=62)
    key = {"X-Tenant-Key": studio.public_key}
    year = {"from": today.isoformat(), "to": (today + timedelta(days=365)).isoformat()}

    # Pay holds a new date each run (well past every bulk booking); the webhook then confirms
    # those holds, one each run, in the order they were made.
    pay_days = iter(today + timedelta(days=400 + n) for n in range(300))
    held: list[str] = []

    def pay() -> None:
        with app.app_context():
            token = sign_selection(
                studio.tenant_id,
                Selection(studio.package_slug, (), next(pay_days)).with_couple(
                    {"couple_name": "Scale Couple", "email": "couple@example.com"}
                ),
            )
        _ok(couple.post(f"/book/{studio.slug}/pay", data={"s": token}), 303)

    def next_hold() -> None:
        if not held:
            with psycopg.connect(url) as conn:
                held.extend(
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM date_holds WHERE tenant_id = %s AND status = %s "
                        "ORDER BY on_date",
                        (studio.tenant_id, HoldStatus.ACTIVE.value),
                    )
                )
        body, signature = _signed_webhook(studio.tenant_id, held[0])
        webhook_request["body"], webhook_request["signature"] = body, signature
        held.pop(0)

    webhook_request: dict[str, str] = {}

    def webhook() -> None:
        _ok(
            couple.post(
                "/webhooks/stripe",
                data=webhook_request["body"],
                headers={
                    "Stripe-Signature": webhook_request["signature"],
                    "Content-Type": "application/json",
                },
            )
        )

    return [
        # Operators.
        Row("admin outbox", False, get(admin, "/admin/outbox")),
        Row("admin tenants list", False, get(admin, "/admin/")),
        Row("admin tenant search", False, get(admin, "/admin/", query_string={"q": "4242"})),
        Row("admin failed webhooks", False, get(admin, "/admin/webhooks")),
        # Owners.
        Row(
            "iCal export, cold",
            False,
            get(couple, f"/portal/ical/{studio.export_token}.ics"),
            drop_availability_cache,
        ),
        Row(
            "iCal export, polled again",
            False,
            get(couple, f"/portal/ical/{studio.export_token}.ics"),
        ),
        Row("dashboard", False, get(owner, "/portal/")),
        Row("bookings list, upcoming", False, get(owner, "/portal/bookings")),
        Row("bookings list, past", False, get(owner, "/portal/bookings?filter=past")),
        Row("bookings list, cancelled", False, get(owner, "/portal/bookings?filter=cancelled")),
        Row(
            "bookings list, cancelled, page 40",
            False,
            get(owner, "/portal/bookings?filter=cancelled&page=40"),
        ),
        # Maintenance.
        Row(
            "release expired holds (20 due)",
            False,
            in_app(booking.release_expired_holds),
            sql(
                "UPDATE date_holds SET status = 'active', expires_at = now() - interval '1 hour' "
                "WHERE id IN (SELECT id FROM date_holds WHERE status = 'released' "
                "ORDER BY id LIMIT 20)"
            ),
        ),
        Row(
            "archive old webhook events, first run",
            False,
            in_app(webhooks.archive_webhook_events),
            runs=1,
            warmups=0,
        ),
        Row(
            "archive old webhook events, a day's worth",
            False,
            in_app(webhooks.archive_webhook_events),
            old_events(300),
            runs=5,
        ),
        # What a couple touches: must not move at all.
        Row("widget landing", True, get(couple, landing)),
        Row(
            "widget date step",
            True,
            get(
                couple,
                f"/book/{studio.slug}/date",
                query_string={"package": studio.package_slug, "month": f"{month:%Y-%m}"},
            ),
        ),
        Row("GET /v1/packages", True, get(couple, "/v1/packages", headers=key)),
        Row(
            "GET /v1/availability, a year, cold",
            True,
            get(couple, "/v1/availability", headers=key, query_string=year),
            drop_availability_cache,
        ),
        Row(
            "GET /v1/availability, a year, cached",
            True,
            get(couple, "/v1/availability", headers=key, query_string=year),
        ),
        Row("Pay (hold a date)", True, pay),
        Row("webhook checkout.session.completed", True, webhook, next_hold),
    ]


def build(size: Size, stack: ExitStack, keep: bool) -> Built:
    print(f"\n=== {size.name}", flush=True)
    url = stack.enter_context(database(keep))
    instance = Path(tempfile.mkdtemp(prefix="mais-scale-"))
    started = time.perf_counter()
    app = make_app(url, instance)
    # The test client posts the forms without reading them first, as the tests do.
    app.config["WTF_CSRF_ENABLED"] = False
    print(f"  migrations: {time.perf_counter() - started:.1f} s", flush=True)
    studio = make_studio(app)
    started = time.perf_counter()
    fill(url, size, studio)
    print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    stack.callback(_dispose, app)
    return Built(size, app, url, studio, StatementCounter(app))


def _dispose(app: Flask) -> None:
    with app.app_context():
        db.engine.dispose()


def run_all(
    builts: list[Built], args: argparse.Namespace
) -> tuple[list[dict[str, Figures]], set[str]]:
    results: list[dict[str, Figures]] = [{} for _ in builts]
    flat: set[str] = set()
    row_lists = [rows_for(b.app, b.url, b.studio) for b in builts]
    print(f"\n{'':45} " + " ".join(f"{b.size.name:>24}" for b in builts), flush=True)
    for pair in zip(*row_lists, strict=True):
        name = pair[0].name
        if args.only and not any(word in name for word in args.only):
            continue
        if any(word in name for word in args.skip):
            continue
        if pair[0].flat:
            flat.add(name)
        figures = measure(list(zip(builts, pair, strict=True)), args.runs)
        for n, each in enumerate(figures):
            results[n][name] = each
        print(
            f"  {name:43} "
            + " ".join(f"{f.median_ms:>10.2f} ms {f.statements:>4} stmts" for f in figures)
            + "".join(f"  (+{f.peak_rss_mib} MiB)" for f in figures if f.peak_rss_mib > 50),
            flush=True,
        )
    return results, flat


def _ratio(small: Figures, large: Figures) -> str:
    return f"{large.median_ms / small.median_ms:.2f}×" if small.median_ms > 0 else "—"


def report(small: dict[str, Figures], large: dict[str, Figures], flat: set[str]) -> str:
    lines = [
        f"| page or job | {SMALL.name} | {LARGE.name} | ratio | statements (small / large) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, figures in small.items():
        big = large[name]
        label = f"{name} (flat path)" if name in flat else name
        lines.append(
            f"| {label} | {figures.median_ms:.1f} ms | {big.median_ms:.1f} ms | "
            f"{_ratio(figures, big)} | {figures.statements} / {big.statements} |"
        )
    return "\n".join(lines)


SECTION_INTRO = """## Scale: 10 tenants against 10,000 (`.venv/bin/python -m bench.scale`)

Two databases built by the migrations and filled with bulk SQL (about four minutes for the large
one): 10 tenants and 1,000 bookings, against 10,000 tenants, 1,000,000 bookings over seven years,
2,000,000 webhook events, 2,000,000 outbox messages and 100,000 holds. What an operator acts on
is the same in both (200 failed events, 200 waiting and 100 dead messages); the measured tenant
has 200 bookings in the first and 20,000 (about 2,300 confirmed) in the second. Medians of
repeated runs through the Flask test client (no network), the two databases in turn run by run
so that the load of a shared machine falls on both alike, with the SQL statements one run
executes; "cold" drops the tenant's availability cache before each run. Aim: every row within
2× of its 10-tenant time, and the paths a couple touches unchanged. Two rows grow with what they
show, not with the platform: the tenant list shows 200 tenants on the large database against 10,
and a cold iCal feed holds about 650 events against 50 (a poll after the first is a cache read).
"""


def write_section(table: str, when: str) -> None:
    path = ROOT / "docs" / "performance.md"
    text = path.read_text()
    section = f"{SECTION_INTRO}\n{table}\n\nMeasured {when}.\n"
    pattern = re.compile(r"^## Scale.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep both databases")
    parser.add_argument("--only", default="", help="comma-separated words of row names")
    parser.add_argument("--skip", default="", help="comma-separated words of rows to leave out")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--small-only", action="store_true", help="build the small one only")
    args = parser.parse_args()
    args.only = [word for word in args.only.split(",") if word]
    args.skip = [word for word in args.skip.split(",") if word]
    started = time.perf_counter()
    with ExitStack() as stack:
        sizes = [SMALL] if args.small_only else [SMALL, LARGE]
        builts = [build(size, stack, args.keep) for size in sizes]
        results, flat = run_all(builts, args)
    if args.small_only:
        return
    small, large = results
    table = report(small, large, flat)
    print("\n" + table)
    print(f"\n{time.perf_counter() - started:.0f} s in all", flush=True)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "scale.json").write_text(
        json.dumps(
            {name: {"small": vars(small[name]), "large": vars(large[name])} for name in small},
            indent=2,
        )
    )
    if not args.no_write and not args.only:
        write_section(table, time.strftime("%Y-%m-%d", time.gmtime()))


if __name__ == "__main__":
    sys.exit(main())
