"""Accounts (portal owners and platform admins): logging in and its rate limits, browsers an
account has signed in from, sessions that can be revoked, and password reset tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import Response, after_this_request, current_app, request
from flask_limiter.util import get_remote_address
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import DomainError
from .extensions import db, limiter
from .models import PasswordResetToken, User
from .models.base import utcnow
from .tenant_registry import normalize_email, validate_email_address, validate_password

F = TypeVar("F", bound=Callable[..., Any])

RESET_TOKEN_LIFETIME = timedelta(hours=1)
# Reset mails per account and hour, from any address: the form cannot flood an owner's inbox.
RESET_MAILS_PER_HOUR = 3
LOGIN_FAILED = "That email and password do not match an account."
RESET_INVALID = "This reset link is invalid, used or expired. Ask for a new one."

# The product rule: 5 login attempts per 15 minutes per address, counted whatever the outcome.
LOGIN_ADDRESS_LIMIT = "5 per 15 minutes"
# Failed attempts on one account (its normalized email, whether or not such an account exists,
# so that the limit reveals nothing) from every address together: this is what stops a botnet.
LOGIN_ACCOUNT_LIMIT = "10 per 15 minutes"
# A browser the account signed in from before skips the account limit, so that a stranger cannot
# lock the owner out; it has a budget of its own instead, whatever address it comes from, so that
# a stolen laptop (its cookie copied anywhere) still gets only so many guesses. Not per address:
# addresses are cheap to change, a signed cookie cannot be minted without the password.
LOGIN_DEVICE_LIMIT = "10 per 15 minutes"
ADDRESS_LIMITED = "Too many attempts from this address. Wait 15 minutes and try again."
ACCOUNT_LIMITED = (
    "Too many failed sign-in attempts for this account. Wait 15 minutes, sign in from a browser "
    "you have signed in with before, or reset your password."
)
DEVICE_LIMITED = "Too many failed sign-in attempts from this browser. Wait 15 minutes."

DEVICE_COOKIE = "mais_device"
DEVICE_LIFETIME = timedelta(days=180)
# Accounts one browser remembers (a shared office computer), newest first.
DEVICE_ACCOUNTS = 5
_DEVICE_SALT = "mais.trusted-device"
_NOT_CHECKED = object()

# Compared against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = generate_password_hash("not a real password; only here for timing")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def authenticate(email: str, password: str) -> User:
    """The user with these credentials, or a DomainError that does not say which part was wrong."""
    user = find_user_by_email(email or "")
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        raise DomainError(LOGIN_FAILED, field="password")
    if not check_password_hash(user.password_hash, password or ""):
        raise DomainError(LOGIN_FAILED, field="password")
    user.last_login_at = utcnow()
    return user


def load_session_user(user_id: object, session_version: object) -> User | None:
    """The user a session cookie names, provided the cookie has not been revoked since."""
    if not isinstance(user_id, int) or not isinstance(session_version, int):
        return None
    user = db.session.get(User, user_id)
    if user is None or user.session_version != session_version:
        return None
    return user


def end_sessions(user: User) -> None:
    """Revoke every session cookie of this user (logout, password change)."""
    user.session_version += 1


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_DEVICE_SALT)


def _read_device_cookie() -> tuple[str, list[int]] | None:
    """This browser's device id and the accounts it signed in to, if its cookie is genuine."""
    value = request.cookies.get(DEVICE_COOKIE)
    if not value:
        return None
    try:
        payload = _device_serializer().loads(value, max_age=int(DEVICE_LIFETIME.total_seconds()))
    except BadSignature:  # also an expired one
        return None
    if not isinstance(payload, dict):
        return None
    device, accounts = payload.get("d"), payload.get("u")
    if not isinstance(device, str) or not isinstance(accounts, list):
        return None
    return device, [account for account in accounts if isinstance(account, int)]


def remember_device(user: User) -> None:
    """Mark this browser as one the user signs in from: later logins from it are not subject to
    the per-account limit. It carries no session (logout leaves it, a password is still needed),
    so it is independent of ``session_version``; it is signed, so only a login can make one."""
    known = _read_device_cookie()
    device, accounts = known if known else (secrets.token_urlsafe(16), [])
    accounts = [user.id, *[account for account in accounts if account != user.id]]
    value = _device_serializer().dumps({"d": device, "u": accounts[:DEVICE_ACCOUNTS]})

    @after_this_request
    def _set_cookie(response: Response) -> Response:
        response.set_cookie(
            DEVICE_COOKIE,
            value,
            max_age=int(DEVICE_LIFETIME.total_seconds()),
            httponly=True,
            secure=current_app.config["MAIS_ENV"] == "production"
            or bool(current_app.config.get("SESSION_COOKIE_SECURE")),
            samesite="Lax",
        )
        return response


