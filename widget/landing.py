"""The widget's landing page, answered from the cache before Flask sees the request.

Every couple arriving from one tenant page asks for the same first page, and that request is
most of the widget's traffic. Its whole answer (status, final headers, body) is stored when the
full path renders it, tagged with the tenant's catalog generation read before rendering. This
WSGI layer then serves a repeat of the exact same request (slug, query string, HTMX or not,
scheme and host) with no request context, no database and no hooks: one cache read that checks
the generation, as Django's cache middleware does. Any change to the tenant or its catalog
bumps the generation, so a hit is exactly what the full path would answer now.

Answers are compressed here, not in Flask: the full path renders the page uncompressed, this layer
stores it brotli-compressed once, and serves that body as is to clients that accept brotli (every
current browser), gzip to those that accept only gzip, and the plain page to the rare rest. The
key holds the static files' build version too: a stored page names fingerprinted files, which a
new build may no longer have.

The tenant id of a slug is kept in process: slugs never change and tenants are never deleted,
so the mapping cannot go stale (tests, which roll tenants back, clear it with ``forget``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

from mais import cache, compression
from mais.assets import asset_version
from mais.logs import log_access
from mais.metrics import observe_request

# The catalog step's URLs (widget/views.py registers them): /widget/<slug>/ and /book/<slug>/.
_LANDING_PATH = re.compile(r"^/(widget|book)/([^/]+)/$")
_ENDPOINTS = {"widget": "widget.embed_catalog", "book": "widget.book_catalog"}
CACHE_SECONDS = 300
# Set by the full path (widget/views.py) on a landing request it may store: (tenant id,
# catalog generation read before anything the page shows).
STORE_MARK = "mais.landing_store"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _request_key(environ: dict[str, Any]) -> tuple[str, tuple[object, ...]] | None:
    """(slug, cache key parts) of a GET of a landing URL; None for any other request."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    match = _LANDING_PATH.match(environ.get("PATH_INFO", ""))
    if match is None:
        return None
    wants_block = bool(
        environ.get("HTTP_HX_REQUEST") and not environ.get("HTTP_HX_HISTORY_RESTORE_REQUEST")
    )
    parts = (
        # The stored body's format: a body stored otherwise by an earlier release is never read.
        "landing.br",
        match[1],
        environ.get("wsgi.url_scheme", "http"),
        environ.get("HTTP_HOST", ""),
        environ.get("QUERY_STRING", ""),
        wants_block,
    )
    return match[2], parts


class LandingCache:
    """WSGI middleware in front of the Flask application (see the module's docstring)."""

    def __init__(self, app: Flask, wsgi_app: WsgiApp) -> None:
        self._app = app
        self._wsgi_app = wsgi_app
        self._tenant_ids: dict[str, int] = {}
        self._reader: cache.VersionedReader | None = None

    def forget(self) -> None:
        """Drop the slug to tenant id mapping (only tests need this: they roll tenants back)."""
        self._tenant_ids.clear()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        found = _request_key(environ)
        if found is None:
            return self._wsgi_app(environ, start_response)
        started = time.perf_counter()
        slug, parts = found
        parts = (*parts, asset_version(self._app))
        tenant_id = self._tenant_ids.get(slug)
        if tenant_id is not None:
            hit = self._lookup(tenant_id, parts)
            if hit is not None:
                status, stored_headers, stored_body = hit
                headers, body = _encoded(environ, stored_headers, stored=stored_body)
                start_response(status, headers)
                endpoint = _ENDPOINTS[parts[1]]  # type: ignore[index]
                elapsed = time.perf_counter() - started
                status_code = int(status[:3])
                observe_request(endpoint, "GET", status_code, elapsed)
                log_access(endpoint, "GET", status_code, elapsed, tenant_id)
                return [body]
        return self._render_and_store(environ, start_response, slug, parts)

    def _lookup(self, tenant_id: int, parts: tuple[object, ...]) -> Any:
        if self._reader is None:
            self._reader = cache.VersionedReader(self._app)
        return self._reader.lookup(tenant_id, cache.CATALOG, parts)

    def _render_and_store(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        slug: str,
        parts: tuple[object, ...],
    ) -> Iterable[bytes]:
        answered: list[tuple[str, list[tuple[str, str]], Any]] = []
        written: list[bytes] = []

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # Held back: the headers sent depend on the coding chosen once the body is known.
            answered.append((status, headers, exc_info))
            return written.append

        # Flask renders the page uncompressed; this layer encodes it (see the module docstring).
        inner = {k: v for k, v in environ.items() if k != "HTTP_ACCEPT_ENCODING"}
        iterable = self._wsgi_app(inner, remember)
        try:
            body = b"".join([*written, *iterable])
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        status, headers, exc_info = answered[-1]
        store = inner.get(STORE_MARK)
        if store is not None and _storable(status, headers):
            tenant_id, generation = store
            stored_body = compression.compress(body, "br", stored=True)
            with self._app.app_context():
                cache.store_versioned(
                    tenant_id,
                    cache.CATALOG,
                    parts,
                    generation,
                    (status, tuple(headers), stored_body),
                    timeout=CACHE_SECONDS,
                )
            self._tenant_ids[slug] = tenant_id
            headers, body = _encoded(environ, headers, stored=stored_body)
        else:
            headers, body = _encoded(environ, headers, plain=body)
        start_response(status, headers, exc_info)
        return [body]


def _encoded(
    environ: dict[str, Any],
    headers: Iterable[tuple[str, str]],
    *,
    plain: bytes | None = None,
    stored: bytes | None = None,
) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and body to send for this client's ``Accept-Encoding``, from the plain body
    or from the brotli body stored once."""
    headers = list(headers)
    names = {name.lower(): value for name, value in headers}
    coding = compression.preferred_coding(environ.get("HTTP_ACCEPT_ENCODING"))
    if stored is not None:
        if coding == "br":
            body = stored
        else:
            body = compression.decompress(stored, "br")
            if coding is not None:
                body = compression.compress(body, coding)
    else:
        assert plain is not None
        mimetype = names.get("content-type", "").split(";")[0].strip()
        if "content-encoding" in names or not compression.worth_compressing(mimetype, len(plain)):
            coding = None
        body = plain if coding is None else compression.compress(plain, coding)
    headers = [
        (name, str(len(body)) if name.lower() == "content-length" else value)
        for name, value in headers
    ]
    if "content-length" not in names:
        headers.append(("Content-Length", str(len(body))))
    if coding is not None:
        headers.append(("Content-Encoding", coding))
    vary = names.get("vary", "")
    if "accept-encoding" not in vary.lower():
        headers = [(name, value) for name, value in headers if name.lower() != "vary"]
        headers.append(("Vary", f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"))
    return headers, body


def _storable(status: str, headers: list[tuple[str, str]]) -> bool:
    """The page itself, the same for every couple."""
    if not status.startswith("200"):
        return False
    names = {name.lower(): value for name, value in headers}
    return (
        "set-cookie" not in names
        and "content-encoding" not in names
        and names.get("content-type", "").startswith("text/html")
    )


def install(app: Flask) -> None:
    """Put the landing cache in front of ``app`` (inside any proxy fix, so the scheme and host
    it keys on are the ones the application sees)."""
    landing = LandingCache(app, app.wsgi_app)
    app.extensions["mais.landing"] = landing
    app.wsgi_app = landing  # type: ignore[method-assign]
