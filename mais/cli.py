"""``flask mais …``: operating commands."""

from __future__ import annotations

import logging
from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from . import ical, unit_of_work
from .booking import release_expired_holds
from .catalog import add_blackout, create_addon, create_package, create_segment
from .doctor import run_checks
from .errors import DomainError
from .extensions import db
from .mail import send_pending
from .models import OnboardingState, Tenant
from .refunds import issue_owed_refunds
from .tenancy import platform_scope, tenant_scope
from .tenant_registry import create_platform_admin, create_tenant, find_tenant_by_slug, local_today
from .webhooks import archive_webhook_events

log = logging.getLogger(__name__)

mais_cli = AppGroup("mais", help="MAIS operating commands.")

DEMO_TENANTS = [
    {
        "slug": "bluebird-elopements",
        "name": "Bluebird Elopements",
        "owner_email": "owner@bluebird.example",
        "owner_password": "bluebird-demo-pass",
        "time_zone": "America/Los_Angeles",
        "primary": "#2563eb",
        "accent": "#f59e0b",
        "segments": {
            "Elopements": [
                (
                    "Courthouse elopement",
                    120000,
                    "<p>Thirty minutes at the courthouse, <strong>two hours</strong> of photos.</p>",
                ),
                (
                    "Mountain sunrise elopement",
                    240000,
                    "<p>A sunrise ceremony on the ridge, with a hike and a picnic.</p>",
                ),
            ],
            "Micro weddings": [
                (
                    "Garden micro wedding",
                    450000,
                    "<p>Up to twenty guests in the walled garden, ceremony and dinner.</p>",
                ),
            ],
        },
        "addons": [
            ("Extra photographer hour", 25000),
            ("Bouquet and boutonniere", 9000),
            ("Champagne toast", 6000),
        ],
    },
    {
        "slug": "harbor-weddings",
        "name": "Harbor Weddings",
        "owner_email": "owner@harbor.example",
        "owner_password": "harbor-demo-pass",
        "time_zone": "Europe/Berlin",
        "primary": "#0f766e",
        "accent": "#e11d48",
        "segments": {
            "Ceremonies": [
                (
                    "Lighthouse ceremony",
                    180000,
                    "<p>Vows at the lighthouse with the harbour behind you.</p>",
                ),
                (
                    "Sailboat elopement",
                    320000,
                    "<p>Two hours on the water, captain and officiant included.</p>",
                ),
            ],
        },
        "addons": [("Live violinist", 40000), ("Sunset cruise extension", 80000)],
    },
]


def demo_host_origin() -> str:
    return current_app.config.get("MAIS_DEMO_HOST_ORIGIN", "http://127.0.0.1:5001")


def _seed_tenant(spec: dict) -> tuple[Tenant, str | None]:
    existing = find_tenant_by_slug(spec["slug"])
    if existing is not None:
        return existing, None
    tenant, _owner, keys = create_tenant(
        slug=spec["slug"],
        name=spec["name"],
        owner_email=spec["owner_email"],
        owner_password=spec["owner_password"],
        allowed_origins=[demo_host_origin(), current_app.config["MAIS_BASE_URL"]],
        time_zone=spec["time_zone"],
    )
    tenant.brand_primary_color = spec["primary"]
    tenant.brand_accent_color = spec["accent"]
    # The mock provider needs no onboarding; mark it done so the demo can take payments.
    tenant.stripe_account_id = f"acct_mock_{tenant.slug.replace('-', '')}"
    tenant.onboarding_state = OnboardingState.COMPLETE
    with tenant_scope(tenant):
        addons = [create_addon(tenant, title, price) for title, price in spec["addons"]]
        for segment_title, packages in spec["segments"].items():
            segment = create_segment(tenant, segment_title)
            for title, price, description in packages:
                create_package(
                    tenant,
                    title,
                    price,
                    description_html=description,
                    segment=segment,
                    addons=addons,
                )
        today = local_today(tenant)
        add_blackout(tenant, today + timedelta(days=9), "Team retreat")
        add_blackout(tenant, today + timedelta(days=10), "Team retreat")
    return tenant, keys.secret_key


@mais_cli.command("seed-demo")
def seed_demo() -> None:
    """Create the demo tenants, their catalogs and owner logins (safe to run again)."""
    base = current_app.config["MAIS_BASE_URL"]
    lines = []
    for spec in DEMO_TENANTS:
        tenant, secret_key = _seed_tenant(spec)
        unit_of_work.commit()  # one tenant per transaction: a seed cut short keeps the others
        lines += [
            f"{tenant.name}",
            f"  portal login:   {spec['owner_email']} / {spec['owner_password']}  ({base}/portal/login)",
            f"  public key:     {tenant.public_key}",
            "  secret key:     "
            + (
                secret_key or "(shown when first created; rotate it in the portal to see a new one)"
            ),
            f"  hosted booking: {base}/book/{tenant.slug}",
            "",
        ]
    lines.append(f"Demo tenant website embedding the widget: {demo_host_origin()}/")
    click.echo("\n".join(lines))


