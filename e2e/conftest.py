"""Browser tests: the platform and a tenant's website served for real on two origins, driven by
Debian's Chromium through Playwright.

- ``live_server``: the platform's base URL, ``http://localhost:<port>``, served by a threaded
  Werkzeug server in this process against the worker's migrated test database.
- ``live_app``: that Flask app, for creating committed data (``with live_app.app_context(): ...;
  db.session.commit()``). Every test here is ``committed``: use unique tenants.
- ``host_origin``: ``http://127.0.0.1:<port>``, a second origin reserved for a tenant's website;
  create tenants with ``allowed_origins=[host_origin]``, then call ``demo_host(widgets)`` or
  ``serve_on_host_origin(wsgi_app)`` to serve a page there.
- ``serve_wsgi(app)``: serve any WSGI app on another free port of 127.0.0.1 (a foreign origin).
- ``browser``, ``browser_context_factory`` (``new_context(**kwargs)``, closed afterwards), ``page``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from tests.support import app_config

CHROMIUM = os.environ.get("MAIS_CHROMIUM", "/usr/bin/chromium")
# Assertions wait for what a couple would see; on a busy two-core machine a page with two
# frames can take longer than Playwright's default five seconds to settle.
expect.set_options(timeout=15_000)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.committed)
            item.add_marker(pytest.mark.e2e)


def _not_ready(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"not ready"]


class _ServerThread:
    """A server bound to a free port by the operating system (port 0) and kept for as long as it
    is needed: no other test can take its port between a look and a bind. Its application can
    be swapped while it runs."""

    def __init__(self, wsgi_app: Any = _not_ready) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, wsgi_app: Any) -> None:
        self.server.app = wsgi_app

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def _live_server_thread() -> Iterator[_ServerThread]:
    server = _ServerThread()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_app(
    app: Flask,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    _live_server_thread: _ServerThread,
) -> Iterator[Flask]:
    # Depends on ``app`` so that the migrations have run on this worker's database.
    port = _live_server_thread.port
    config = app_config(
        database_url,
        tmp_path_factory.mktemp("live"),
        MAIS_BASE_URL=f"http://localhost:{port}",
    )
    application = create_app(config)
    _live_server_thread.serve(application)
    yield application
    with application.app_context():
        from mais.extensions import db

        db.engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_app: Flask) -> str:
    return live_app.config["MAIS_BASE_URL"]


@pytest.fixture(scope="session")
def _host_server_thread() -> Iterator[_ServerThread]:
    """The tenant's website: one origin for the whole session (tenants allow it by name)."""
    server = _ServerThread()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def host_origin(_host_server_thread: _ServerThread) -> str:
    return f"http://127.0.0.1:{_host_server_thread.port}"


@pytest.fixture
def serve_on_host_origin(
    host_origin: str, _host_server_thread: _ServerThread
) -> Iterator[Callable[[Any], str]]:
    def serve(wsgi_app: Any) -> str:
        _host_server_thread.serve(wsgi_app)
        return host_origin

    yield serve
    _host_server_thread.serve(_not_ready)


@pytest.fixture
def demo_host(
    live_server: str, serve_on_host_origin: Callable[[Any], str]
) -> Callable[[list[tuple[str, str]]], str]:
    """Serve the demo tenant website embedding the given (slug, public key) widgets."""

    def serve(widgets: list[tuple[str, str]]) -> str:
        from demo.host import create_host_app

        return serve_on_host_origin(create_host_app(live_server, widgets))

    return serve


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[[Any], str]]:
    servers: list[_ServerThread] = []

    def serve(wsgi_app: Any) -> str:
        server = _ServerThread(wsgi_app)
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.exit(f"Browser tests need Chromium at {CHROMIUM} (scripts/ensure-chromium).", 3)
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def browser_context_factory(browser: Any) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def new_context(**kwargs: Any) -> Any:
        context = browser.new_context(**kwargs)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield new_context
    for context in contexts:
        context.close()


@pytest.fixture
def page(browser_context_factory: Callable[..., Any]) -> Any:
    return browser_context_factory().new_page()
