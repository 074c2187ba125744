"""The booking flow, served twice from the same views and templates: inside the tenant's iframe
(``/widget/<slug>/…``) and as the hosted full page (``/book/<slug>/…``).

Each step is the ``step`` block of its own template: rendered alone for HTMX requests and as a
whole page otherwise, so every link and form also works without JavaScript.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from flask import Response, abort, current_app, g, redirect, render_template, request, url_for
from jinja2_fragments.flask import render_block

from mais import booking, cache, tenancy, unit_of_work
from mais.catalog import catalog_sections, get_active_package
from mais.errors import DateUnavailable, DomainError
from mais.extensions import limiter
from mais.htmx import is_htmx, redirect_to, vary_on_htmx
from mais.locking import DateBusy
from mais.media import media_url
from mais.models import DateHold, HoldStatus, Tenant
from mais.origins import origin_of
from mais.security import allow_framing_by
from mais.tenancy import Scope
from mais.tenant_registry import find_tenant_by_slug, tenant_id_for_slug

from . import bp, landing
from .state import (
    COUPLE_FIELDS,
    Selection,
    TamperedState,
    link_token,
    load_booking,
    load_reference,
    load_selection,
    sign_booking,
    sign_selection,
)

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_PRIMARY, DEFAULT_ACCENT = "#7c3aed", "#f59e0b"
MAX_RETURN_URL = 2000  # DateHold.return_url
# Each Pay holds a date for everyone else while the couple pays; one visitor cannot hold many.
PAY_RATE_LIMIT = "10 per minute;30 per hour"
CLOSED_LABELS = {
    "past": ("Past", "in the past"),
    "booked": ("Booked", "already booked"),
    "unavailable": ("Closed", "unavailable"),
    "beyond horizon": ("Not open", "not open for booking yet"),
}


@dataclass(frozen=True)
class Flow:
    """Where the flow runs: in a checked iframe (with its embedding page) or full page."""

    tenant: Tenant
    embedded: bool
    key: str = ""
    origin: str = ""
    return_url: str | None = None

    @cached_property
    def embed_params(self) -> dict[str, str]:
        if not self.embedded:
            return {}
        params = {"key": self.key, "origin": self.origin}
        if self.return_url:
            params["ret"] = self.return_url
        return params

    @cached_property
    def embed_query(self) -> str:
        return urlencode(self.embed_params)

    def url(self, step: str, *, external: bool = False, **params: Any) -> str:
        """A link to ``step`` that keeps the embedding context."""
        path = self.path(step, external=external, **params)
        if not self.embed_query:
            return path
        # Encoded once per request: a catalog page holds one such link per package.
        return path + ("&" if "?" in path else "?") + self.embed_query

    def path(self, step: str, *, external: bool = False, **params: Any) -> str:
        """A form action: GET forms replace the query, so the context goes in hidden fields."""
        prefix = "widget.embed_" if self.embedded else "widget.book_"
        path = url_for(prefix + step, slug=self.tenant.slug, **params)
        return current_app.config["MAIS_BASE_URL"] + path if external else path


def _route(rule: str, step: str, methods: tuple[str, ...] = ("GET",)) -> Callable:
    def register(view: Callable) -> Callable:
        bp.add_url_rule(f"/widget/<slug>{rule}", f"embed_{step}", view, methods=methods)
        bp.add_url_rule(f"/book/<slug>{rule}", f"book_{step}", view, methods=methods)
        return view

    return register


@bp.url_value_preprocessor
def _pop_slug(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # ``g`` can outlive one request (tests keep an application context open): start clean.
    for name in ("tenant_slug", "tenant", "flow"):
        g.pop(name, None)
    if values and "slug" in values:
        g.tenant_slug = values.pop("slug")


_LANDING_ENDPOINTS = frozenset({"widget.embed_catalog", "widget.book_catalog"})


def _is_landing() -> bool:
    """This request is the widget's landing page: the same for every couple arriving from one
    page, so its whole answer may be kept (widget/landing.py serves the repeats)."""
    return (
        request.method == "GET"
        and request.endpoint in _LANDING_ENDPOINTS
        and "booking" not in request.args
    )


@bp.before_request
def _resolve_tenant() -> Response | None:
    # The application resets the scope before any blueprint hook runs and restores it at
    # teardown, so the scope entered here lasts exactly this request.
    if "tenant_slug" not in g:
        return None
    if _is_landing():
        tenant_id = tenant_id_for_slug(g.tenant_slug)
        if tenant_id is None:
            abort(404)
        # Read before the tenant and its catalog: a change committed after this read bumps the
        # generation past the one the stored answer carries, so it is never served stale.
        generation = cache.generation(tenant_id, cache.CATALOG)
        request.environ[landing.STORE_MARK] = (tenant_id, generation)
    tenant = find_tenant_by_slug(g.tenant_slug)
    if tenant is None:
        abort(404)
    tenancy.enter_scope(Scope(tenant.id))
    g.tenant = tenant
    return None


@bp.before_request
def _check_embedding() -> tuple[str, int] | None:
    tenant: Tenant | None = g.get("tenant")
    endpoint = request.endpoint or ""
    if tenant is None or not endpoint.startswith(("widget.embed_", "widget.book_")):
        return None
    if endpoint.startswith("widget.book_"):
        g.flow = Flow(tenant, embedded=False)
        _store_landing_only_if(not request.query_string)
    else:
        base_url = current_app.config["MAIS_BASE_URL"]
        # The portal previews the widget from the platform's own origin.
        allowed = [*(tenant.allowed_origins or []), base_url]
        allow_framing_by(allowed)
        key = request.values.get("key", "")
        origin = request.values.get("origin", "")
        if key != tenant.public_key or origin not in allowed:
            g.flow = Flow(tenant, embedded=True)
            _store_landing_only_if(False)
            return _render("widget/refused.html", 403)
        g.flow = Flow(
            tenant,
            embedded=True,
            key=key,
            origin=origin,
            return_url=_checked_return_url(request.values.get("ret"), origin),
        )
        _store_landing_only_if(request.query_string.decode() == _sdk_query(g.flow.embed_params))
    if not tenant.is_active:
        return _render("widget/closed.html")
    return None


def _sdk_query(params: dict[str, str]) -> str:
    """``params`` spelled as mais-sdk.js spells them (``URLSearchParams``: the WHATWG
    form-urlencoded set, which also escapes ``~`` and leaves ``*`` alone)."""
    return "&".join(
        f"{quote_plus(name, safe='*')}={quote_plus(value, safe='*')}".replace("~", "%7E")
        for name, value in params.items()
    )


def _store_landing_only_if(canonical: bool) -> None:
    """The landing cache keys on the raw query string. Only the one spelling the widget itself
    writes (the SDK's parameters, checked) is kept: otherwise anyone could fill the cache with
    endless variants of one page (extra parameters, other percent-encodings, refused keys)."""
    if not canonical:
        request.environ.pop(landing.STORE_MARK, None)


bp.after_request(vary_on_htmx)


@bp.context_processor
def _flow_context() -> dict[str, Any]:
    flow = g.get("flow")
    return {
        "flow": flow,
        "tenant": g.get("tenant"),
        "media_url": _media_url,
        "long_date": _long_date,
    }


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> tuple[str, int]:
    return _render("widget/error.html", error.status_code, message=error.message)


@bp.errorhandler(429)
def _too_many(error: Exception) -> tuple[str, int]:
    return _render(
        "widget/error.html", 429, message="Too many attempts from here; please wait a minute."
    )


@bp.errorhandler(404)
def _not_found(error: Exception) -> tuple[str, int]:
    return _render("widget/error.html", 404, message="There is no booking page at this address.")


def _render_html(template: str, *, block: str = "step", **context: Any) -> str:
    """The step's block alone for HTMX, the whole page otherwise."""
    if is_htmx():
        return render_block(template, block, **context)
    return render_template(template, **context)


def _render(template: str, status: int = 200, *, block: str = "step", **context: Any):
    return _render_html(template, block=block, **context), status


def _checked_return_url(url: str | None, origin: str) -> str | None:
    """The embedding page's URL, kept only when it lies on the origin the server checked."""
    if url and len(url) <= MAX_RETURN_URL and origin_of(url) == origin:
        return url
    return None


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params]
    return urlunsplit(parts._replace(query=urlencode(query + list(params.items()))))


