"""Signup, login, logout and password reset."""

from __future__ import annotations

from flask import (
    Response,
    current_app,
    flash,
    g,
    make_response,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address

from mais import accounts
from mais.errors import DomainError
from mais.extensions import db, limiter
from mais.htmx import redirect_to
from mais.tenant_registry import create_tenant, time_zone_or_default

from . import bp
from .auth import start_session
from .forms import errors_of, text

LOGIN_LIMIT = "5 per 15 minutes"


def _login_ip_key() -> str:
    return "login-ip:" + (get_remote_address() or "unknown")


def _safe_next(target: str | None) -> str:
    # Only paths inside the portal: an open redirect would make phishing links look genuine
    # (browsers read a backslash as a slash), and a control character would split the header.
    if (
        target
        and target.startswith("/portal")
        and "//" not in target
        and "\\" not in target
        and target.isprintable()
    ):
        return target
    return url_for("portal.dashboard")


def _no_store(body: str, status: int = 200) -> Response:
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Response | str:
    if request.method == "GET":
        return render_template("portal/signup.html", errors={}, form={})
    try:
        tenant, owner, keys = create_tenant(
            slug=text("slug"),
            name=text("name"),
            owner_email=text("email"),
            owner_password=request.form.get("password") or "",
            time_zone=time_zone_or_default(text("time_zone")),
        )
    except DomainError as error:
        db.session.rollback()
        return _no_store(
            render_template("portal/signup.html", errors=errors_of(error), form=request.form), 400
        )
    start_session(owner)
    # Shown in this response only: the secret key is never stored in a readable form.
    return _no_store(render_template("portal/keys.html", tenant=tenant, keys=keys, created=True))


@bp.route("/login", methods=["GET", "POST"])
@accounts.limit_logins
def login() -> Response | str:
    next_url = request.values.get("next", "")
    if request.method == "GET":
        if g.user is not None:
            return redirect_to(_safe_next(next_url))
        return render_template("portal/login.html", errors={}, email="", next_url=next_url)
    email = text("email")
    try:
        user = accounts.authenticate(email, request.form.get("password") or "")
        if user.tenant_id is None:
            raise DomainError(
                "Platform administrators sign in to the admin area, not the portal.",
                field="email",
            )
    except DomainError as error:
        db.session.rollback()
        return _no_store(
            render_template(
                "portal/login.html", errors=errors_of(error), email=email, next_url=next_url
            ),
            400,
        )
    start_session(user)
    return redirect_to(_safe_next(next_url))


@bp.post("/logout")
def logout() -> Response:
    if g.user is not None:
        accounts.end_sessions(g.user)
    session.clear()
    flash("You are logged out.")
    return redirect_to(url_for("portal.login"))


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT, key_func=_login_ip_key, methods=["POST"])
def forgot_password() -> str:
    if request.method == "GET":
        return render_template("portal/forgot.html", sent=False, errors={})
    base = current_app.config["MAIS_BASE_URL"]
    try:
        accounts.request_password_reset(
            text("email"),
            reset_url_for=lambda token: f"{base}{url_for('portal.reset_password')}?token={token}",
        )
    except DomainError as error:
        return render_template("portal/forgot.html", sent=False, errors=errors_of(error))
    # The same answer whether or not the account exists.
    return render_template("portal/forgot.html", sent=True, errors={})


@bp.route("/reset", methods=["GET", "POST"])
def reset_password() -> Response | str:
    token = request.values.get("token", "")
    if request.method == "GET":
        return _no_store(render_template("portal/reset.html", token=token, errors={}))
    try:
        user = accounts.reset_password(token, request.form.get("password") or "")
    except DomainError as error:
        db.session.rollback()
        return _no_store(
            render_template("portal/reset.html", token=token, errors=errors_of(error)), 400
        )
    if user.tenant_id is None:
        flash("Your password is changed. Sign in to the admin area.")
        return redirect_to(url_for("portal.login"))
    start_session(user)
    flash("Your password is changed and you are logged in.")
    return redirect_to(url_for("portal.dashboard"))
