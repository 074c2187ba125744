"""Who is logged in: the user, their tenant and its scope, resolved once per request."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge, TooManyRequests

from mais import accounts, tenancy
from mais.errors import DomainError, NotFound
from mais.extensions import db
from mais.htmx import redirect_to
from mais.models import AddOn, Blackout, Booking, Package, PackagePhoto, Segment, User

from . import bp

F = TypeVar("F", bound=Callable[..., Any])


@bp.before_request
def load_logged_in_user() -> None:
    g.user = None
    g.tenant = None
    user = accounts.load_session_user(session.get("user_id"), session.get("session_version"))
    if user is None or user.tenant_id is None:
        return
    g.user = user
    g.tenant = user.tenant
    # Every query of this request is confined to the owner's tenant from here on.
    tenancy.enter_scope(tenancy.Scope(user.tenant_id))


def start_session(user: User) -> None:
    """A brand-new session: nothing from the anonymous one (or an earlier login) survives. Each
    way in (login, signup, a password reset) proves the account's owner is at this browser, so it
    is remembered as one of theirs."""
    session.clear()
    session["user_id"] = user.id
    session["session_version"] = user.session_version
    session.permanent = False
    accounts.remember_device(user)


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        if g.get("user") is None:
            target = url_for("portal.login", next=request.path)
            return redirect_to(target)
        return view(**kwargs)

    return wrapped  # type: ignore[return-value]


@bp.errorhandler(NotFound)
def _not_found(error: NotFound) -> tuple[str, int]:
    return render_template("portal/error.html", title="Not found", message=error.message), 404


@bp.errorhandler(404)
def _http_not_found(error: Exception) -> tuple[str, int]:
    return render_template(
        "portal/error.html", title="Not found", message="There is nothing at this address."
    ), 404


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> tuple[str, int]:
    return render_template(
        "portal/error.html", title="That did not work", message=error.message
    ), error.status_code


@bp.errorhandler(TooManyRequests)
def _too_many(error: TooManyRequests) -> tuple[str, int]:
    # The login limits carry their own message (address, account or browser); others do not.
    limit = getattr(error, "limit", None)
    if getattr(limit, "error_message", None):
        message = error.description
    else:
        message = "There have been too many attempts from here. Wait 15 minutes, then try again."
    return render_template("portal/error.html", title="Too many attempts", message=message), 429


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
    return render_template(
        "portal/error.html",
        title="File too large",
        message="That upload is larger than the portal accepts. Images may be at most 5 MB; "
        "go back and choose a smaller file.",
    ), 413


@bp.errorhandler(CSRFError)
def _csrf_error(error: CSRFError) -> tuple[str, int]:
    return render_template(
        "portal/error.html",
        title="Form expired",
        message="This form is out of date or was not sent from the portal. Go back, reload the "
        "page and try again.",
    ), 400


# Every URL argument that names a tenant-owned object, and its model. A portal route taking an
# argument missing from this table fails loudly instead of trusting the view to check ownership.
OBJECT_ARGUMENTS: dict[str, type] = {
    "package_id": Package,
    "photo_id": PackagePhoto,
    "addon_id": AddOn,
    "segment_id": Segment,
    "blackout_id": Blackout,
    "booking_id": Booking,
}
PUBLIC_ARGUMENTS = frozenset({"key", "token"})


@bp.before_request
def require_own_objects() -> None:
    """Another tenant's object is not found, whatever the view does next."""
    if g.get("user") is None or not request.view_args:
        return
    for name, value in request.view_args.items():
        if name in PUBLIC_ARGUMENTS:
            continue
        model = OBJECT_ARGUMENTS.get(name)
        if model is None:
            raise LookupError(f"portal route argument {name!r} has no owner check")
        tenancy.get_owned_or_404(db.session, g.tenant, model, value)