def _media_url(key: str | None) -> str | None:
    return media_url(key) if key else None


def _long_date(on_date: date) -> str:
    return f"{on_date:%A}, {on_date.day} {on_date:%B %Y}"


def _flow() -> Flow:
    return g.flow


def _tenant() -> Tenant:
    return g.tenant


def _selection(*, need_date: bool = False, need_couple: bool = False) -> Selection:
    # The couple's details come only from a POST body (sealed): a URL never carries them.
    if request.method == "POST":
        selection = load_selection(_tenant().id, request.form.get("s"), with_couple=True)
    else:
        selection = load_selection(_tenant().id, request.args.get("s"))
    if (need_date and selection.on_date is None) or (need_couple and not selection.couple):
        raise TamperedState()
    return selection


def _parse_date(text: str | None, field: str = "date") -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        raise DomainError("Choose a date from the calendar.", field=field) from None


# --- the steps ---------------------------------------------------------------------------------


@_route("/", "catalog")
def catalog() -> Any:
    token = request.args.get("booking")
    if token:
        # Back on the host page from the checkout: the loader opens the widget on the
        # confirmation, or on the summary when the couple left without paying. A reference of
        # another tenant's widget on the same page is simply not ours.
        try:
            reference = load_reference(_tenant().id, token)
        except TamperedState:
            reference = None
        if reference is not None and reference.left_checkout:
            return _summary_after_checkout(reference.hold_id, token)
        if reference is not None:
            return _confirmation(reference.hold_id, token)
    tenant, flow = _tenant(), _flow()
    # The widget's landing page is the same for every couple arriving from one page: render it
    # once per catalog version (catalog and branding writes bump the tenant's cache generation).
    return cache.get_or_set(
        tenant,
        cache.CATALOG,
        ("catalog-page", flow.embedded, flow.embed_query, is_htmx()),
        lambda: _render_html("widget/catalog.html", sections=catalog_sections(tenant)),
        timeout=landing.CACHE_SECONDS,
    )


