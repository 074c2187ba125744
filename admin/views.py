"""Admin views: parse the form, call one operation in ``mais.admin_ops``, render.

Everything under /admin answers 404 unless a platform admin is logged in (the login page aside),
so owners and strangers cannot even learn that the area exists.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from jinja2_fragments.flask import render_block
from werkzeug.exceptions import NotFound as HTTPNotFound
from werkzeug.exceptions import TooManyRequests

from mais import accounts, admin_ops
from mais import cache as tenant_cache
from mais.errors import DomainError, NotFound
from mais.extensions import db
from mais.htmx import is_htmx, vary_on_htmx
from mais.models import User

from . import bp

SESSION_USER = "admin_user_id"
SESSION_VERSION = "admin_session_version"
PUBLIC_ENDPOINTS = frozenset({"admin.login"})


@bp.before_request
def _require_platform_admin() -> None:
    user = accounts.load_session_user(session.get(SESSION_USER), session.get(SESSION_VERSION))
    g.admin = user if user is not None and user.is_platform_admin else None
    if g.admin is None and request.endpoint not in PUBLIC_ENDPOINTS:
        abort(404)


@bp.after_request
def _no_store(response: Response) -> Response:
    # Operator pages list tenants and figures: never keep them in a shared or back-button cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(NotFound)
def _domain_not_found(error: NotFound) -> HTTPNotFound:
    return HTTPNotFound()


@bp.errorhandler(TooManyRequests)
def _too_many_logins(error: TooManyRequests) -> tuple[str, int]:
    # Only the login has limits here, and each carries its message (address, account, browser).
    message = error.description or "Too many attempts from here. Wait 15 minutes and try again."
    return render_template("admin/login.html", errors={"password": message}, email=""), 429


def _admin() -> User:
    return g.admin  # type: ignore[no-any-return]


@bp.route("/login", methods=["GET", "POST"])
@accounts.limit_logins
def login() -> Any:
    if request.method == "GET":
        return render_template("admin/login.html", errors={}, email="")
    email = request.form.get("email", "")
    try:
        user = accounts.authenticate(email, request.form.get("password", ""))
        if not user.is_platform_admin:
            # Same words as a wrong password: the page must not confirm an owner's account.
            raise DomainError(accounts.LOGIN_FAILED, field="password")
    except DomainError as error:
        db.session.rollback()
        return render_template(
            "admin/login.html", errors={error.field or "form": error.message}, email=email
        ), 400
    session.clear()
    session[SESSION_USER] = user.id
    session[SESSION_VERSION] = user.session_version
    accounts.remember_device(user)
    return redirect(url_for("admin.tenants"))


@bp.post("/logout")
def logout() -> Response:
    # Everywhere, not only here: a copied session cookie must die with this one.
    accounts.end_sessions(_admin())
    # Only the admin keys: a portal session in the same browser belongs to another account.
    session.pop(SESSION_USER, None)
    session.pop(SESSION_VERSION, None)
    return redirect(url_for("admin.login"))


@bp.get("/")
def tenants() -> Any:
    query = request.args.get("q", "")
    rows = admin_ops.search_tenants(query)
    if is_htmx():
        response = Response(render_block("admin/tenants.html", "results", rows=rows, q=query))
    else:
        response = Response(render_template("admin/tenants.html", rows=rows, q=query))
    return vary_on_htmx(response)


@bp.route("/tenants/new", methods=["GET", "POST"])
def new_tenant() -> Any:
    form = {"commission_percent": "12.5"}
    if request.method == "GET":
        return render_template("admin/tenant_new.html", form=form, errors={})
    form = {
        name: request.form.get(name, "")
        for name in ("slug", "name", "owner_email", "commission_percent")
    }
    try:
        tenant, keys = admin_ops.create_tenant_as_admin(
            _admin(),
            slug=form["slug"],
            name=form["name"],
            owner_email=form["owner_email"],
            owner_password=request.form.get("owner_password", ""),
            commission_percent=form["commission_percent"],
        )
    except DomainError as error:
        db.session.rollback()
        field = {"email": "owner_email", "password": "owner_password"}.get(
            error.field or "", error.field or "form"
        )
        return render_template(
            "admin/tenant_new.html", form=form, errors={field: error.message}
        ), 400
    # Shown once, on this response only; never stored in the session or a redirect.
    return render_template("admin/tenant_created.html", tenant=tenant, keys=keys)


def _tenant_page(tenant_id: int, errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    tenant = admin_ops.get_tenant(tenant_id)
    return render_template(
        "admin/tenant.html",
        tenant=tenant,
        figures=admin_ops.tenant_figures(tenant),
        errors=errors,
        commission_value=request.form.get("commission_percent", tenant.commission_percent),
    ), status


@bp.get("/tenants/<int:tenant_id>")
def tenant_detail(tenant_id: int) -> Any:
    return _tenant_page(tenant_id, {})


@bp.post("/tenants/<int:tenant_id>/commission")
def update_commission(tenant_id: int) -> Any:
    tenant = admin_ops.get_tenant(tenant_id)
    try:
        percent = admin_ops.set_commission_percent(
            _admin(), tenant, request.form.get("commission_percent", "")
        )
    except DomainError as error:
        db.session.rollback()
        return _tenant_page(tenant_id, {"commission_percent": error.message}, 400)
    flash(f"Commission for {tenant.name} is now {percent}%.")
    return redirect(url_for("admin.tenant_detail", tenant_id=tenant_id))


@bp.post("/tenants/<int:tenant_id>/active")
def update_active(tenant_id: int) -> Any:
    tenant = admin_ops.get_tenant(tenant_id)
    is_active = request.form.get("is_active") == "1"
    admin_ops.set_tenant_active(_admin(), tenant, is_active)
    flash(f"{tenant.name} is now {'active' if is_active else 'inactive'}.")
    return redirect(url_for("admin.tenant_detail", tenant_id=tenant_id))


@bp.get("/webhooks")
def webhooks() -> str:
    return render_template("admin/webhooks.html", events=admin_ops.failed_webhook_events())


@bp.post("/webhooks/<int:event_id>/replay")
def replay_webhook(event_id: int) -> Any:
    try:
        status = admin_ops.replay_failed_event(event_id)
    except NotFound:
        raise
    except DomainError as error:
        flash(error.message, "error")
    else:
        flash(f"Event {event_id} replayed: {status}.")
    return redirect(url_for("admin.webhooks"))


@bp.get("/outbox")
def outbox() -> str:
    return render_template(
        "admin/outbox.html",
        summary=admin_ops.outbox_summary(),
        cache=tenant_cache.stats(),
        mask=admin_ops.masked_email,
    )


@bp.post("/outbox/<int:message_id>/retry")
def retry_outbox(message_id: int) -> Any:
    try:
        admin_ops.retry_outbox_message(_admin(), message_id)
    except NotFound:
        raise
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("admin.outbox"))
    flash(f"Message {message_id} is queued again; the relay sends it on its next run.")
    return redirect(url_for("admin.outbox"))
