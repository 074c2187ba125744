"""The admin area: platform admins only; tenants, commission, activation, figures, failed
webhooks with replay, outbox retry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from mais.extensions import db
from mais.models import (
    AuditLog,
    Booking,
    BookingStatus,
    OutboxMessage,
    OutboxStatus,
    Tenant,
    User,
    WebhookEvent,
    WebhookStatus,
)
from mais.tenancy import platform_scope, tenant_scope

from ..factories import make_tenant
from .conftest import ADMIN_PASSWORD

ADMIN_PAGES = (
    "/admin/",
    "/admin/?q=studio",
    "/admin/tenants/new",
    "/admin/tenants/{tenant_id}",
    "/admin/webhooks",
    "/admin/outbox",
)
ADMIN_POSTS = (
    "/admin/tenants/new",
    "/admin/tenants/{tenant_id}/commission",
    "/admin/tenants/{tenant_id}/active",
    "/admin/webhooks/1/replay",
    "/admin/outbox/1/retry",
    "/admin/logout",
)


def _owner_client(app: Flask, tenant: Tenant) -> FlaskClient:
    client = app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = tenant.owner.id  # type: ignore[attr-defined]
        session["session_version"] = tenant.owner.session_version  # type: ignore[attr-defined]
        # Even with the admin keys forged to name the owner, an owner is no admin.
        session["admin_user_id"] = tenant.owner.id  # type: ignore[attr-defined]
        session["admin_session_version"] = tenant.owner.session_version  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("who", ["anonymous", "owner"])
def test_admin_is_404_for_owners_and_anonymous_visitors(
    app: Flask, app_ctx: Flask, who: str
) -> None:
    tenant = make_tenant()
    client = app.test_client() if who == "anonymous" else _owner_client(app, tenant)
    before = tenant.commission_percent
    for path in ADMIN_PAGES:
        assert client.get(path.format(tenant_id=tenant.id)).status_code == 404, path
    for path in ADMIN_POSTS:
        response = client.post(
            path.format(tenant_id=tenant.id), data={"commission_percent": "40", "is_active": "0"}
        )
        assert response.status_code == 404, path
    db.session.refresh(tenant)
    assert tenant.commission_percent == before and tenant.is_active


def test_an_owner_cannot_log_in_to_admin(app: Flask, app_ctx: Flask) -> None:
    tenant = make_tenant()
    response = app.test_client().post(
        "/admin/login",
        data={"email": tenant.owner.email, "password": tenant.owner_password},  # type: ignore[attr-defined]
    )
    assert response.status_code == 400
    assert b"do not match" in response.data


def test_wrong_password_is_refused(app: Flask, platform_admin: User) -> None:
    response = app.test_client().post(
        "/admin/login", data={"email": platform_admin.email, "password": "wrong-password"}
    )
    assert response.status_code == 400
    assert app.test_client().get("/admin/").status_code == 404


def test_admin_pages_render_for_a_platform_admin(admin_client: FlaskClient, app_ctx: Flask) -> None:
    tenant = make_tenant(name="Searchable Studio")
    for path in ADMIN_PAGES:
        response = admin_client.get(path.format(tenant_id=tenant.id))
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store"
    assert admin_client.get("/admin/tenants/999999999").status_code == 404


def test_tenant_search_and_its_htmx_partial(admin_client: FlaskClient, app_ctx: Flask) -> None:
    marker = uuid.uuid4().hex[:8]
    make_tenant(name=f"Bluebird {marker}")
    make_tenant(name="Someone Else")
    page = admin_client.get(f"/admin/?q={marker}").get_data(as_text=True)
    assert f"Bluebird {marker}" in page and "Someone Else" not in page
    assert "<html" in page
    partial = admin_client.get(f"/admin/?q={marker}", headers={"HX-Request": "true"})
    assert "<html" not in partial.get_data(as_text=True)
    assert f"Bluebird {marker}" in partial.get_data(as_text=True)
    assert "HX-Request" in partial.headers["Vary"]
    # A history restore (htmx had no copy of the page) gets the whole page, as a first visit.
    restored = admin_client.get(
        f"/admin/?q={marker}",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restored.get_data(as_text=True)


def test_creating_a_tenant_shows_its_keys_once(admin_client: FlaskClient, app_ctx: Flask) -> None:
    slug = f"new-{uuid.uuid4().hex[:8]}"
    response = admin_client.post(
        "/admin/tenants/new",
        data={
            "name": "New Studio",
            "slug": slug,
            "owner_email": f"{slug}@example.com",
            "owner_password": "long enough password",
            "commission_percent": "10",
        },
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"pk_live_{slug}_" in page and f"sk_live_{slug}_" in page
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug))
    assert tenant is not None and tenant.commission_percent == Decimal("10.00")
    assert "sk_live_" not in admin_client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)


def test_creating_a_tenant_shows_errors_beside_fields(admin_client: FlaskClient) -> None:
    response = admin_client.post(
        "/admin/tenants/new",
        data={
            "name": "X",
            "slug": "Bad Slug!",
            "owner_email": "a@b.example",
            "owner_password": "long enough password",
            "commission_percent": "12.5",
        },
    )
    assert response.status_code == 400
    assert 'id="slug-error"' in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ["50.01", "-1", "abc", ""])
def test_commission_must_stay_within_0_and_50(
    admin_client: FlaskClient, app_ctx: Flask, value: str
) -> None:
    tenant = make_tenant(commission_percent="12.5")
    # The refused form rolls its session back; requests here share the test's session.
    db.session.commit()
    response = admin_client.post(
        f"/admin/tenants/{tenant.id}/commission", data={"commission_percent": value}
    )
    assert response.status_code == 400
    assert 'id="commission_percent-error"' in response.get_data(as_text=True)
    db.session.refresh(tenant)
    assert tenant.commission_percent == Decimal("12.50")


def test_commission_change_is_saved_and_audited(
    admin_client: FlaskClient, app_ctx: Flask, platform_admin: User
) -> None:
    tenant = make_tenant(commission_percent="12.5")
    response = admin_client.post(
        f"/admin/tenants/{tenant.id}/commission", data={"commission_percent": "50"}
    )
    assert response.status_code == 302
    db.session.refresh(tenant)
    assert tenant.commission_percent == Decimal("50.00")
    with tenant_scope(tenant):
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "tenant.commission"))
    assert entry is not None and entry.user_id == platform_admin.id


def test_deactivating_a_tenant_closes_its_api(admin_client: FlaskClient, app_ctx: Flask) -> None:
    tenant = make_tenant()
    key = {"X-Tenant-Key": tenant.issued_keys.public_key}  # type: ignore[attr-defined]
    assert admin_client.get("/v1/packages", headers=key).status_code == 200
    admin_client.post(f"/admin/tenants/{tenant.id}/active", data={"is_active": "0"})
    db.session.refresh(tenant)
    assert tenant.is_active is False
    assert admin_client.get("/v1/packages", headers=key).status_code == 404
    admin_client.post(f"/admin/tenants/{tenant.id}/active", data={"is_active": "1"})
    assert admin_client.get("/v1/packages", headers=key).status_code == 200


def _booking(tenant: Tenant, day_offset: int, total: int, commission: int, status) -> None:  # noqa: ANN001
    from mais.booking import today

    with tenant_scope(tenant):
        db.session.add(
            Booking(
                tenant_id=tenant.id,
                reference=uuid.uuid4().hex[:12],
                on_date=today() + timedelta(days=day_offset),
                package_title="Courthouse",
                package_price_cents=total,
                couple_name="Ada",
                email="ada@example.com",
                total_cents=total,
                currency="usd",
                commission_percent=Decimal("12.5"),
                commission_cents=commission,
                status=status,
            )
        )
        db.session.flush()


def test_per_tenant_figures_count_confirmed_bookings(
    admin_client: FlaskClient, app_ctx: Flask
) -> None:
    tenant, other = make_tenant(), make_tenant()
    _booking(tenant, 30, 100000, 12500, BookingStatus.CONFIRMED)
    _booking(tenant, 31, 50000, 6250, BookingStatus.CONFIRMED)
    _booking(tenant, 32, 99900, 12488, BookingStatus.CANCELLED)
    _booking(other, 30, 777700, 97213, BookingStatus.CONFIRMED)
    page = admin_client.get(f"/admin/tenants/{tenant.id}").get_data(as_text=True)
    assert "$1,500.00" in page and "$187.50" in page
    assert "$7,777.00" not in page
    assert "ada@example.com" not in page


def _failed_event(tenant: Tenant) -> WebhookEvent:
    event = WebhookEvent(
        provider_event_id=f"evt_{uuid.uuid4().hex}",
        type="account.updated",
        tenant_id=tenant.id,
        status=WebhookStatus.FAILED,
        attempts=1,
        last_error="RuntimeError: the handler failed",
        payload={
            "id": "evt_x",
            "type": "account.updated",
            "data": {
                "object": {
                    "id": tenant.stripe_account_id,
                    "charges_enabled": True,
                    "details_submitted": True,
                    "payouts_enabled": True,
                }
            },
        },
    )
    with platform_scope("test: a failed webhook event"):
        db.session.add(event)
        db.session.flush()
    return event


def test_failed_webhooks_are_listed_and_replayed_once(
    admin_client: FlaskClient, app_ctx: Flask
) -> None:
    tenant = make_tenant(onboarded=False)
    tenant.stripe_account_id = f"acct_{uuid.uuid4().hex[:12]}"
    db.session.flush()
    event = _failed_event(tenant)

    page = admin_client.get("/admin/webhooks").get_data(as_text=True)
    assert event.provider_event_id in page and "RuntimeError: the handler failed" in page

    response = admin_client.post(f"/admin/webhooks/{event.id}/replay")
    assert response.status_code == 302
    with platform_scope("test: reading the event"):
        db.session.refresh(event)
        assert event.status == WebhookStatus.PROCESSED
        attempts = event.attempts
    db.session.refresh(tenant)
    assert tenant.onboarding_state.value == "complete"

    # A second replay (a double click, a stale page) does nothing.
    admin_client.post(f"/admin/webhooks/{event.id}/replay")
    with platform_scope("test: reading the event"):
        db.session.refresh(event)
        assert event.status == WebhookStatus.PROCESSED and event.attempts == attempts
        events = db.session.scalar(
            select(func.count()).where(WebhookEvent.provider_event_id == event.provider_event_id)
        )
    assert events == 1
    assert event.provider_event_id not in admin_client.get("/admin/webhooks").get_data(as_text=True)


def test_outbox_state_and_retry(admin_client: FlaskClient, app_ctx: Flask) -> None:
    message = OutboxMessage(
        dedup_key=f"test:{uuid.uuid4().hex}",
        template="booking_confirmation",
        to_email="couple@example.com",
        subject="Booked",
        body_text="Hello",
        status=OutboxStatus.DEAD,
        attempts=5,
        last_error="ConnectionRefusedError: 111",
    )
    db.session.add(message)
    db.session.flush()
    page = admin_client.get("/admin/outbox").get_data(as_text=True)
    assert "ConnectionRefusedError" in page
    assert "<dt>Backend</dt><dd>simple</dd>" in page
    assert "couple@example.com" not in page and "c***@example.com" in page

    assert admin_client.post(f"/admin/outbox/{message.id}/retry").status_code == 302
    db.session.refresh(message)
    assert message.status == OutboxStatus.PENDING and message.attempts == 0
    message.status = OutboxStatus.SENT
    db.session.flush()
    again = admin_client.post(f"/admin/outbox/{message.id}/retry", follow_redirects=True)
    assert "was sent already" in again.get_data(as_text=True)


def test_logout_ends_the_admin_session_everywhere(admin_client: FlaskClient) -> None:
    copied = admin_client.get_cookie("session")
    assert copied is not None
    assert admin_client.post("/admin/logout").status_code == 302
    assert admin_client.get("/admin/").status_code == 404
    # A copy of the cookie taken before logout is signed and well-formed, but revoked.
    admin_client.set_cookie("session", copied.value)
    assert admin_client.get("/admin/").status_code == 404
    assert admin_client.post("/admin/logout").status_code == 404


def test_a_stranger_cannot_lock_an_admin_out_of_a_browser_that_signed_in_before(
    separate_app: Callable[..., Flask], platform_admin: User
) -> None:
    application = separate_app(RATELIMIT_ENABLED=True)

    def attempt(client: FlaskClient, password: str, address: str) -> TestResponse:
        return client.post(
            "/admin/login",
            data={"email": platform_admin.email, "password": password},
            environ_base={"REMOTE_ADDR": address},
        )

    admins_browser = application.test_client()
    assert attempt(admins_browser, ADMIN_PASSWORD, "192.0.2.1").status_code == 302
    assert admins_browser.get_cookie("mais_device") is not None
    admins_browser.post("/admin/logout", environ_base={"REMOTE_ADDR": "192.0.2.1"})

    stranger = application.test_client()
    for n in range(10):
        assert attempt(stranger, f"guess {n}", f"198.51.100.{n}").status_code == 400
    refused = attempt(application.test_client(), ADMIN_PASSWORD, "203.0.113.7")
    assert refused.status_code == 429
    assert "for this account" in refused.get_data(as_text=True)

    assert attempt(admins_browser, "not the password", "192.0.2.1").status_code == 400
    assert attempt(admins_browser, ADMIN_PASSWORD, "192.0.2.1").status_code == 302
    assert admins_browser.get("/admin/").status_code == 200


def test_admin_forms_need_a_csrf_token(database_url: str, tmp_path, platform_admin: User) -> None:  # noqa: ANN001
    from app import create_app

    from ..conftest import app_config

    application = create_app(app_config(database_url, tmp_path, WTF_CSRF_ENABLED=True))
    client = application.test_client()
    response = client.post(
        "/admin/login", data={"email": platform_admin.email, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 400
    with application.app_context():
        db.engine.dispose()


def test_admin_login_is_rate_limited_per_address(
    database_url: str, tmp_path, platform_admin: User
) -> None:  # noqa: ANN001
    from app import create_app
    from mais.extensions import limiter

    from ..conftest import app_config

    was_enabled = limiter.enabled
    application = create_app(app_config(database_url, tmp_path, RATELIMIT_ENABLED=True))
    try:
        client = application.test_client()
        wrong = {"email": platform_admin.email, "password": "not the password"}
        statuses = [client.post("/admin/login", data=wrong).status_code for _ in range(5)]
        assert statuses == [400] * 5
        blocked = client.post(
            "/admin/login", data={"email": platform_admin.email, "password": ADMIN_PASSWORD}
        )
        assert blocked.status_code == 429
        assert "Too many attempts" in blocked.get_data(as_text=True)
        assert client.get("/admin/login").status_code == 200
    finally:
        limiter.enabled = was_enabled
        with application.app_context():
            db.engine.dispose()
