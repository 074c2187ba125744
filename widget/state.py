"""The couple's selection, carried between steps in request parameters and form fields.

The widget sets no cookies (a third-party frame would lose them anyway), so everything the next
step needs travels with the request, in one of two forms:

- the *signed* token (``itsdangerous``: readable, tamper-evident) names only non-personal
  choices (package, add-ons, date). It is the only one that goes into URLs: links, GET forms,
  the browser's history.
- the *sealed* token (AES-256-GCM under a key derived from ``MAIS_SECRETS_KEY``) also carries the
  couple's details, which must never be readable in a URL (history, access logs, Referer, the
  provider's cancel URL). It travels only in POST bodies; once a hold exists the details live
  on the hold, server-side.

Both are bound to their tenant, so a couple cannot edit a price-bearing choice or replay another
tenant's selection.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidTag
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from mais.errors import DomainError
from mais.keys import seal, unseal

_SELECTION_SALT = "mais.widget.selection"
_BOOKING_SALT = "mais.widget.booking"
_SEALED_PURPOSE = "mais:widget-selection:v1"
# Tells a sealed token from a signed one, whose payload (base64 of JSON) starts with "ey".
_SEALED_PREFIX = "c1."
# Long enough to fill in the form over a slow afternoon; short enough that stale prices expire.
SELECTION_MAX_AGE = 24 * 3600
BOOKING_MAX_AGE = 90 * 24 * 3600
COUPLE_FIELDS = ("couple_name", "partner_name", "email", "phone")


class TamperedState(DomainError):
    """A signed selection or booking reference failed its signature check or expired."""

    def __init__(self) -> None:
        super().__init__(
            "This booking link is damaged or has expired. Please start your booking again."
        )


@dataclass(frozen=True)
class Selection:
    package_slug: str
    addon_ids: tuple[int, ...] = ()
    on_date: date | None = None
    couple: dict[str, str] = field(default_factory=dict)

    def with_date(self, on_date: date) -> Selection:
        return replace(self, on_date=on_date)

    def with_couple(self, couple: dict[str, str]) -> Selection:
        return replace(self, couple={name: couple.get(name, "") for name in COUPLE_FIELDS})

    def without_couple(self) -> Selection:
        return replace(self, couple={})


@dataclass(frozen=True)
class BookingReference:
    """A signed pointer to a hold: all a URL (success, cancel, confirmation) ever names."""

    hold_id: str
    # Made for the way back from a checkout the couple left without paying.
    left_checkout: bool = False


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _payload(tenant_id: int, selection: Selection) -> dict[str, Any]:
    payload: dict[str, Any] = {"t": tenant_id, "p": selection.package_slug}
    if selection.addon_ids:
        payload["a"] = list(selection.addon_ids)
    if selection.on_date:
        payload["d"] = selection.on_date.isoformat()
    return payload


def link_token(tenant_id: int, selection: Selection) -> str:
    """The selection's non-personal choices, signed: the only form that may go into a URL."""
    return _serializer(_SELECTION_SALT).dumps(_payload(tenant_id, selection))


def sign_selection(tenant_id: int, selection: Selection) -> str:
    """The token a POST form carries: the signed link token, or, when the selection names the
    couple, a sealed one (never readable, even if it ended up in a URL by mistake)."""
    if not selection.couple:
        return link_token(tenant_id, selection)
    payload = {**_payload(tenant_id, selection), "c": selection.couple, "i": int(time.time())}
    sealed = seal(json.dumps(payload).encode(), _SEALED_PURPOSE, _context(tenant_id))
    return _SEALED_PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def _context(tenant_id: int) -> bytes:
    return str(tenant_id).encode()


def load_selection(tenant_id: int, token: str | None, *, with_couple: bool = False) -> Selection:
    """The selection in ``token``; ``TamperedState`` if it was altered, expired or belongs to
    another tenant. The couple's details are read only when the caller asks (``with_couple``,
    from a POST body): a GET never takes them, whatever its URL says."""
    token = token or ""
    try:
        if token.startswith(_SEALED_PREFIX):
            payload = _open_sealed(tenant_id, token.removeprefix(_SEALED_PREFIX))
        else:
            payload = _serializer(_SELECTION_SALT).loads(token, max_age=SELECTION_MAX_AGE)
        if payload["t"] != tenant_id:
            raise TamperedState()
        couple = payload.get("c") if with_couple else None
        return Selection(
            package_slug=str(payload["p"]),
            addon_ids=tuple(int(a) for a in payload.get("a", ())),
            on_date=date.fromisoformat(payload["d"]) if payload.get("d") else None,
            couple={name: str(couple.get(name, "")) for name in COUPLE_FIELDS} if couple else {},
        )
    except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
        raise TamperedState() from None


def _open_sealed(tenant_id: int, text: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(unseal(raw, _SEALED_PURPOSE, _context(tenant_id)))
    except (InvalidTag, binascii.Error, ValueError):
        raise TamperedState() from None
    if not isinstance(payload, dict) or time.time() - payload["i"] > SELECTION_MAX_AGE:
        raise TamperedState()
    return payload


def sign_booking(tenant_id: int, hold_id: str, *, left_checkout: bool = False) -> str:
    payload: dict[str, Any] = {"t": tenant_id, "h": hold_id}
    if left_checkout:
        payload["l"] = 1
    return _serializer(_BOOKING_SALT).dumps(payload)


def load_reference(tenant_id: int, token: str | None) -> BookingReference:
    """The signed booking reference ``token`` of this tenant."""
    try:
        payload = _serializer(_BOOKING_SALT).loads(token or "", max_age=BOOKING_MAX_AGE)
        if payload["t"] != tenant_id:
            raise TamperedState()
        return BookingReference(str(payload["h"]), left_checkout=bool(payload.get("l")))
    except (BadSignature, KeyError, TypeError):
        raise TamperedState() from None


def load_booking(tenant_id: int, token: str | None) -> str:
    """The hold id inside a signed booking reference of this tenant."""
    return load_reference(tenant_id, token).hold_id