def _trusted_device() -> str | None:
    """The id of this browser when it has signed in to the account this login names before."""
    # Kept on the request, not on ``g``: an application context can outlive one request.
    cached = request.environ.get("mais.trusted_device", _NOT_CHECKED)
    if cached is not _NOT_CHECKED:
        return cached  # type: ignore[return-value]
    device = None
    known = _read_device_cookie() if request.method == "POST" else None
    if known is not None:
        user = find_user_by_email(request.form.get("email") or "")
        if user is not None and user.id in known[1]:
            device = known[0]
    request.environ["mais.trusted_device"] = device
    return device


def _is_trusted_device() -> bool:
    return _trusted_device() is not None


def _is_untrusted_device() -> bool:
    return _trusted_device() is None


def _address_key() -> str:
    return "login-address:" + (get_remote_address() or "unknown")


def _account_key() -> str:
    # A digest: fixed length whatever is posted, and the counters (Redis) hold no emails.
    email = normalize_email(request.form.get("email") or "")
    return "login-account:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def _device_key() -> str:
    return "login-device:" + (_trusted_device() or "none")


def _refused(response: Response) -> bool:
    # Both login views answer 400 exactly when they refuse the credentials.
    return response.status_code == 400


def limit_logins(view: F) -> F:
    """The rate limits of a login form's POST, the portal's and the admin's alike. The account and
    device counters are shared by both forms and count refusals only; the address one is the
    product's 5 attempts per 15 minutes. Counters live in the limiter's storage (Redis when
    configured), so every process sees the same ones."""
    post = ["POST"]
    decorators = (
        limiter.limit(
            LOGIN_ADDRESS_LIMIT, key_func=_address_key, methods=post, error_message=ADDRESS_LIMITED
        ),
        limiter.shared_limit(
            LOGIN_ACCOUNT_LIMIT,
            scope="login-account",
            key_func=_account_key,
            methods=post,
            error_message=ACCOUNT_LIMITED,
            exempt_when=_is_trusted_device,
            deduct_when=_refused,
        ),
        limiter.shared_limit(
            LOGIN_DEVICE_LIMIT,
            scope="login-device",
            key_func=_device_key,
            methods=post,
            error_message=DEVICE_LIMITED,
            exempt_when=_is_untrusted_device,
            deduct_when=_refused,
        ),
    )
    for decorate in decorators:
        view = decorate(view)
    return view


def request_password_reset(email: str, *, reset_url_for: Callable[[str], str]) -> bool:
    """Email a single-use link valid for one hour, at most ``RESET_MAILS_PER_HOUR`` times an
    hour per account whoever asks. Returns whether a mail was queued; callers must not reveal
    it, so that the form cannot be used to probe for accounts or for the limit. Raises
    ``DomainError`` when ``email`` is not an email address."""
    from . import mail  # the booking engine's outbox; imported late to keep modules independent

    # Locked so that concurrent requests for one account count each other's tokens.
    user = db.session.scalar(
        select(User).where(User.email == validate_email_address(email)).with_for_update()
    )
    if user is None:
        return False
    now = utcnow()
    sent_lately = db.session.scalar(
        select(func.count())
        .select_from(PasswordResetToken)
        .where(
            PasswordResetToken.user_id == user.id,
            PasswordResetToken.created_at > now - timedelta(hours=1),
        )
    )
    if sent_lately >= RESET_MAILS_PER_HOUR:
        return False
    token = secrets.token_urlsafe(32)
    row = PasswordResetToken(
        user_id=user.id,
        token_hash=_hash_token(token),
        created_at=now,
        expires_at=now + RESET_TOKEN_LIFETIME,
    )
    db.session.add(row)
    db.session.flush()
    mail.enqueue_mails(
        [
            mail.Mail(
                template="password_reset",
                to=user.email,
                dedup_key=f"password-reset:{row.id}",
                context={"reset_url": reset_url_for(token), "email": user.email},
                tenant_id=user.tenant_id,
            )
        ]
    )
    return True


def reset_password(token: str, new_password: str) -> User:
    """Set a new password with a valid token; the token and every other open one die with it."""
    validate_password(new_password or "")
    row = db.session.scalar(
        select(PasswordResetToken)
        .where(PasswordResetToken.token_hash == _hash_token(token or ""))
        .with_for_update()
    )
    now = utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise DomainError(RESET_INVALID, field="token")
    user = row.user
    user.password_hash = generate_password_hash(new_password)
    db.session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    end_sessions(user)
    db.session.flush()
    return user
