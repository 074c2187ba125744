"""Requests per second of the widget's catalog step against a bare Flask route.

All are served by gunicorn with the same settings in the same run, on loopback, and driven by
the same small threaded HTTP client (50 concurrent clients, bounded in count and time): a bare
Flask app, a bare route added to the MAIS app (its middleware alone), and the catalog step.
Prints requests/s, p50 and p99 for each and the ratios (the aim: catalog/bare 0.5 or better).

    .venv/bin/python -m bench.widget [--requests 3000] [--seconds 20] [--clients 50]

The platform runs on a throwaway SQLite database built by the migrations, with one tenant of
12 packages in 3 segments (photos and add-ons included), so nothing else is needed.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "8"]
BARE_HTML = "<!doctype html><title>bare</title><p>" + "A package card. " * 40 + "</p>"


def bare_app() -> Flask:
    """The baseline: a Flask route that does nothing but answer."""
    app = Flask("bare")
    app.add_url_rule("/", "bare", lambda: BARE_HTML)
    return app


def platform_app() -> Flask:
    """MAIS itself, plus one bare route that pays only for the application's own middleware
    (security headers, tenant-scope reset, logging, metrics)."""
    sys.path.insert(0, str(ROOT))
    from app import create_app

    app = create_app()
    app.add_url_rule("/bench/bare", "bench_bare", lambda: BARE_HTML)
    return app


def _platform_env(database: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "MAIS_SECRETS_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "MAIS_PAYMENTS": "mock",
        "MAIS_BASE_URL": f"http://127.0.0.1:{port}",
        "MAIS_ENV": "development",
    }


def _seed(env: dict[str, str]) -> tuple[str, str]:
    """Migrate the database and create the benchmark tenant; returns (slug, public key)."""
    code = """
import sys
from flask_migrate import upgrade
from app import create_app
from mais.extensions import db
from mais.models import PackagePhoto
from mais.tenancy import tenant_scope
from mais.catalog import create_addon, create_package, create_segment
from mais.tenants import create_tenant

app = create_app()
with app.app_context():
    upgrade(directory="migrations")
    tenant, _, keys = create_tenant(
        slug="bench-studio", name="Bench Studio", owner_email="bench@example.com",
        owner_password="correct horse battery", allowed_origins=["http://127.0.0.1:9"],
    )
    with tenant_scope(tenant):
        addons = [create_addon(tenant, f"Extra {i}", 5000 * i) for i in range(1, 4)]
        for s in range(3):
            segment = create_segment(tenant, f"Segment {s}")
            for p in range(4):
                package = create_package(
                    tenant, f"Package {s}-{p}", 100000 + 5000 * p, segment=segment,
                    addons=addons, description_html="<p>A lovely day by the sea.</p>",
                )
                key = f"t{tenant.id}/{s * 4 + p:032x}"
                db.session.add(PackagePhoto(
                    package_id=package.id, storage_key=key + ".jpg",
                    thumbnail_key=key + "-thumb.jpg", content_type="image/jpeg", alt_text="Photo",
                ))
        db.session.flush()
    db.session.commit()
    print(tenant.slug, keys.public_key)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"seeding the benchmark database failed:\n{result.stderr}")
    slug, key = result.stdout.split()[-2:]
    return slug, key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(port: int, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not answer {path} with 200")


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def _load(name: str, port: int, path: str, clients: int, total: int, seconds: float) -> Result:
    """``clients`` threads on keep-alive connections share ``total`` requests, stopping early
    when ``seconds`` have passed."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = [total]
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        failed = 0
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            started = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failed += 1
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(name, len(latencies), errors, time.perf_counter() - started, latencies)


def _serve(target: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*GUNICORN, "--bind", f"127.0.0.1:{port}", "--log-level", "warning", target],
        cwd=ROOT,
        env=env,
        # One access-log line per request would flood the terminal; the cost of writing it stays.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        platform_port, bare_port = _free_port(), _free_port()
        env = _platform_env(Path(tmp) / "bench.db", platform_port)
        slug, key = _seed(env)
        # Spelled as mais-sdk.js spells it (URLSearchParams), as a couple's browser sends it.
        catalog_path = f"/widget/{slug}/?key={key}&origin={quote_plus('http://127.0.0.1:9')}"
        servers = [
            _serve("bench.widget:platform_app()", platform_port, env),
            _serve("bench.widget:bare_app()", bare_port, env),
        ]
        try:
            _wait_until_up(platform_port, catalog_path)
            _wait_until_up(bare_port, "/")
            results = []
            for name, port, path in (
                ("bare Flask app", bare_port, "/"),
                ("bare route in MAIS", platform_port, "/bench/bare"),
                ("widget catalog step", platform_port, catalog_path),
            ):
                _load(name, port, path, args.clients, min(200, args.requests), 5)  # warm-up
                results.append(_load(name, port, path, args.clients, args.requests, args.seconds))
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                server.wait(timeout=10)

    print(f"gunicorn {' '.join(GUNICORN[3:])}, {args.clients} concurrent clients, loopback")
    print(f"{'':22} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(
            f"{r.name:22} {r.requests:8d} {r.errors:6d} {r.rps:8.1f} "
            f"{r.percentile(0.50):8.1f} {r.percentile(0.99):8.1f}"
        )
    bare, bare_in_mais, catalog = results
    print(f"ratio catalog/bare Flask app:     {catalog.rps / bare.rps:.2f} (aim: 0.50 or better)")
    print(f"ratio catalog/bare route in MAIS: {catalog.rps / bare_in_mais.rps:.2f}")


if __name__ == "__main__":
    main()
