"""``/v1``: the tenant's catalog and availability as JSON, for integrators.

The tenant is the one whose public key is in ``X-Tenant-Key``; its scope is entered once per
request, so another tenant's package is simply not found. Reads carry an ETag and may be
revalidated with ``If-None-Match``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from typing import Any

from flask import Response, current_app, request
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException

from mais import tenancy
from mais.booking import DayStatus, day_statuses, today
from mais.cache import AVAILABILITY, CATALOG, get_or_set
from mais.catalog import PackageView, get_active_package, list_active_packages
from mais.errors import NotFound
from mais.extensions import db, limiter
from mais.keys import slug_from_key
from mais.media import media_url
from mais.models import Tenant
from mais.tenancy import Scope
from mais.tenant_registry import find_tenant_by_public_key

from . import bp
from .openapi import openapi_document

KEY_HEADER = "X-Tenant-Key"
MAX_RANGE_DAYS = 366
EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(2100, 12, 31)
CATALOG_MAX_AGE = 60
AVAILABILITY_MAX_AGE = 30
AVAILABILITY_CACHE_SECONDS = 60
PREFLIGHT_MAX_AGE = 600


def error(message: str, status: int, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return current_app.response_class(json.dumps(body), status=status, mimetype="application/json")


def _rate_limit_key() -> str:
    """The API key when it is well formed, so each integrator has its own budget; the client
    address for keyless or malformed calls. (A made-up well-formed key gets a budget of its own,
    but every call with it is answered 401 without touching the catalog.)"""
    key = request.headers.get(KEY_HEADER, "")
    if key.startswith("pk_live_") and slug_from_key(key):
        return "api-key:" + hashlib.sha256(key.encode()).hexdigest()
    return "api-ip:" + get_remote_address()


limiter.limit(lambda: current_app.config["MAIS_API_RATE_LIMIT"], key_func=_rate_limit_key)(bp)


@bp.errorhandler(429)
def _too_many_requests(exc: HTTPException) -> Response:
    response = error("Too many requests for this key; slow down and retry shortly.", 429)
    # Flask-Limiter replaces this with the exact wait when its headers are enabled.
    response.headers["Retry-After"] = "60"
    return response


def _current_tenant() -> Tenant:
    return request.environ["mais.api_tenant"]  # type: ignore[no-any-return]


def _origin_allowed_by_any_tenant(origin: str) -> bool:
    """A preflight carries no key, so it is answered for origins some active tenant allows;
    the real response then names the origin only if the key's tenant allows it."""
    rows = db.session.scalars(
        db.select(Tenant.allowed_origins).where(Tenant.is_active.is_(True))
    ).all()
    return any(origin in (origins or []) for origins in rows)


@bp.before_request
def _resolve_tenant() -> Response | None:
    if request.method == "OPTIONS":
        return _preflight()
    if request.endpoint == "api.openapi":
        return None
    tenant = find_tenant_by_public_key(request.headers.get(KEY_HEADER))
    if tenant is None:
        return error(f"Send a valid public key in the {KEY_HEADER} header.", 401)
    if not tenant.is_active:
        return error("This business is not taking bookings.", 404)
    # On the request rather than ``g``, which may outlive a request (as in tests).
    request.environ["mais.api_tenant"] = tenant
    tenancy.enter_scope(Scope(tenant.id))
    return None


