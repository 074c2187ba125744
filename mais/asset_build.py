"""Builds the static files at set-up: ``python -m mais.asset_build`` (``scripts/setup`` runs it).

Every file under ``static/`` (the readable sources) plus the vendored browser code from
``node_modules/`` goes to ``build/static/`` (never committed). JavaScript and CSS are minified by
esbuild (from the npm registry, ``package.json``); each file is written under its own name and
under a fingerprinted one (``widget/widget.3f2a1b9c0d4e.css``), each with ``.br`` and ``.gz``
beside it, and ``build/manifest.json`` maps source names to fingerprinted ones (``mais/assets.py``
serves them). A build whose inputs have not changed is skipped, so set-up stays quick.

Kept free of Flask imports: set-up runs it on every ``make run`` and ``make test``.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import json
import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import brotli

from .errors import ConfigurationError

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "static"
BUILD_DIR = ROOT / "build"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
# Third-party browser code, taken as its authors built it (htmx 2 ships no smaller build than
# its own minified one; esbuild's re-minification of it came out larger).
VENDORED = {"vendor/htmx.min.js": ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"}
MINIFIED_SUFFIXES = (".js", ".css")
COMPRESSED_SUFFIXES = (".js", ".css", ".svg", ".json", ".txt", ".html", ".xml", ".ico", ".map")
# Bump when the build itself changes what it writes, so that set-up rebuilds.
BUILD_FORMAT = 1


class AssetsNotBuilt(ConfigurationError):
    """The static files have not been built, or cannot be."""


def _sources() -> dict[str, Path]:
    """Every file to publish, by its name under ``/static/``."""
    sources: dict[str, Path] = {}
    for path in sorted(SOURCE_DIR.rglob("*")):
        name = path.relative_to(SOURCE_DIR).as_posix()
        # static/vendor/ is where set-ups before this build copied htmx: never a source.
        if path.is_file() and not name.startswith(("vendor/", ".")) and "/." not in name:
            sources[name] = path
    for name, path in VENDORED.items():
        if not path.is_file():
            raise AssetsNotBuilt(f"{path} is missing: run `npm ci` (scripts/setup does).")
        sources[name] = path
    return sources


def _esbuild_version() -> str:
    if not ESBUILD.exists():
        raise AssetsNotBuilt(f"{ESBUILD} is missing: run `npm ci` (scripts/setup does).")
    package = ROOT / "node_modules" / "esbuild" / "package.json"
    return str(json.loads(package.read_text())["version"])


def _stamp(sources: dict[str, Path]) -> str:
    digest = hashlib.sha256(f"{BUILD_FORMAT}:{_esbuild_version()}".encode())
    for name, path in sources.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _to_minify(name: str) -> bool:
    return (
        name not in VENDORED
        and name.endswith(MINIFIED_SUFFIXES)
        and not name.endswith((".min.js", ".min.css"))
    )


def _minify(sources: dict[str, Path], out_dir: Path) -> dict[str, bytes]:
    names = [name for name in sources if _to_minify(name)]
    if not names:
        return {}
    subprocess.run(
        [
            str(ESBUILD),
            *(str(sources[name]) for name in names),
            "--minify",
            "--log-level=warning",
            f"--outbase={SOURCE_DIR}",
            f"--outdir={out_dir}",
        ],
        check=True,
    )
    return {name: (out_dir / name).read_bytes() for name in names}


def _fingerprinted(name: str, digest: str) -> str:
    stem, suffix = posixpath.splitext(name)
    return f"{stem}.{digest}{suffix}"


def _variants(name: str, content: bytes) -> dict[str, bytes]:
    """The file and its precompressed variants (those that save something worth a
    Content-Encoding), by suffix."""
    variants = {"": content}
    if name.endswith(COMPRESSED_SUFFIXES):
        for suffix, compressed in (
            (".br", brotli.compress(content, quality=11)),
            (".gz", gzip.compress(content, compresslevel=9, mtime=0)),
        ):
            if len(compressed) < len(content) * 0.95:
                variants[suffix] = compressed
    return variants


def build(force: bool = False, build_dir: Path = BUILD_DIR) -> bool:
    """Build ``build/static/`` and ``build/manifest.json``; False when already up to date."""
    build_dir.mkdir(parents=True, exist_ok=True)
    # Set-up and test workers may build at once: one builds, the others then find it current.
    with (build_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(force, build_dir)


def _build_locked(force: bool, build_dir: Path) -> bool:
    sources = _sources()
    stamp = _stamp(sources)
    manifest_path = build_dir / "manifest.json"
    try:
        current = json.loads(manifest_path.read_text()).get("stamp")
    except (OSError, ValueError, AttributeError):
        current = None
    if not force and current == stamp and (build_dir / "static").is_dir():
        return False

    with tempfile.TemporaryDirectory(dir=build_dir, prefix=".building-") as tmp:
        work = Path(tmp)
        minified = _minify(sources, work / "minified")
        out = work / "static"
        files: dict[str, str] = {}
        digests: dict[str, str] = {}
        for name, path in sources.items():
            content = minified.get(name, None)
            if content is None:
                content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()[:12]
            files[name] = _fingerprinted(name, digest)
            variants = _variants(name, content)
            for served in (name, files[name]):
                (out / served).parent.mkdir(parents=True, exist_ok=True)
                for suffix, data in variants.items():
                    (out / (served + suffix)).write_bytes(data)
                digests[served] = digest
        version = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
        # Swap whole directories, so a running server never reads a half-written build.
        old = work / "old"
        target = build_dir / "static"
        if target.exists():
            target.rename(old)
        out.rename(target)
        manifest = {"version": version, "stamp": stamp, "files": files, "digests": digests}
        written = work / "manifest.json"
        written.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(written, manifest_path)
        shutil.rmtree(old, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the static files into build/static/.")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    try:
        built = build(force=args.force)
    except (AssetsNotBuilt, subprocess.CalledProcessError) as error:
        sys.exit(f"Building the static files failed: {error}")
    print("==> static files built into build/static/" if built else "==> static files up to date")


if __name__ == "__main__":
    main()
