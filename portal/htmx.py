"""Small helpers for views that answer both full-page and HTMX requests."""

from __future__ import annotations

from flask import Response, redirect, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def vary_on_htmx(response: Response) -> Response:
    response.vary.add("HX-Request")
    return response


def redirect_to(url: str) -> Response:
    """A redirect that HTMX follows as a full navigation, and browsers as usual."""
    if is_htmx():
        response = Response(status=204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)  # type: ignore[return-value]
