"""The couple's selection, carried between steps in signed URL parameters and form fields.

The widget sets no cookies (a third-party frame would lose them anyway), so everything the next
step needs travels with the request, signed with the application's secret so that a couple
cannot edit a price-bearing choice or replay another tenant's selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from mais.errors import DomainError

_SELECTION_SALT = "mais.widget.selection"
_BOOKING_SALT = "mais.widget.booking"
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


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def sign_selection(tenant_id: int, selection: Selection) -> str:
    payload: dict[str, Any] = {"t": tenant_id, "p": selection.package_slug}
    if selection.addon_ids:
        payload["a"] = list(selection.addon_ids)
    if selection.on_date:
        payload["d"] = selection.on_date.isoformat()
    if selection.couple:
        payload["c"] = selection.couple
    return _serializer(_SELECTION_SALT).dumps(payload)


def load_selection(tenant_id: int, token: str | None) -> Selection:
    """The selection in ``token``; ``TamperedState`` if it was altered, expired or belongs to
    another tenant."""
    try:
        payload = _serializer(_SELECTION_SALT).loads(token or "", max_age=SELECTION_MAX_AGE)
        if payload["t"] != tenant_id:
            raise TamperedState()
        return Selection(
            package_slug=str(payload["p"]),
            addon_ids=tuple(int(a) for a in payload.get("a", ())),
            on_date=date.fromisoformat(payload["d"]) if payload.get("d") else None,
            couple={name: str(payload.get("c", {}).get(name, "")) for name in COUPLE_FIELDS}
            if payload.get("c")
            else {},
        )
    except (BadSignature, KeyError, TypeError, ValueError):
        raise TamperedState() from None


def sign_booking(tenant_id: int, hold_id: str) -> str:
    return _serializer(_BOOKING_SALT).dumps({"t": tenant_id, "h": hold_id})


def load_booking(tenant_id: int, token: str | None) -> str:
    """The hold id inside a signed booking reference of this tenant."""
    try:
        payload = _serializer(_BOOKING_SALT).loads(token or "", max_age=BOOKING_MAX_AGE)
        if payload["t"] != tenant_id:
            raise TamperedState()
        return str(payload["h"])
    except (BadSignature, KeyError, TypeError):
        raise TamperedState() from None
