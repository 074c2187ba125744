"""A tenant's own website, served on a second origin, embedding MAIS widgets with the real snippet.

``python demo/host.py --port 5001 --platform http://localhost:5000`` serves the seeded demo
tenants (``flask mais seed-demo``); tests call ``create_host_app`` with tenants of their own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flask import Flask, Response, render_template_string

HERE = Path(__file__).resolve().parent

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Harbour &amp; Pine Weddings — a demo tenant website</title>
  <link rel="stylesheet" href="/static/site.css">
  <script src="/static/site.js" defer></script>
</head>
<body>
  <header class="site-header">
    <p class="site-name">Harbour &amp; Pine Weddings</p>
    <p class="site-note">A demo of a tenant's own website: the booking widget below comes from
      <a href="{{ platform }}">{{ platform }}</a>, embedded with one script tag.</p>
  </header>
  <main>
    <h1>Plan your day with us</h1>
    <p>Pick a package, a date and the extras you like, and pay, without leaving this page.</p>
    <section class="booked" aria-labelledby="booked-title">
      <h2 id="booked-title">Bookings made on this page</h2>
      <ol id="booked-events" aria-live="polite"></ol>
    </section>
    {% for slug, key in widgets %}
      <section class="widget-slot" aria-label="Booking widget {{ loop.index }}">
        {% if loop.first %}
          <script src="{{ platform }}/static/sdk/mais-sdk.js" data-tenant="{{ slug }}" data-key="{{ key }}" async></script>
        {% else %}
          <div id="widget-{{ loop.index }}" class="widget-target" data-tenant-slug="{{ slug }}"></div>
          <script src="{{ platform }}/static/sdk/mais-sdk.js" data-tenant="{{ slug }}" data-key="{{ key }}" data-target="#widget-{{ loop.index }}" async></script>
        {% endif %}
        <noscript><a href="{{ platform }}/book/{{ slug }}">Book online</a></noscript>
      </section>
    {% endfor %}
  </main>
</body>
</html>
"""


def create_host_app(platform_url: str, widgets: list[tuple[str, str]]) -> Flask:
    """The demo website, embedding one widget per (tenant slug, public key)."""
    platform = platform_url.rstrip("/")
    app = Flask(__name__, static_folder=str(HERE / "static"))

    @app.get("/")
    def home() -> Response:
        response = Response(render_template_string(PAGE, platform=platform, widgets=widgets))
        # A strict policy like a careful tenant's: the snippet must work under it.
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'self' {platform}; frame-src {platform}; "
            "style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"
        )
        return response

    return app


def _seeded_widgets() -> list[tuple[str, str]]:
    from app import create_app
    from mais.cli import DEMO_TENANTS
    from mais.tenancy import platform_scope
    from mais.tenant_registry import find_tenant_by_slug

    with create_app().app_context(), platform_scope("the demo website lists the demo tenants"):
        tenants = [find_tenant_by_slug(spec["slug"]) for spec in DEMO_TENANTS]
        return [(t.slug, t.public_key) for t in tenants if t is not None]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--platform", default="http://localhost:5000")
    args = parser.parse_args(argv)
    widgets = _seeded_widgets()
    if not widgets:
        sys.exit("No demo tenants found: run `flask mais seed-demo` first.")
    create_host_app(args.platform, widgets).run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    # Run as a script (scripts/run): make the platform's packages importable.
    sys.path.insert(0, str(HERE.parent))
    main()