@mais_cli.command("create-tenant")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--owner-email", required=True)
@click.password_option("--password", help="The owner's password.")
@click.option("--commission", type=str, default=None, help="Commission percent (default 12.5).")
def create_tenant_command(
    slug: str, name: str, owner_email: str, password: str, commission: str | None
) -> None:
    """Create a tenant and its owner; prints the keys once."""

    try:
        tenant, _owner, keys = create_tenant(
            slug=slug,
            name=name,
            owner_email=owner_email,
            owner_password=password,
            commission_percent=commission,
        )
    except DomainError as error:
        raise click.ClickException(error.message) from None
    unit_of_work.commit()  # the command is the unit of work: once, before the keys are shown
    click.echo(f"Created tenant {tenant.slug} (id {tenant.id}).")
    click.echo(f"Public key: {keys.public_key}")
    click.echo(f"Secret key: {keys.secret_key}   (shown once: store it now)")


@mais_cli.command("create-admin")
@click.option("--email", required=True)
@click.password_option("--password")
def create_admin_command(email: str, password: str) -> None:
    """Create a platform operator account for /admin."""

    try:
        admin = create_platform_admin(email, password)
    except DomainError as error:
        raise click.ClickException(error.message) from None
    unit_of_work.commit()  # the command is the unit of work: once, at its end
    click.echo(f"Created platform admin {admin.email}.")


@mais_cli.command("doctor")
def doctor_command() -> None:
    """Check the configuration; exits non-zero when something must be fixed."""

    problems = 0
    for check in run_checks(current_app):
        click.echo(f"[{check.level:>4}] {check.name}: {check.message}")
        problems += check.level == "FAIL"
    if problems:
        raise SystemExit(1)


def all_tenants() -> list[Tenant]:
    with platform_scope("listing tenants for a CLI command"):
        return list(db.session.scalars(select(Tenant).order_by(Tenant.id)))


@mais_cli.command("send-mail")
@click.option("--loop", is_flag=True, help="Keep relaying, polling every few seconds.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between polls.")
def send_mail_command(loop: bool, interval: float) -> None:
    """Deliver the outbox emails that are due (SMTP when MAIS_SMTP_URL is set, else .eml
    files). Failures are retried with backoff for MAIS_MAIL_GIVE_UP_AFTER seconds (48 h)."""
    import time

    while True:
        sent = send_pending()
        click.echo(f"Sent {sent} message(s).")
        if not loop:
            return
        if sent == 0:
            time.sleep(interval)


def sync_all_calendars() -> tuple[int, int]:
    """Sync every tenant's imported calendar; returns (synced, failed).

    Each tenant is read, fetched with no transaction open (a slow feed holds no database
    resource), then written and committed on its own, so one bad feed never blocks the others.
    """

    with platform_scope("listing the tenants whose external calendar is synced"):
        tenant_ids = list(
            db.session.scalars(
                select(Tenant.id).where(Tenant.ical_import_url.is_not(None)).order_by(Tenant.id)
            )
        )
    unit_of_work.commit()  # ends the read: nothing is held while feeds are fetched
    synced = failed = 0
    for tenant_id in tenant_ids:
        try:
            tenant = db.session.get(Tenant, tenant_id)
            plan = ical.plan_sync(tenant) if tenant is not None else None
            unit_of_work.commit()  # ends the read before the feed is fetched
            if plan is None:
                continue
            result = ical.fetch_feed(plan)
            tenant = db.session.get(Tenant, tenant_id)
            ok = tenant is not None and ical.store_sync(tenant, plan, result)
            unit_of_work.commit()  # one tenant per transaction: a bad feed never blocks the rest
        except Exception:
            # A fault of ours on one tenant (its row, the database) is logged and the others
            # still get their sync; the feed's own problems never get here (they are stored).
            db.session.rollback()
            log.exception("calendar sync failed for tenant %s", tenant_id)
            ok = False
        synced += ok
        failed += not ok
    return synced, failed


@mais_cli.command("sync-calendars")
def sync_calendars_command() -> None:
    """Fetch every tenant's imported iCal calendar and store its busy days."""
    synced, failed = sync_all_calendars()
    click.echo(f"Synced {synced} calendar(s); {failed} could not be read.")


@mais_cli.command("maintenance")
def maintenance_command() -> None:
    """Release expired holds, issue refunds still owed, archive webhook events older than 90
    days, sync calendars."""

    click.echo(f"Released {release_expired_holds()} expired hold(s).")
    click.echo(f"Issued {issue_owed_refunds()} refund(s) still owed.")
    click.echo(f"Archived {archive_webhook_events()} webhook event(s).")
    synced, failed = sync_all_calendars()
    click.echo(f"Synced {synced} calendar(s); {failed} could not be read.")
