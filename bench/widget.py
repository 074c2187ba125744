"""The widget's catalog step: requests per second against a bare Flask route, and bytes on the
wire in a real browser.

Throughput: all are served by gunicorn with the same settings in the same run, on loopback, and
driven by the same small threaded HTTP client (50 concurrent clients, bounded in count and time,
asking for compressed answers as browsers do): a bare Flask app, a bare route added to the MAIS
app (its middleware alone), and the catalog step. Prints requests/s, p50 and p99 for each and
the ratios (the aim: catalog/bare 0.5 or better).

Bytes: Debian's Chromium (Playwright, a fresh profile) opens the demo tenant website embedding
one widget and adds up the encoded bytes of everything the platform sent (loader, HTML, CSS, JS
with htmx); opens it again and counts what reached the platform (gunicorn's access log: a 304
or a re-fetch is a revalidation); then, fresh again, a page with two widgets of two tenants.
Aims: first view <= 24 KB, a repeat view only the HTML, a second widget <= 3 KB more.

    .venv/bin/python -m bench.widget [--only throughput|browser] [--requests 3000]
        [--seconds 20] [--clients 50]

The platform runs on a throwaway SQLite database built by the migrations, with tenants of 12
packages in 3 segments each (photos and add-ons included), so nothing else is needed.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import logging
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
from typing import Any
from urllib.parse import quote_plus

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "8"]
# Compressed answers, as every browser asks for them (an answer for a client that takes none is
# the rare path).
BROWSER_HEADERS = {"Accept-Encoding": "gzip, deflate, br"}
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


def _seed(
    env: dict[str, str], origin: str = "http://127.0.0.1:9", tenants: int = 1
) -> list[tuple[str, str]]:
    """Migrate the database and create the benchmark tenants, each embeddable from ``origin``;
    returns (slug, public key) of each."""
    code = """
import sys
from flask_migrate import upgrade
from app import create_app
from mais.extensions import db
from mais.models import PackagePhoto
from mais.tenancy import tenant_scope
from mais.catalog import create_addon, create_package, create_segment
from mais.tenant_registry import create_tenant

