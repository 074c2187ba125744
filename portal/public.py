"""Portal URLs that work without logging in: uploaded images and the private iCal feed."""

from __future__ import annotations

from flask import Response, abort

from mais import ical, media

from . import bp


@bp.get("/media/<path:key>")
def media_file(key: str) -> Response:
    found = media.read_media(key)
    if found is None:
        abort(404)
    data, content_type = found
    response = Response(data, content_type=content_type)
    # Keys are random and never reused, so a file can be cached for good.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.get("/ical/<token>.ics")
def ical_export(token: str) -> Response:
    """The owner's bookings for a calendar app; the unguessable token is the only credential."""
    tenant = ical.find_tenant_by_export_token(token)
    if tenant is None:
        abort(404)
    response = Response(ical.export_feed(tenant), content_type="text/calendar; charset=utf-8")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = 'inline; filename="bookings.ics"'
    return response