@_route("/package/<package_slug>", "package")
def package(package_slug: str) -> Any:
    tenant = _tenant()
    addon_ids = request.args.getlist("addon", type=int)
    view = get_active_package(tenant, package_slug)
    quote = booking.quote(tenant, package_slug, addon_ids)
    block = "total" if request.headers.get("HX-Target") == "total" else "step"
    return _render(
        "widget/package.html", package=view, quote=quote, chosen=set(addon_ids), block=block
    )


@_route("/date", "date", methods=("GET", "POST"))
def choose_date() -> Any:
    if request.method == "POST":
        # "Change the date" from the summary: the calendar keeps the couple's details (sealed,
        # in POST bodies) so that they come back filled in.
        selection = _selection()
        return _render_calendar(selection, _quote(selection), request.form.get("month"))
    if request.args.get("s"):
        selection = _selection()
    else:
        # Straight from the package form: the add-ons are plain checkboxes, checked by quote().
        selection = Selection(
            package_slug=request.args.get("package", ""),
            addon_ids=tuple(request.args.getlist("addon", type=int)),
        )
    return _render_calendar(selection, _quote(selection), request.args.get("month"))


def _quote(selection: Selection) -> Any:
    return booking.quote(_tenant(), selection.package_slug, list(selection.addon_ids))


def _render_calendar(selection: Selection, quote: Any, month_text: str | None, **context: Any):
    tenant = _tenant()
    today = booking.today(tenant)
    first_month = today.replace(day=1)
    last_month = (today + timedelta(days=tenant.booking_horizon_days)).replace(day=1)
    try:
        month = date.fromisoformat(f"{month_text}-01") if month_text else None
    except ValueError:
        month = None
    month = month or (selection.on_date or today).replace(day=1)
    # Out-of-range months (an edited URL) show the nearest bookable month instead.
    month = min(max(month, first_month), last_month)
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month)
    statuses = {
        status.on_date: status
        for status in booking.day_statuses(tenant, weeks[0][0], weeks[-1][-1])
    }
    previous = (month - timedelta(days=1)).replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    return _render(
        "widget/date.html",
        selection=selection,
        token=link_token(tenant.id, selection),
        sealed=sign_selection(tenant.id, selection) if selection.couple else None,
        quote=quote,
        month=month,
        weeks=weeks,
        statuses=statuses,
        closed_labels=CLOSED_LABELS,
        previous_month=previous if previous >= first_month else None,
        next_month=following if following <= last_month else None,
        **context,
    )


