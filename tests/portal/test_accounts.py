"""Signup, login sessions, rate limits, CSRF and password reset."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from mais import accounts
from mais.errors import DomainError
from mais.extensions import db
from mais.models import OutboxMessage, PasswordResetToken, Tenant, User
from mais.models.base import utcnow
from mais.tenant_registry import create_platform_admin

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


def test_an_address_that_is_not_one_is_refused_everywhere_with_one_message(client, app_ctx):
    message = "Enter an email address such as name@example.com."
    signup = client.post(
        "/portal/signup",
        data={
            "name": "Fern",
            "slug": "fern",
            "email": "owner@fern",
            "password": "a long enough password",
        },
    )
    assert signup.status_code == 400
    assert 'id="f-email-error"' in signup.get_data(as_text=True)
    assert message in signup.get_data(as_text=True)
    assert db.session.scalar(select(Tenant).where(Tenant.slug == "fern")) is None
    forgot = client.post("/portal/forgot", data={"email": "owner@fern"})
    assert message in forgot.get_data(as_text=True)
    with pytest.raises(DomainError, match=message):
        create_platform_admin("admin@localhost", "a long enough password")


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


def test_login_is_limited_per_account_and_per_address_with_a_message(separate_app):
    app = separate_app(RATELIMIT_ENABLED=True)
    client = app.test_client()
    form = {"email": "someone@example.com", "password": "wrong"}
    # per account, counted although no such account exists: other addresses do not help
    for n in range(10):
        response = client.post(
            "/portal/login", data=form, environ_base={"REMOTE_ADDR": f"10.0.{n}.1"}
        )
        assert response.status_code == 400
    eleventh = client.post(
        "/portal/login",
        data={**form, "email": " SomeOne@Example.com "},
        environ_base={"REMOTE_ADDR": "10.0.99.1"},
    )
    assert eleventh.status_code == 429
    body = eleventh.get_data(as_text=True)
    assert "Too many attempts" in body and "for this account" in body
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
    assert "from this address" in sixth.get_data(as_text=True)
    # the login page itself still loads
    assert client.get("/portal/login", environ_base={"REMOTE_ADDR": "10.1.1.1"}).status_code == 200


def _post_login(client, email, password, address):  # noqa: ANN001, ANN202
    return client.post(
        "/portal/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_a_stranger_cannot_lock_the_owner_out_of_a_browser_that_signed_in_before(
    separate_app, tenant, other_tenant
):
    app = separate_app(RATELIMIT_ENABLED=True)
    email, password = tenant.owner.email, tenant.owner_password
    owners_browser = app.test_client()
    assert _post_login(owners_browser, email, password, "192.0.2.1").status_code == 302
    device = owners_browser.get_cookie("mais_device")
    assert device is not None and device.http_only and device.same_site == "Lax"
    owners_browser.post("/portal/logout", environ_base={"REMOTE_ADDR": "192.0.2.1"})

    # The stranger has a trusted browser too, but for their own account: it does not count here.
    stranger = app.test_client()
    own = _post_login(
        stranger, other_tenant.owner.email, other_tenant.owner_password, "198.51.100.1"
    )
    assert own.status_code == 302
    for n in range(10):
        guess = _post_login(stranger, email, f"guess {n}", f"198.51.100.{n + 2}")
        assert guess.status_code == 400

    # A fresh browser is refused even with the right password, and is told why.
    fresh = app.test_client()
    fresh.set_cookie("mais_device", "forged-by-the-stranger")
    refused = _post_login(fresh, email, password, "203.0.113.7")
    assert refused.status_code == 429
    body = refused.get_data(as_text=True)
    assert "for this account" in body and "browser you have signed in with before" in body
    assert fresh.get("/portal/").status_code == 302

    # The owner's browser still needs the right password, and gets in with it.
    wrong = _post_login(owners_browser, email, "not my password", "192.0.2.1")
    assert wrong.status_code == 400 and "do not match" in wrong.get_data(as_text=True)
    assert _post_login(owners_browser, email, password, "192.0.2.1").status_code == 302
    assert owners_browser.get("/portal/").status_code == 200


def test_a_trusted_browser_has_a_failure_budget_of_its_own_whatever_its_address(
    separate_app, tenant
):
    app = separate_app(RATELIMIT_ENABLED=True)
    email, password = tenant.owner.email, tenant.owner_password
    stolen_laptop = app.test_client()
    assert _post_login(stolen_laptop, email, password, "192.0.2.1").status_code == 302
    stolen_laptop.post("/portal/logout")
    for n in range(10):
        assert _post_login(stolen_laptop, email, f"guess {n}", f"10.7.{n}.1").status_code == 400
    refused = _post_login(stolen_laptop, email, password, "10.7.99.1")
    assert refused.status_code == 429
    assert "from this browser" in refused.get_data(as_text=True)


def test_the_device_cookie_is_secure_in_production(separate_app, tenant):
    app = separate_app(MAIS_ENV="production", MAIS_BASE_URL="https://mais.example")
    response = app.test_client().post(
        "/portal/login",
        data={"email": tenant.owner.email, "password": tenant.owner_password},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 302
    (device,) = [
        value
        for value in response.headers.getlist("Set-Cookie")
        if value.startswith("mais_device=")
    ]
    assert "Secure" in device and "HttpOnly" in device and "SameSite=Lax" in device
    assert "Max-Age=15552000" in device  # 180 days


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


def test_reset_mails_are_limited_per_account_whatever_the_address(client, tenant):
    email = tenant.owner.email
    answers = set()
    for n in range(accounts.RESET_MAILS_PER_HOUR + 2):
        response = client.post(
            "/portal/forgot", data={"email": email}, environ_base={"REMOTE_ADDR": f"10.9.{n}.1"}
        )
        answers.add((response.status_code, response.get_data(as_text=True)))
    # limited or not, the answer is the same: it tells nothing about the account or the limit
    assert len(answers) == 1
    mails = select(OutboxMessage).where(
        OutboxMessage.to_email == email, OutboxMessage.template == "password_reset"
    )
    assert len(db.session.scalars(mails).all()) == accounts.RESET_MAILS_PER_HOUR

    # an hour later the owner may ask again
    for row in db.session.scalars(
        select(PasswordResetToken).where(PasswordResetToken.user_id == tenant.owner.id)
    ):
        row.created_at -= timedelta(hours=1)
    db.session.commit()
    client.post("/portal/forgot", data={"email": email})
    assert len(db.session.scalars(mails).all()) == accounts.RESET_MAILS_PER_HOUR + 1
