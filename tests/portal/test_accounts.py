"""Signup, login sessions, rate limits, CSRF and password reset."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from mais import accounts
from mais.extensions import db
from mais.models import OutboxMessage, PasswordResetToken, Tenant, User
from mais.models.base import utcnow
from mais.tenants import create_platform_admin

from .conftest import log_in


def test_signup_creates_tenant_and_owner_and_shows_both_keys_once(client, app_ctx):
    response = client.post(
        "/portal/signup",
        data={
            "name": "Fern & Fig",
            "slug": "fern-and-fig",
            "email": " Owner@Fern.example ",
            "password": "a long enough password",
        },
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == "fern-and-fig"))
    assert tenant.public_key in body
    secret = re.search(r"sk_live_fern-and-fig_[A-Za-z0-9]{32}", body).group(0)
    assert "only time the secret key is shown" in body
    assert response.headers["Cache-Control"] == "no-store"
    owner = db.session.scalar(select(User).where(User.tenant_id == tenant.id))
    assert owner.email == "owner@fern.example"
    # logged in; and the secret key is never shown again
    settings = client.get("/portal/settings").get_data(as_text=True)
    assert tenant.public_key in settings and secret not in settings


def test_signup_errors_appear_beside_their_field(client, app_ctx):
    response = client.post(
        "/portal/signup",
        data={
            "name": "X",
            "slug": "Bad Slug!",
            "email": "a@b.example",
            "password": "long enough pw",
        },
    )
    assert response.status_code == 400
    assert 'id="f-slug-error"' in response.get_data(as_text=True)


def test_login_starts_a_new_session_and_logout_kills_old_cookies(client, tenant):
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    log_in(client, tenant.owner.email, tenant.owner_password)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["user_id"] == tenant.owner.id
    stolen = client.get_cookie("session").value
    assert client.get("/portal/").status_code == 200

    client.post("/portal/logout")
    assert client.get("/portal/").status_code == 302
    client.set_cookie("session", stolen)
    # the copied cookie is signed and well-formed, but its session version is revoked
    assert client.get("/portal/").status_code == 302


def test_session_cookie_flags(app, client, tenant):
    response = client.post(
        "/portal/login", data={"email": tenant.owner.email, "password": tenant.owner_password}
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_wrong_password_and_platform_admins_are_refused(client, tenant):
    response = client.post("/portal/login", data={"email": tenant.owner.email, "password": "nope"})
    assert response.status_code == 400
    assert "do not match" in response.get_data(as_text=True)
    create_platform_admin("root@platform.example", "admin password 123")
    response = client.post(
        "/portal/login", data={"email": "root@platform.example", "password": "admin password 123"}
    )
    assert response.status_code == 400
    assert "admin area" in response.get_data(as_text=True)
    assert client.get("/portal/").status_code == 302


def test_sixth_login_attempt_per_account_and_per_ip_is_refused_with_a_message(separate_app):
    app = separate_app(RATELIMIT_ENABLED=True)
    client = app.test_client()
    form = {"email": "someone@example.com", "password": "wrong"}
    # per account: a different address each time does not help
    for n in range(5):
        response = client.post(
            "/portal/login", data=form, environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}
        )
        assert response.status_code == 400
    sixth = client.post("/portal/login", data=form, environ_base={"REMOTE_ADDR": "10.0.0.99"})
    assert sixth.status_code == 429
    assert "Too many attempts" in sixth.get_data(as_text=True)
    # per IP: a different account each time does not help
    for n in range(5):
        response = client.post(
            "/portal/login",
            data={"email": f"other{n}@example.com", "password": "wrong"},
            environ_base={"REMOTE_ADDR": "10.1.1.1"},
        )
        assert response.status_code == 400
    sixth = client.post(
        "/portal/login",
        data={"email": "fresh@example.com", "password": "wrong"},
        environ_base={"REMOTE_ADDR": "10.1.1.1"},
    )
    assert sixth.status_code == 429
    # the login page itself still loads
    assert client.get("/portal/login", environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code == 200


def test_posts_without_the_csrf_token_are_rejected(separate_app):
    app = separate_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    form = {"email": "someone@example.com", "password": "wrong"}
    refused = client.post("/portal/login", data=form)
    assert refused.status_code == 400
    assert "Form expired" in refused.get_data(as_text=True)
    page = client.get("/portal/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert f'"X-CSRFToken": "{token}"' in page  # for HTMX requests
    accepted = client.post("/portal/login", data={**form, "csrf_token": token})
    assert accepted.status_code == 400 and "do not match" in accepted.get_data(as_text=True)
    over_htmx = client.post("/portal/login", data=form, headers={"X-CSRFToken": token})
    assert "do not match" in over_htmx.get_data(as_text=True)


def _reset_link(email: str) -> str:
    message = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.to_email == email, OutboxMessage.template == "password_reset")
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None and message.subject == "Reset your MAIS password"
    return re.search(r"http://localhost(/portal/reset\?token=\S+)", message.body_text).group(1)


def test_password_reset_link_works_once(client, tenant):
    email = tenant.owner.email
    response = client.post("/portal/forgot", data={"email": email.upper()})
    assert "If an account uses that address" in response.get_data(as_text=True)
    link = _reset_link(email)
    token = link.split("token=")[1]
    stored = db.session.scalars(
        select(PasswordResetToken).where(PasswordResetToken.user_id == tenant.owner.id)
    ).all()
    assert token not in {row.token_hash for row in stored}  # only the hash is kept

    assert client.get(link).status_code == 200
    done = client.post("/portal/reset", data={"token": token, "password": "brand new password"})
    assert done.status_code == 302 and client.get("/portal/").status_code == 200
    again = client.post("/portal/reset", data={"token": token, "password": "another new password"})
    assert again.status_code == 400
    assert "invalid, used or expired" in again.get_data(as_text=True)

    fresh = type(client)(client.application)
    log_in(fresh, email, "brand new password")


def test_password_reset_token_expires_after_an_hour(client, tenant):
    client.post("/portal/forgot", data={"email": tenant.owner.email})
    token = _reset_link(tenant.owner.email).split("token=")[1]
    mine = PasswordResetToken.user_id == tenant.owner.id
    row = db.session.scalars(select(PasswordResetToken).where(mine)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.post("/portal/reset", data={"token": token, "password": "brand new password"})
    assert response.status_code == 400


def test_password_reset_for_an_unknown_email_says_the_same_and_sends_nothing(client, app_ctx):
    response = client.post("/portal/forgot", data={"email": "nobody@example.com"})
    assert "If an account uses that address" in response.get_data(as_text=True)
    sent = select(OutboxMessage).where(OutboxMessage.to_email == "nobody@example.com")
    assert db.session.scalars(sent).all() == []


def test_reset_tokens_are_valid_for_one_hour(tenant):
    assert accounts.request_password_reset(tenant.owner.email, reset_url_for=lambda t: t)
    mine = PasswordResetToken.user_id == tenant.owner.id
    row = db.session.scalars(select(PasswordResetToken).where(mine)).one()
    assert row.expires_at - row.created_at == timedelta(hours=1)
    assert row.used_at is None