app = create_app()
origin, count = sys.argv[1], int(sys.argv[2])
with app.app_context():
  upgrade(directory="migrations")
  for n in range(1, count + 1):
    suffix = "" if n == 1 else f"-{n}"
    tenant, _, keys = create_tenant(
        slug="bench-studio" + suffix, name=f"Bench Studio {n}",
        owner_email=f"bench{n}@example.com",
        owner_password="correct horse battery", allowed_origins=[origin],
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
    print("tenant", tenant.slug, keys.public_key)
"""
    result = subprocess.run(
        [sys.executable, "-c", code, origin, str(tenants)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise SystemExit(f"seeding the benchmark database failed:\n{result.stderr}")
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("tenant ")]
    return [(slug, key) for _, slug, key in lines]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(port: int, path: str, timeout: float = 120) -> None:
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
                conn.request("GET", path, headers=BROWSER_HEADERS)
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


def _serve(
    target: str, port: int, env: dict[str, str], access_log: Path | None = None
) -> subprocess.Popen:
    options = ["--log-level", "warning"]
    if access_log is not None:
        options += ["--access-logfile", str(access_log), "--access-logformat", "%(U)s %(s)s %(B)s"]
    return subprocess.Popen(
        [*GUNICORN, "--bind", f"127.0.0.1:{port}", *options, target],
        cwd=ROOT,
        env=env,
        # One access-log line per request would flood the terminal; the cost of writing it stays.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def throughput(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        platform_port, bare_port = _free_port(), _free_port()
        env = _platform_env(Path(tmp) / "bench.db", platform_port)
        ((slug, key),) = _seed(env)
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


# --- Bytes on the wire in a real browser ---------------------------------------------------------

CHROMIUM = os.environ.get("MAIS_CHROMIUM", "/usr/bin/chromium")
# What the widget itself needs; images (package photos) are the tenant's content, listed apart.
BUDGETED = frozenset({"document", "script", "stylesheet", "fetch", "xhr"})


@dataclass
class Fetched:
    url: str
    kind: str
    status: int
    coding: str
    body: int
    headers: int


def _view(context: Any, url: str, platform: str, widgets: int = 1) -> list[Fetched]:
    """Open ``url`` in a new page of ``context``; what the platform sent for it."""
    page = context.new_page()
    finished: list[Any] = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.goto(url)
    for index in range(widgets):
        frame = page.frame_locator("iframe[title='Booking widget']").nth(index)
        frame.get_by_role("heading", name="Choose a package").wait_for(timeout=60000)
    page.wait_for_load_state("networkidle")
    fetched = []
    for request in finished:
        if not request.url.startswith(platform):
            continue
        response = request.response()
        sizes = request.sizes()
        fetched.append(
            Fetched(
                request.url.removeprefix(platform),
                request.resource_type,
                response.status if response else 0,
                (response.headers.get("content-encoding") if response else None) or "-",
                # Chromium reports a memory-cache hit with a negative body: nothing came.
                max(sizes["responseBodySize"], 0),
                sizes["responseHeadersSize"] if sizes["responseBodySize"] >= 0 else 0,
            )
        )
    page.close()
    return fetched


def _served_since(log: Path, offset: int) -> list[tuple[str, int, int]]:
    """(path, status, body bytes) of each request the platform answered after ``offset``."""
    with log.open() as lines:
        lines.seek(offset)
        return [
            (path, int(status), int(size) if size.isdigit() else 0)
            for path, status, size in (line.split() for line in lines if line.strip())
        ]


def _print_view(title: str, fetched: list[Fetched]) -> int:
    budgeted = [f for f in fetched if f.kind in BUDGETED]
    total = sum(f.body for f in budgeted)
    headers = sum(f.headers for f in budgeted)
    print(f"\n{title}: {total:,} B of bodies, {headers:,} B of headers (budgeted responses)")
    for f in fetched:
        mark = "" if f.kind in BUDGETED else "  (not budgeted)"
        print(
            f"  {f.kind:10} {f.status:3d} {f.coding:4} {f.body:7,d} B body "
            f"{f.headers:5,d} B headers  {f.url[:70]}{mark}"
        )
    return total


def browser(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.serving import make_server

    from demo.host import create_host_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        platform_port, host_port = _free_port(), _free_port()
        platform = f"http://127.0.0.1:{platform_port}"
        host = f"http://127.0.0.1:{host_port}"
        env = _platform_env(Path(tmp) / "bench.db", platform_port)
        widgets = _seed(env, origin=host, tenants=2)
        log = Path(tmp) / "access.log"
        log.touch()
        server = _serve("bench.widget:platform_app()", platform_port, env, access_log=log)
        site = DispatcherMiddleware(
            create_host_app(platform, widgets[:1]),
            {"/two": create_host_app(platform, widgets)},
        )
        site_server = make_server("127.0.0.1", host_port, site, threaded=True)
        threading.Thread(target=site_server.serve_forever, daemon=True).start()
        try:
            _wait_until_up(platform_port, "/static/sdk/mais-sdk.js")
            with sync_playwright() as playwright:
                chromium = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                try:
                    fresh = chromium.new_context()
                    first = _view(fresh, host + "/", platform)
                    offset = log.stat().st_size
                    _view(fresh, host + "/", platform)
                    repeat = _served_since(log, offset)
                    fresh.close()
                    fresh = chromium.new_context()
                    two = _view(fresh, host + "/two/", platform, widgets=2)
                    fresh.close()
                finally:
                    chromium.close()
        finally:
            site_server.shutdown()
            server.terminate()
            server.wait(timeout=10)

    print("Chromium, fresh profile, demo tenant site on another origin, platform under gunicorn")
    one_total = _print_view("One widget, first view", first)
    print(f"\nThe same page again, same browser: {len(repeat)} request(s) reached the platform")
    for path, status, size in repeat:
        print(f"  {status:3d} {size:7,d} B  {path[:70]}")
    # The bench's package photos have no files (404, never cached): the tenant's content, apart.
    revalidations = [r for r in repeat if not r[0].startswith(("/widget/", "/portal/media/"))]
    pages = [r for r in repeat if r[0].startswith("/widget/")]
    two_total = _print_view("Two widgets of two tenants, first view", two)
    print(
        f"\nfirst view {one_total:,} B (aim <= 24,576); repeat view: "
        f"{len(pages)} HTML, {len(revalidations)} revalidations (aim 0); "
        f"second widget +{two_total - one_total:,} B (aim <= 3,072)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("throughput", "browser"))
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)
    if args.only != "browser":
        throughput(args)
    if args.only != "throughput":
        browser(args)


if __name__ == "__main__":
    main()
