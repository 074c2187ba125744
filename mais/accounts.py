"""Portal accounts: logging in, sessions that can be revoked, and password reset tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from .errors import DomainError
from .extensions import db
from .models import PasswordResetToken, User
from .models.base import utcnow
from .tenants import normalize_email, validate_password

RESET_TOKEN_LIFETIME = timedelta(hours=1)
LOGIN_FAILED = "That email and password do not match an account."
RESET_INVALID = "This reset link is invalid, used or expired. Ask for a new one."

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


def request_password_reset(email: str, *, reset_url_for: Callable[[str], str]) -> bool:
    """Email a single-use link valid for one hour. Returns whether an account exists; callers
    must not reveal it, so that the form cannot be used to probe for accounts."""
    from . import mail  # the booking engine's outbox; imported late to keep modules independent

    user = find_user_by_email(email or "")
    if user is None:
        return False
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = PasswordResetToken(
        user_id=user.id,
        token_hash=_hash_token(token),
        created_at=now,
        expires_at=now + RESET_TOKEN_LIFETIME,
    )
    db.session.add(row)
    db.session.flush()
    mail.enqueue_mail(
        template="password_reset",
        to=user.email,
        dedup_key=f"password-reset:{row.id}",
        context={"reset_url": reset_url_for(token), "email": user.email},
        tenant_id=user.tenant_id,
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