@_route("/details", "details", methods=("GET", "POST"))
def details() -> Any:
    selection = _selection()
    if request.method == "GET" or "edit" in request.form:
        # A day chosen on the calendar (GET), or "Change your details" on the summary (POST,
        # the details sealed in the body): the form, filled in with what the couple gave.
        if "date" in request.values:
            on_date = _parse_date(request.values.get("date"))
            if not _is_open(on_date):
                return _render_calendar(
                    selection,
                    _quote(selection),
                    on_date.strftime("%Y-%m"),
                    date_error="That date cannot be booked; please choose an open date.",
                )
            selection = selection.with_date(on_date)
        if selection.on_date is None:
            raise TamperedState()
        return _render_details(selection, dict(selection.couple))

    couple = {name: request.form.get(name, "").strip() for name in COUPLE_FIELDS}
    if selection.on_date is None:
        raise TamperedState()
    try:
        checked = booking.validate_couple(**couple)
    except DomainError as error:
        return _render_details(selection, couple, error=error)
    # The checked (trimmed, normalized) details travel sealed: Pay takes them as they are.
    return _render_summary(selection.with_couple(asdict(checked)))


def _is_open(on_date: date) -> bool:
    status = booking.day_statuses(_tenant(), on_date, on_date)
    return bool(status) and status[0].is_open


def _render_details(selection: Selection, couple: dict[str, str], error: DomainError | None = None):
    errors: dict[str, str] = {}
    if error is not None:
        for field, message in getattr(error, "errors", {error.field: error.message}).items():
            errors[field if field in COUPLE_FIELDS else "form"] = message
    return _render(
        "widget/details.html",
        422 if errors else 200,
        selection=selection,
        # The details themselves travel in the form's fields, never in the token.
        token=link_token(_tenant().id, selection),
        couple=couple,
        errors=errors,
    )


@_route("/summary", "summary", methods=("GET", "POST"))
def summary() -> Any:
    if request.method == "GET":
        # The way back from a checkout the couple left: the URL names only the hold.
        token = request.args.get("b")
        reference = load_reference(_tenant().id, token)
        if not reference.left_checkout:
            raise TamperedState()
        return _summary_after_checkout(reference.hold_id, token or "")
    selection = _selection(need_date=True, need_couple=True)
    if "date" in request.form:
        # Another date offered when the chosen one was taken.
        selection = selection.with_date(_parse_date(request.form.get("date")))
    return _render_summary(selection)


def _summary_after_checkout(hold_id: str, token: str):
    """The summary rebuilt from the hold (server-side) after the couple left the checkout, with
    package, date and details kept and what became of the date."""
    tenant = _tenant()
    if booking.find_booking_for_hold(tenant, hold_id) is not None:
        return _confirmation(hold_id, token)  # paid after all, before the checkout closed
    hold = booking.get_hold(tenant, hold_id)
    selection = Selection(
        hold.package.slug,
        tuple(int(line["addon_id"]) for line in hold.addon_lines),
        hold.on_date,
    ).with_couple({name: getattr(hold, name) or "" for name in COUPLE_FIELDS})
    return _render_summary(selection, notice=_left_checkout_notice(hold))


def _left_checkout_notice(hold: DateHold) -> str:
    day = _long_date(hold.on_date)
    if _is_open(hold.on_date):
        return (
            f"You left the payment page, so {day} was released. It is still free: pay to hold it."
        )
    if hold.status == HoldStatus.ACTIVE:
        return f"You left the payment page; {day} is still held for you for a few minutes."
    return (
        f"You left the payment page, so {day} was released, and it has been taken since. "
        "Please choose another date."
    )


