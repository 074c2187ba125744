"""The one place that knows how HTMX talks to us, for the portal, the admin and the widget.

A small module rather than a dependency: htmx-flask has had no release since 2022, and what the
views need is four functions. A view that answers HTMX and full-page requests alike renders a
named block of its page's own template for the former and the whole page for the latter.
"""

from __future__ import annotations

from flask import Response, redirect, request


def is_htmx() -> bool:
    """An HTMX request that wants a partial. A history-restore request (the page was not in
    htmx's history cache) wants the whole page, as a first visit does."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def vary_on_htmx(response: Response) -> Response:
    """Caches must keep the partial and the full page of one URL apart."""
    response.vary.add("HX-Request")
    return response


def redirect_to(url: str, status: int = 302) -> Response:
    """A redirect that HTMX follows as a full navigation, and browsers as usual."""
    if is_htmx():
        return Response(status=204, headers={"HX-Redirect": url})
    return redirect(url, status)  # type: ignore[return-value]