def _preflight() -> Response:
    response = current_app.response_class(status=204)
    origin = request.headers.get("Origin", "")
    if origin and _origin_allowed_by_any_tenant(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = f"{KEY_HEADER}, If-None-Match"
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    response.vary.add("Origin")
    return response


@bp.after_request
def _cors(response: Response) -> Response:
    if request.method == "OPTIONS":
        return response
    origin = request.headers.get("Origin")
    tenant = request.environ.get("mais.api_tenant")
    if origin and tenant is not None and origin in (tenant.allowed_origins or []):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "ETag, Retry-After"
    response.vary.add("Origin")
    return response


def _encoded(payload: Any) -> tuple[str, str]:
    """(body, ETag) of a JSON answer."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    return body, hashlib.sha256(body.encode()).hexdigest()[:32]


def _cached_json(payload: Any, max_age: int) -> Response:
    return _json_answer(_encoded(payload), max_age)


def _json_answer(encoded: tuple[str, str], max_age: int) -> Response:
    body, etag = encoded
    response = current_app.response_class(body, mimetype="application/json")
    response.set_etag(etag)
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    # The answer depends on the key (the tenant) and on the Origin (CORS headers).
    response.vary.add(KEY_HEADER)
    return response.make_conditional(request)


def _package_json(package: PackageView) -> dict[str, Any]:
    base_url = current_app.config["MAIS_BASE_URL"]
    return {
        "slug": package.slug,
        "title": package.title,
        "description_html": package.description_html,
        "price_cents": package.price_cents,
        "currency": package.currency,
        "segment": package.segment_title,
        "photos": [
            {
                "url": base_url + media_url(photo.storage_key),
                "thumbnail_url": base_url + media_url(photo.thumbnail_key),
                "alt_text": photo.alt_text,
            }
            for photo in package.photos
        ],
        "addons": [
            {"id": addon.id, "title": addon.title, "price_cents": addon.price_cents}
            for addon in package.addons
        ],
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    response = current_app.response_class(
        json.dumps(openapi_document(current_app.config["MAIS_BASE_URL"])),
        mimetype="application/json",
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/packages")
def packages() -> Response:
    tenant = _current_tenant()
    # Encoded once per catalog version: every integrator's poll gets the same bytes.
    encoded = get_or_set(
        tenant,
        CATALOG,
        ("api-packages",),
        lambda: _encoded({"packages": [_package_json(p) for p in list_active_packages(tenant)]}),
    )
    return _json_answer(encoded, CATALOG_MAX_AGE)


@bp.get("/packages/<slug>")
def package(slug: str) -> Response:
    try:
        view = get_active_package(_current_tenant(), slug)
    except NotFound:
        return error("No package with that slug.", 404)
    return _cached_json(_package_json(view), CATALOG_MAX_AGE)


def _parse_date(name: str) -> date | Response:
    raw = request.args.get(name)
    if not raw:
        return error(f"The {name} parameter is required (YYYY-MM-DD).", 400, name)
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        return error(f"{name} must be a date written YYYY-MM-DD.", 400, name)
    if len(raw) != 10 or not EARLIEST_DATE <= value <= LATEST_DATE:
        return error(
            f"{name} must be a date written YYYY-MM-DD between {EARLIEST_DATE} and {LATEST_DATE}.",
            400,
            name,
        )
    return value


def _month_starts(start: date, end: date) -> list[date]:
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def _month_end(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _range_statuses(tenant: Tenant, months: list[date]) -> list[DayStatus]:
    """The day statuses of ``months``, each cached per tenant and month. ``today`` is part of
    the key because "past" moves at midnight; the short timeout bounds how long an expired hold
    shows. The first month missing from the cache reads every month of the range at once (one
    query per kind of closure), so a year costs a handful of statements, not a few per month."""
    first_day = today(tenant).isoformat()
    read: dict[date, list[DayStatus]] = {}

    def produce(month: date) -> list[DayStatus]:
        if not read:
            for status in day_statuses(tenant, months[0], _month_end(months[-1])):
                read.setdefault(status.on_date.replace(day=1), []).append(status)
        return read[month]

    return [
        status
        for month in months
        for status in get_or_set(
            tenant,
            AVAILABILITY,
            (month.isoformat(), first_day),
            lambda month=month: produce(month),
            timeout=AVAILABILITY_CACHE_SECONDS,
        )
    ]


@bp.get("/availability")
def availability() -> Response:
    start = _parse_date("from")
    if isinstance(start, Response):
        return start
    end = _parse_date("to")
    if isinstance(end, Response):
        return end
    if end < start:
        return error("from must be on or before to.", 400, "to")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        return error(f"Ask for at most {MAX_RANGE_DAYS} days at a time.", 400, "to")
    tenant = _current_tenant()
    days = [
        {"date": day.on_date.isoformat(), "is_open": day.is_open, "reason": day.reason}
        for day in _range_statuses(tenant, _month_starts(start, end))
        if start <= day.on_date <= end
    ]
    payload = {"from": start.isoformat(), "to": end.isoformat(), "days": days}
    return _cached_json(payload, AVAILABILITY_MAX_AGE)


@bp.get("/<path:unknown>")
def not_found(unknown: str) -> Response:
    """Unknown paths under /v1 answer in JSON like the rest of the API."""
    return error("No such API endpoint.", 404)
