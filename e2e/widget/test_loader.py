"""The loader as served (the minified build at the snippet's fixed URL) builds the widget's frame
from its snippet, in a real browser."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import Flask
from playwright.sync_api import expect

from .conftest import FRAME

PAGE = """<!doctype html><title>host</title><body>
<main id="content">
<script src="{platform}/static/sdk/mais-sdk.js" data-tenant="{slug}" data-key="{key}" async></script>
<p id="after">after the snippet</p>
<section id="slot"></section>
<script src="{platform}/static/sdk/mais-sdk.js" data-tenant="{slug}" data-key="{key}" data-target="#slot" async></script>
</main>"""


def _site(html: str) -> Flask:
    site = Flask("site")
    site.add_url_rule("/", "home", lambda: html)
    return site


def test_the_served_loader_builds_each_frame_from_its_snippet(
    live_server, serve_on_host_origin, studio, page
):
    page.set_default_timeout(15000)
    host = serve_on_host_origin(
        _site(PAGE.format(platform=live_server, slug=studio.slug, key=studio.public_key))
    )
    loader = []
    page.on(
        "response",
        lambda response: loader.append(response) if "/static/sdk/" in response.url else None,
    )
    # A couple back from the checkout: the page's address carries the booking reference.
    page.goto(host + "/?x=1&mais_booking=REF123")
    frames = page.locator(FRAME)
    expect(frames).to_have_count(2)
    expect(page.locator("#slot " + FRAME)).to_have_count(1)
    # Without a target, the frame goes right after its own script, before what follows it.
    assert (
        page.evaluate(
            "() => document.querySelector('#content > div > iframe').parentElement"
            ".nextElementSibling.id"
        )
        == "after"
    )
    for index in range(2):
        frame = frames.nth(index)
        assert frame.get_attribute("allow") == "payment"
        src = urlsplit(frame.get_attribute("src"))
        assert f"{src.scheme}://{src.netloc}" == live_server
        assert src.path == f"/widget/{studio.slug}/"
        query = parse_qs(src.query)
        assert query == {
            "key": [studio.public_key],
            "origin": [host],
            # The return address drops the reference, so a reload shows the catalog again.
            "ret": [host + "/?x=1"],
            "booking": ["REF123"],
        }
        expect(
            page.frame_locator(FRAME).nth(index).get_by_role("heading", name="Choose a package")
        ).to_be_visible()
    assert loader and loader[0].headers.get("content-encoding") in ("br", "gzip")
