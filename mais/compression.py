"""Compressed answers: which codings, for what, and how hard.

Flask's answers (HTML, JSON, CSS, plain text) go through Flask-Compress: brotli when the client
accepts it, else gzip, with ``Vary: Accept-Encoding`` on every answer. The widget's landing
layer (``widget/landing.py``) answers in front of Flask and uses the helpers below, so both speak
the same codings; static files come precompressed from the build (``mais/asset_build.py``).
"""

from __future__ import annotations

import gzip

import brotli
from flask import Flask
from flask_compress import Compress
from werkzeug.http import parse_accept_header

# In order of preference when a client accepts several equally.
CODINGS = ("br", "gzip")
# Below this a compressed body saves less than its headers cost.
MIN_SIZE = 500
MIMETYPES = (
    "text/html",
    "text/css",
    "text/plain",
    "text/javascript",
    "application/javascript",
    "application/json",
    "application/problem+json",
    "application/xml",
    "image/svg+xml",
)
# Per answer: cheap enough to run on every request.
BROTLI_QUALITY = 4
GZIP_LEVEL = 6
# Once per stored answer (the landing cache), then served many times.
STORED_BROTLI_QUALITY = 9


def init_compression(app: Flask) -> None:
    app.config.setdefault("COMPRESS_ALGORITHM", list(CODINGS))
    app.config.setdefault("COMPRESS_MIMETYPES", list(MIMETYPES))
    app.config.setdefault("COMPRESS_MIN_SIZE", MIN_SIZE)
    app.config.setdefault("COMPRESS_BR_LEVEL", BROTLI_QUALITY)
    app.config.setdefault("COMPRESS_LEVEL", GZIP_LEVEL)
    Compress(app)


def preferred_coding(accept_encoding: str | None) -> str | None:
    """The coding to answer with, from an ``Accept-Encoding`` header; None for identity."""
    if not accept_encoding:
        return None
    accepted = parse_accept_header(accept_encoding)
    best = max(CODINGS, key=accepted.quality)
    return best if accepted.quality(best) > 0 else None


def worth_compressing(mimetype: str, size: int) -> bool:
    return mimetype in MIMETYPES and size >= MIN_SIZE


def compress(body: bytes, coding: str, *, stored: bool = False) -> bytes:
    if coding == "br":
        return bytes(
            brotli.compress(body, quality=STORED_BROTLI_QUALITY if stored else BROTLI_QUALITY)
        )
    if coding == "gzip":
        return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    raise ValueError(f"unknown coding {coding!r}")


def decompress(body: bytes, coding: str) -> bytes:
    if coding == "br":
        return bytes(brotli.decompress(body))
    if coding == "gzip":
        return gzip.decompress(body)
    raise ValueError(f"unknown coding {coding!r}")