def _render_summary(selection: Selection, notice: str | None = None):
    tenant = _tenant()
    view = get_active_package(tenant, selection.package_slug)
    return _render(
        "widget/summary.html",
        selection=selection,
        sealed=sign_selection(tenant.id, selection),
        package=view,
        quote=_quote(selection),
        notice=notice,
    )


@_route("/pay", "pay", methods=("POST",))
@limiter.limit(PAY_RATE_LIMIT)
def pay() -> Any:
    tenant, flow = _tenant(), _flow()
    selection = _selection(need_date=True, need_couple=True)
    # Checked at the details step before it was sealed; the seal says it is unchanged.
    couple = booking.CoupleDetails(**selection.couple)
    try:
        hold = booking.hold_date(
            tenant,
            package_slug=selection.package_slug,
            addon_ids=list(selection.addon_ids),
            on_date=selection.on_date,
            couple=couple,
            return_url=flow.return_url,
        )
    except DateUnavailable as taken:
        return _render(
            "widget/taken.html",
            409,
            selection=selection,
            sealed=sign_selection(tenant.id, selection),
            message=taken.message,
            busy=isinstance(taken, DateBusy),
            alternatives=getattr(taken, "alternatives", []),
        )
    unit_of_work.commit_before_network_call(tenant, hold)
    checkout_url = booking.start_checkout(
        tenant,
        hold,
        success_url=_success_url(sign_booking(tenant.id, hold.id)),
        cancel_url=_cancel_url(sign_booking(tenant.id, hold.id, left_checkout=True)),
    )
    if checkout_url.startswith("/"):
        checkout_url = current_app.config["MAIS_BASE_URL"] + checkout_url
    if flow.embedded:
        # Stripe Checkout refuses to run in a frame: the loader moves the top window there.
        return _render(
            "widget/paying.html",
            checkout_url=checkout_url,
            hold_minutes=current_app.config["MAIS_HOLD_MINUTES"],
        )
    return redirect_to(checkout_url, 303)


def _success_url(token: str) -> str:
    """Back to the page the couple booked from (origin already checked), else the tenant's
    configured page, else the platform's confirmation page in the tenant's branding."""
    flow, tenant = _flow(), _tenant()
    candidates = [flow.return_url, tenant.return_url] if flow.embedded else []
    for url in candidates:
        if url and origin_of(url):
            return _with_query(url, mais_booking=token)
    return Flow(tenant, embedded=False).path("confirmed", token=token, external=True)


def _cancel_url(left_token: str) -> str:
    """Leaving the checkout comes back through the platform, which frees the date at once. The
    URL names only the hold: the provider, the browser's history and every log see it."""
    return _flow().url("abandon", external=True, b=left_token)


@_route("/abandon", "abandon")
def abandon() -> Any:
    tenant, flow = _tenant(), _flow()
    token = request.args.get("b") or ""
    reference = load_reference(tenant.id, token)
    if not reference.left_checkout:
        raise TamperedState()
    session_id = booking.open_checkout_of(tenant, reference.hold_id)
    if session_id is not None:
        unit_of_work.commit_before_network_call()
        booking.abandon_checkout(tenant, reference.hold_id, session_id)
    if flow.embedded and flow.return_url:
        # The loader hands the reference back to the widget, which opens on the summary.
        return redirect(_with_query(flow.return_url, mais_booking=token), 303)
    return redirect(Flow(tenant, embedded=False).path("summary", b=token), 303)


@_route("/confirmed/<token>", "confirmed")
def confirmed(token: str) -> Any:
    return _confirmation(load_booking(_tenant().id, token), token)


def _confirmation(hold_id: str, token: str):
    found = booking.find_booking_for_hold(_tenant(), hold_id)
    return _render("widget/confirmed.html", booking=found, token=token)


@bp.route("/widget/<slug>/theme.css")
def theme() -> Response:
    tenant = _tenant()
    primary = tenant.brand_primary_color
    accent = tenant.brand_accent_color
    css = render_template(
        "widget/theme.css",
        primary=primary if HEX_COLOUR.match(primary or "") else DEFAULT_PRIMARY,
        accent=accent if HEX_COLOUR.match(accent or "") else DEFAULT_ACCENT,
    )
    response = Response(css, mimetype="text/css")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
