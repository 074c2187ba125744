"""Settings views: branding, embedding, keys, payouts onboarding and calendars."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import (
    Response,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from mais import ical, tenant_settings, unit_of_work
from mais.errors import DomainError
from mais.extensions import db
from mais.htmx import redirect_to
from mais.tenant_registry import tenant_zone, time_zone_choices

from . import bp
from .auth import login_required
from .forms import checkbox, errors_of, text, upload


def _base_url() -> str:
    return current_app.config["MAIS_BASE_URL"]


def _settings_page(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    tenant = g.tenant
    base = _base_url()
    preview_query = urlencode({"key": tenant.public_key, "origin": base})
    return render_template(
        "portal/settings.html",
        tenant=tenant,
        errors=errors or {},
        form=request.form if errors else {},
        snippet=tenant_settings.embed_snippet(tenant, base),
        preview_url=f"/widget/{tenant.slug}/?{preview_query}",
        export_url=f"{base}{url_for('portal.ical_export', token=tenant.ical_export_token)}"
        if tenant.ical_export_token
        else None,
        allow_local=current_app.config.get("MAIS_ENV") != "production",
        time_zones=time_zone_choices(),
        zone=tenant_zone(tenant),
    ), status


@bp.get("/settings")
@login_required
def settings() -> tuple[str, int]:
    return _settings_page()


def _saved(message: str, anchor: str) -> Response:
    flash(message)
    return redirect_to(url_for("portal.settings") + anchor)


@bp.post("/settings/branding")
@login_required
def update_branding() -> Response | tuple[str, int]:
    try:
        tenant_settings.update_branding(
            g.tenant,
            name=text("name"),
            primary_color=text("primary_color"),
            accent_color=text("accent_color"),
            logo=upload("logo"),
            remove_logo=checkbox("remove_logo"),
            user=g.user,
        )
    except DomainError as error:
        db.session.rollback()
        return _settings_page(errors_of(error), 400)
    return _saved("Branding saved.", "#branding")


@bp.post("/settings/embedding")
@login_required
def update_embedding() -> Response | tuple[str, int]:
    try:
        tenant_settings.update_embedding(
            g.tenant,
            origins_text=request.form.get("origins") or "",
            return_url=text("return_url"),
            user=g.user,
        )
    except DomainError as error:
        db.session.rollback()
        return _settings_page(errors_of(error), 400)
    return _saved("Embedding settings saved.", "#embedding")


@bp.post("/settings/secret-key")
@login_required
def rotate_secret_key() -> Response:
    key = tenant_settings.rotate_secret(g.tenant, user=g.user)
    response = make_response(
        render_template(
            "portal/keys.html", tenant=g.tenant, keys=None, secret_key=key, created=False
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/settings/onboarding")
@login_required
def start_onboarding() -> Response:
    base = _base_url()
    if tenant_settings.open_payouts_account(g.tenant):
        unit_of_work.commit_before_network_call()
    link = tenant_settings.start_onboarding(
        g.tenant,
        refresh_url=f"{base}{url_for('portal.settings')}#payouts",
        return_url=f"{base}{url_for('portal.onboarding_return')}",
        user=g.user,
    )
    return redirect(link)  # type: ignore[return-value]


@bp.get("/settings/onboarding/return")
@login_required
def onboarding_return() -> Response:
    flash("Welcome back. Your payouts status is shown below; it updates as the provider reports.")
    return redirect(url_for("portal.settings") + "#payouts")  # type: ignore[return-value]


@bp.post("/settings/time-zone")
@login_required
def update_time_zone() -> Response | tuple[str, int]:
    try:
        tenant_settings.update_time_zone(g.tenant, time_zone=text("time_zone"), user=g.user)
    except DomainError as error:
        db.session.rollback()
        return _settings_page(errors_of(error), 400)
    return _saved("Time zone saved.", "#time-zone")


@bp.post("/settings/ical-import")
@login_required
def update_ical_import() -> Response | tuple[str, int]:
    try:
        changed = ical.set_import_url(g.tenant, text("ical_import_url"), user=g.user)
    except DomainError as error:
        db.session.rollback()
        return _settings_page(errors_of(error), 400)
    if changed and g.tenant.ical_import_url:
        return _saved("Calendar import saved. It will be synced within minutes.", "#calendars")
    return _saved("Calendar import saved.", "#calendars")


@bp.post("/settings/ical-export/rotate")
@login_required
def rotate_ical_export() -> Response:
    ical.rotate_export_token(g.tenant, user=g.user)
    return _saved("A new private feed address is made; the old one no longer works.", "#calendars")
