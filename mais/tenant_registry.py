"""The register of tenants: creating them and their owners, finding them by slug or key,
their keys and their time zone. (Isolation between tenants lives in ``mais.tenancy``.)"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from .errors import Conflict, DomainError
from .extensions import db
from .keys import encrypt_secret, new_public_key, new_secret_key, secret_matches, slug_from_key
from .models import Tenant, User

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
RESERVED_SLUGS = frozenset({"admin", "api", "portal", "static", "widget", "book", "health", "www"})
MIN_PASSWORD_LENGTH = 10
DEFAULT_TIME_ZONE = "UTC"


@dataclass(frozen=True)
class IssuedKeys:
    """Keys as shown to the owner exactly once."""

    public_key: str
    secret_key: str


EMAIL_MESSAGE = "Enter an email address such as name@example.com."


def validate_email_address(email: str | None, *, field: str = "email") -> str:
    """The address as MAIS stores and compares it (trimmed, normalized, lower case), or a
    ``DomainError`` on ``field`` that says what to enter. Every address anyone types (couples,
    owners, admins, password resets) goes through here. Deliverability is not checked: that
    would need DNS, and the outbox reports mail that cannot be delivered."""
    try:
        checked = validate_email((email or "").strip(), check_deliverability=False)
    except EmailNotValidError:
        raise DomainError(EMAIL_MESSAGE, field=field) from None
    return checked.normalized.lower()


def normalize_email(email: str) -> str:
    """The lookup key of an address someone logs in with: as ``validate_email_address`` stores
    it, or trimmed and lower-cased when it is not valid (and so matches no account)."""
    try:
        return validate_email_address(email)
    except DomainError:
        return (email or "").strip().lower()


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


@functools.cache
def known_time_zones() -> frozenset[str]:
    # Scanning the zone database is slow; its contents do not change while the process runs.
    return frozenset(available_timezones()) | {DEFAULT_TIME_ZONE}


@functools.cache
def time_zone_choices() -> tuple[str, ...]:
    """The zones offered in settings: regional names, without the legacy aliases."""
    legacy = (
        "posix/",
        "right/",
        "SystemV/",
        "US/",
        "Etc/",
        "Canada/",
        "Brazil/",
        "Mexico/",
        "Chile/",
    )
    return (DEFAULT_TIME_ZONE,) + tuple(
        sorted(name for name in known_time_zones() if "/" in name and not name.startswith(legacy))
    )


def validate_time_zone(name: str | None, *, field: str = "time_zone") -> str:
    """An IANA zone name such as Europe/Berlin (browsers' aliases such as Asia/Calcutta too)."""
    name = (name or "").strip()
    if name not in known_time_zones():
        raise DomainError(
            "Choose a time zone from the list, such as Europe/Berlin or America/Los_Angeles.",
            field=field,
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError("That time zone is not available; choose another.", field=field) from None
    return name


def time_zone_or_default(name: str | None) -> str:
    """The zone a browser reported at signup, or UTC when it reported none we know (the owner
    cannot correct a field they never see; settings can)."""
    try:
        return validate_time_zone(name)
    except DomainError:
        return DEFAULT_TIME_ZONE


def tenant_zone(tenant: Tenant) -> ZoneInfo:
    try:
        return ZoneInfo(tenant.time_zone or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        # Only a row edited by hand can get here; its days fall back to UTC rather than fail.
        return ZoneInfo(DEFAULT_TIME_ZONE)


def local_today(tenant: Tenant, now: datetime | None = None) -> date:
    """The tenant's current day: "today", "past" and the horizon are days in its zone."""
    return (now or datetime.now(UTC)).astimezone(tenant_zone(tenant)).date()


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
    time_zone: str = DEFAULT_TIME_ZONE,
) -> tuple[Tenant, User, IssuedKeys]:
    """Create a tenant and its owner; the keys are returned once and never again."""
    slug = validate_slug(slug)
    name = name.strip()
    if not name:
        raise DomainError("Enter the business name.", field="name")
    email = validate_email_address(owner_email)
    validate_password(owner_password)
    time_zone = validate_time_zone(time_zone)
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
        time_zone=time_zone,
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
    email = validate_email_address(email)
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
