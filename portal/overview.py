"""The dashboard and the audit log."""

from __future__ import annotations

from flask import g, render_template, request

from mais import dashboard as figures

from . import bp
from .auth import login_required


def page_number() -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        return 1


@bp.get("/")
@login_required
def dashboard() -> str:
    return render_template("portal/dashboard.html", board=figures.build_dashboard(g.tenant))


@bp.get("/audit")
@login_required
def audit_log() -> str:
    return render_template(
        "portal/audit.html", page=figures.list_audit(g.tenant, page=page_number())
    )
