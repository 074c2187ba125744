"""Static files at run time: served fingerprinted, precompressed and cached for good.

``mais/asset_build.py`` (run by ``scripts/setup``) builds ``build/static/`` and
``build/manifest.json`` from the sources under ``static/``. Here, WhiteNoise, in front of
everything else, answers ``/static/…`` from ``build/static/`` with the precompressed variant the
client accepts. Fingerprinted names never change content, so they are cached for a year as
``immutable``; templates name them through ``asset_url('widget/widget.css')``, which reads the
manifest loaded once at start-up. The few URLs that must stay fixed (the SDK that tenants paste:
``/static/sdk/mais-sdk.js``) are cached briefly and revalidated by an ETag taken from the
content, the same on every server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from wsgiref.headers import Headers

from flask import Flask, current_app, url_for
from whitenoise import WhiteNoise

from .asset_build import BUILD_DIR, AssetsNotBuilt, build

IMMUTABLE = "public, max-age=31536000, immutable"
# Fixed URLs (above all the SDK every host page loads): a change reaches browsers within five
# minutes; after that a revalidation costs a 304.
FIXED_URL_MAX_AGE = 300

_EXTENSION = "mais.assets"


@dataclass(frozen=True)
class Manifest:
    """What the build wrote: source name -> fingerprinted name, and each served file's digest."""

    version: str
    files: dict[str, str]
    digests: dict[str, str]
    static_dir: Path


def load_manifest(build_dir: Path = BUILD_DIR) -> Manifest:
    """The manifest of a finished build; a clear start-up error when there is none."""
    path = build_dir / "manifest.json"
    static_dir = build_dir / "static"
    try:
        data = json.loads(path.read_text())
        manifest = Manifest(data["version"], data["files"], data["digests"], static_dir)
    except (OSError, ValueError, KeyError, TypeError):
        raise AssetsNotBuilt(
            f"The static files are not built ({path} is missing or unreadable). "
            "Run scripts/setup (it builds them into build/static/)."
        ) from None
    if not static_dir.is_dir():
        raise AssetsNotBuilt(f"{static_dir} is missing. Run scripts/setup to build it.")
    return manifest


def load_assets(app: Flask) -> Manifest:
    """Read the manifest once, at start-up, and give templates ``asset_url``."""
    build_dir = Path(app.config.get("MAIS_ASSETS_DIR") or BUILD_DIR)
    if app.config["MAIS_ENV"] != "production" and build_dir == BUILD_DIR and build_dir.is_dir():
        # Development and tests: a source edited since set-up is rebuilt (a check of a few
        # milliseconds when nothing changed) rather than served stale. Production serves what
        # its set-up built.
        build(build_dir=build_dir)
    manifest = load_manifest(build_dir)
    app.extensions[_EXTENSION] = manifest
    app.jinja_env.globals["asset_url"] = asset_url
    return manifest


def asset_url(name: str) -> str:
    """The URL of the built static file ``name`` (its path under ``static/``), fingerprinted."""
    manifest: Manifest = current_app.extensions[_EXTENSION]
    try:
        built = manifest.files[name]
    except KeyError:
        raise LookupError(
            f"{name!r} is not a built static file: add it under static/ and run scripts/setup."
        ) from None
    return url_for("static", filename=built)


def asset_version(app: Flask) -> str:
    """Changes whenever any built file does (the landing cache keys on it: a stored page names
    fingerprinted files that a new build may not have)."""
    manifest: Manifest | None = app.extensions.get(_EXTENSION)
    return manifest.version if manifest is not None else ""


def serve_static_files(app: Flask) -> None:
    """Put WhiteNoise in front of the whole WSGI stack: a static file needs no scheme, host,
    session or hook, only the file."""
    manifest: Manifest = app.extensions[_EXTENSION]
    fingerprinted = {"/static/" + name for name in manifest.files.values()}

    def add_headers(headers: Headers, path: str, url: str) -> None:
        if url in fingerprinted:
            headers["Cache-Control"] = IMMUTABLE
        digest = manifest.digests.get(url.removeprefix("/static/"))
        if digest:
            # From the content, not the file's mtime: every server of a release agrees. Weak,
            # since one ETag stands for the identity, gzip and brotli bodies alike.
            headers["ETag"] = f'W/"{digest}"'
        headers["X-Content-Type-Options"] = "nosniff"

    app.wsgi_app = WhiteNoise(  # type: ignore[method-assign]
        app.wsgi_app,
        root=str(manifest.static_dir),
        prefix="/static/",
        max_age=FIXED_URL_MAX_AGE,
        add_headers_function=add_headers,
    )
