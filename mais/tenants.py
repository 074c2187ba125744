"""Tenants, their owners and their keys."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from .errors import Conflict, DomainError
from .extensions import db
from .keys import encrypt_secret, new_public_key, new_secret_key, secret_matches, slug_from_key
from .models import Tenant, User

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
RESERVED_SLUGS = frozenset({"admin", "api", "portal", "static", "widget", "book", "health", "www"})
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class IssuedKeys:
    """Keys as shown to the owner exactly once."""

    public_key: str
    secret_key: str


def normalize_email(email: str) -> str:
    return email.strip().lower()


def validate_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not SLUG_PATTERN.match(slug):
        raise DomainError(
            "Use 3 to 63 lower-case letters, digits and hyphens, starting and ending with a "
            "letter or digit.",
            field="slug",
        )
    if slug in RESERVED_SLUGS:
        raise DomainError("That address is reserved; choose another.", field="slug")
    return slug


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            f"Use at least {MIN_PASSWORD_LENGTH} characters for the password.", field="password"
        )
    return password


def validate_commission_percent(value: Decimal | str | float) -> Decimal:
    try:
        percent = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise DomainError("Enter a percentage such as 12.5.", field="commission_percent") from None
    if not Decimal(0) <= percent <= Decimal(50):
        raise DomainError(
            "The commission must be between 0 and 50 percent.", field="commission_percent"
        )
    return percent


def email_in_use(email: str) -> bool:
    return db.session.scalar(select(func.count()).where(User.email == normalize_email(email))) > 0


def create_tenant(
    *,
    slug: str,
    name: str,
    owner_email: str,
    owner_password: str,
    commission_percent: Decimal | None = None,
    currency: str = "usd",
    allowed_origins: list[str] | None = None,
) -> tuple[Tenant, User, IssuedKeys]:
    """Create a tenant and its owner; the keys are returned once and never again."""
    slug = validate_slug(slug)
    name = name.strip()
    if not name:
        raise DomainError("Enter the business name.", field="name")
    email = normalize_email(owner_email)
    if "@" not in email:
        raise DomainError("Enter an email address such as you@example.com.", field="email")
    validate_password(owner_password)
    if db.session.scalar(select(func.count()).where(Tenant.slug == slug)):
        raise Conflict("That address is taken; choose another.", field="slug")
    if email_in_use(email):
        raise Conflict("An account with that email exists; log in instead.", field="email")

    keys = IssuedKeys(new_public_key(slug), new_secret_key(slug))
    tenant = Tenant(
        slug=slug,
        name=name,
        currency=currency.lower(),
        public_key=keys.public_key,
        secret_key_ciphertext=encrypt_secret(keys.secret_key),
        secret_key_hint=keys.secret_key[-4:],
        allowed_origins=list(allowed_origins or []),
        ical_export_token=secrets.token_urlsafe(32),
    )
    if commission_percent is not None:
        tenant.commission_percent = validate_commission_percent(commission_percent)
    db.session.add(tenant)
    db.session.flush()
    owner = User(
        email=email, password_hash=generate_password_hash(owner_password), tenant_id=tenant.id
    )
    db.session.add(owner)
    db.session.flush()
    return tenant, owner, keys


def create_platform_admin(email: str, password: str) -> User:
    email = normalize_email(email)
    validate_password(password)
    if email_in_use(email):
        raise Conflict("An account with that email exists.", field="email")
    admin = User(email=email, password_hash=generate_password_hash(password), tenant_id=None)
    db.session.add(admin)
    db.session.flush()
    return admin


def find_tenant_by_public_key(key: str | None) -> Tenant | None:
    """The tenant a public key belongs to; an unknown or rotated-away key finds none."""
    if not key or slug_from_key(key) is None or not key.startswith("pk_live_"):
        return None
    return db.session.execute(select(Tenant).where(Tenant.public_key == key)).scalar_one_or_none()


def find_tenant_by_secret_key(key: str | None) -> Tenant | None:
    if not key or not key.startswith("sk_live_"):
        return None
    slug = slug_from_key(key)
    if slug is None:
        return None
    tenant = db.session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()
    if tenant is None or not secret_matches(tenant.secret_key_ciphertext, key):
        return None
    return tenant


def find_tenant_by_slug(slug: str) -> Tenant | None:
    return db.session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()


def tenant_id_for_slug(slug: str) -> int | None:
    """Just the id: for hot paths that need no more of the tenant than its cache keys."""
    return db.session.execute(select(Tenant.id).where(Tenant.slug == slug)).scalar_one_or_none()


def rotate_secret_key(tenant: Tenant) -> str:
    """Replace the secret key; the old one stops working at once. Returns the new key once."""
    key = new_secret_key(tenant.slug)
    tenant.secret_key_ciphertext = encrypt_secret(key)
    tenant.secret_key_hint = key[-4:]
    return key


def rotate_public_key(tenant: Tenant) -> str:
    key = new_public_key(tenant.slug)
    tenant.public_key = key
    return key
