"""Calendar views: blackout dates, the bookings list, a booking, and cancelling it."""

from __future__ import annotations

from flask import Response, flash, g, render_template, request, url_for

from mais import catalog
from mais import dashboard as figures
from mais.errors import DomainError
from mais.extensions import db
from mais.htmx import redirect_to
from mais.tenant_registry import local_today

from . import bp
from .auth import login_required
from .forms import a_date, checkbox, errors_of, text
from .overview import page_number


def _calendar_page(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    today = local_today(g.tenant)
    return render_template(
        "portal/calendar.html",
        blackouts=catalog.list_blackouts(g.tenant, from_date=today),
        errors=errors or {},
        form=request.form if errors else {},
        today=today,
    ), status


@bp.get("/calendar")
@login_required
def calendar() -> tuple[str, int]:
    return _calendar_page()


@bp.post("/blackouts")
@login_required
def add_blackouts() -> Response | tuple[str, int]:
    try:
        added = catalog.add_blackout_range(
            g.tenant,
            a_date("on_date"),  # type: ignore[arg-type]
            a_date("last_date", required=False),
            text("reason"),
            user=g.user,
        )
    except DomainError as error:
        db.session.rollback()
        return _calendar_page(errors_of(error), 400)
    flash(f"{len(added)} date{'s' if len(added) != 1 else ''} blocked.")
    return redirect_to(url_for("portal.calendar"))


@bp.post("/blackouts/<int:blackout_id>/delete")
@login_required
def remove_blackout(blackout_id: int) -> Response:
    catalog.remove_blackout(g.tenant, blackout_id, user=g.user)
    flash("The date is open again.")
    return redirect_to(url_for("portal.calendar"))


@bp.get("/bookings")
@login_required
def bookings() -> str:
    which = request.args.get("filter", "upcoming")
    if which not in figures.BOOKING_FILTERS:
        which = "upcoming"
    return render_template(
        "portal/bookings.html",
        which=which,
        filters=figures.BOOKING_FILTERS,
        page=figures.list_bookings(g.tenant, which=which, page=page_number()),
    )


@bp.get("/bookings/<int:booking_id>")
@login_required
def booking(booking_id: int) -> str:
    return render_template(
        "portal/booking.html", booking=figures.get_booking(g.tenant, booking_id), errors={}
    )


@bp.post("/bookings/<int:booking_id>/cancel")
@login_required
def cancel_booking(booking_id: int) -> Response | tuple[str, int]:
    from mais import booking as bookings_domain  # the booking engine owns cancellation

    refund = checkbox("refund")
    try:
        cancelled = bookings_domain.cancel_booking(g.tenant, booking_id, refund=refund, user=g.user)
    except DomainError as error:
        db.session.rollback()
        if error.status_code == 404:
            raise
        return render_template(
            "portal/booking.html",
            booking=figures.get_booking(g.tenant, booking_id),
            errors=errors_of(error),
        ), 409
    flash(
        f"Booking {cancelled.reference} is cancelled"
        + (" and refunded." if refund else "; no refund was made.")
    )
    return redirect_to(url_for("portal.booking", booking_id=booking_id))
