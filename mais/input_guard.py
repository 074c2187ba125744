"""Request hygiene: text no page of ours can want is refused before anything reads it.

NUL and the other C0/C1 control characters, and bytes that are not UTF-8 (lone surrogates
included), have no place in an address, a query or the headers MAIS reads. PostgreSQL cannot
even store NUL in text, and a CR/LF copied into a header (a redirect's Location) splits it. So
they are answered 400 with a short message here, in front of everything else (the landing cache,
the proxy fix, every hook and route), instead of failing somewhere deep inside as a 500.

Form bodies are parsed by Flask, so their check is a hook (``_refuse_nul_in_forms``): only NUL
is refused there, since a textarea may rightly hold line breaks and tabs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, request
from werkzeug.wrappers import Response

from mais.logs import log_access
from mais.metrics import observe_request

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# C0, DEL and C1. Header values may hold a tab (RFC 9110 field whitespace); nothing else may.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# Other headers may carry obs-text (raw bytes 0x80-0xff, which UTF-8 uses too): only C0 and DEL.
_RAW_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Headers whose values MAIS (or Flask and its extensions) reads as text, by WSGI name.
_READ_HEADERS = frozenset(
    {
        "HTTP_HOST",
        "HTTP_ORIGIN",
        "HTTP_REFERER",
        "HTTP_X_TENANT_KEY",
        "HTTP_ACCEPT",
        "HTTP_ACCEPT_LANGUAGE",
        "HTTP_AUTHORIZATION",
        "HTTP_COOKIE",
        "HTTP_IF_NONE_MATCH",
        "HTTP_STRIPE_SIGNATURE",
        "HTTP_X_CSRFTOKEN",
        "HTTP_X_CSRF_TOKEN",
        "CONTENT_TYPE",
    }
)
_READ_HEADER_PREFIXES = ("HTTP_HX_", "HTTP_X_FORWARDED_")
# Flask builds URLs and routes on the host: a name (ASCII, as IDNA spells it) or an IP address,
# and a port. Anything else fails inside Werkzeug with a bare error page.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
ENDPOINT = "input_guard"


def _text(raw: str) -> str | None:
    """A WSGI string (bytes carried as latin-1) as the UTF-8 text it spells, or None."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None


def _header_title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.removeprefix("HTTP_").split("_"))


def refusal(environ: dict[str, Any]) -> str | None:
    """Why this request is refused, or None when its address, query and headers are clean."""
    path = _text(environ.get("PATH_INFO", ""))
    if path is None or _CONTROL.search(path):
        return "The address contains a control character or text that is not UTF-8."
    try:
        pairs = parse_qsl(
            environ.get("QUERY_STRING", ""),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
        )
    except UnicodeError:
        pairs = None
    if pairs is None or any(_CONTROL.search(key + value) for key, value in pairs):
        return "The query string contains a control character or text that is not UTF-8."
    for name, value in environ.items():
        if not isinstance(value, str) or not (name.startswith("HTTP_") or name == "CONTENT_TYPE"):
            continue
        if name in _READ_HEADERS or name.startswith(_READ_HEADER_PREFIXES):
            text = _text(value)
            clean = text is not None and not _HEADER_CONTROL.search(text)
        else:
            clean = not _RAW_HEADER_CONTROL.search(value)
        if not clean:
            return (
                f"The {_header_title(name)} header contains a control character or text that "
                "is not UTF-8."
            )
    return _host_refusal(environ)


def _host_refusal(environ: dict[str, Any]) -> str | None:
    for name in ("HTTP_HOST", "HTTP_X_FORWARDED_HOST"):
        value = environ.get(name)
        if value is None:
            continue
        # A proxy chain may list several hosts; each must be one.
        hosts = value.split(",") if name == "HTTP_X_FORWARDED_HOST" else [value]
        if not all(_HOST.fullmatch(host.strip()) for host in hosts):
            return f"The {_header_title(name)} header is not a host name with an optional port."
    return None


def refused_response(message: str, path: str) -> Response:
    """400 in the shape of where it was asked: the API's JSON error under /v1, a page elsewhere."""
    if path == "/v1" or path.startswith("/v1/"):
        response = Response(json.dumps({"error": message}), 400, mimetype="application/json")
    else:
        body = f"<!doctype html><title>Bad request</title><h1>Bad request</h1><p>{message}</p>"
        response = Response(body, 400, mimetype="text/html")
    # Answered before the security layer: the strictest policy, since the page needs nothing.
    response.headers["Content-Security-Policy"] = "default-src 'none'; frame-ancestors 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


class InputGuard:
    """WSGI middleware: the outermost layer of the application (see the module's docstring)."""

    def __init__(self, wsgi_app: WsgiApp) -> None:
        self._wsgi_app = wsgi_app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        message = refusal(environ)
        if message is None:
            return self._wsgi_app(environ, start_response)
        response = refused_response(message, environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", ""))[:10]
        elapsed = time.perf_counter() - started
        observe_request(ENDPOINT, method, 400, elapsed)
        log_access(ENDPOINT, method, 400, elapsed, None)
        return response(environ, start_response)


def _refuse_nul_in_forms() -> Response | None:
    """PostgreSQL text cannot hold NUL and no form of ours wants one (checked once the body is
    parsed, which the WSGI layer does not do)."""
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None
    if any("\x00" in key + value for key, value in request.form.items(multi=True)):
        return refused_response(
            "Text may not contain NUL characters (\\x00). Please check what you entered.",
            request.path,
        )
    return None


def install(app: Flask) -> None:
    """Put the guard in front of everything ``app.wsgi_app`` is now (call it last) and check
    form bodies before any view."""
    app.before_request(_refuse_nul_in_forms)
    app.wsgi_app = InputGuard(app.wsgi_app)  # type: ignore[method-assign]
