"""Reading posted form fields into the values domain functions take."""

from __future__ import annotations

from datetime import date

from flask import request

from mais.errors import DomainError
from mais.media import max_upload_bytes
from mais.money import parse_money


def text(name: str, default: str = "") -> str:
    return (request.form.get(name) or default).strip()


def money(name: str, field: str = "price") -> int:
    try:
        return parse_money(request.form.get(name) or "")
    except DomainError as error:
        raise DomainError(error.message, field=field) from None


def optional_int(name: str) -> int | None:
    value = (request.form.get(name) or "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise DomainError("Choose one of the options.", field=name) from None


def int_list(name: str) -> list[int]:
    try:
        return [int(v) for v in request.form.getlist(name)]
    except ValueError:
        raise DomainError("Choose among the options.", field=name) from None


def a_date(name: str, *, required: bool = True) -> date | None:
    value = (request.form.get(name) or "").strip()
    if not value:
        if required:
            raise DomainError("Enter a date.", field=name)
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError("Enter a date such as 2026-06-20.", field=name) from None


def checkbox(name: str) -> bool:
    return request.form.get(name) in ("1", "on", "true", "yes")


def upload(name: str) -> bytes | None:
    """The bytes of an uploaded file; reading stops one byte past the limit, so a huge file
    is refused without being held in memory."""
    storage = request.files.get(name)
    if storage is None or not storage.filename:
        return None
    return storage.stream.read(max_upload_bytes() + 1)


def errors_of(error: DomainError) -> dict[str, str]:
    return {error.field or "form": error.message}
