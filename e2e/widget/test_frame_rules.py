"""The loader's and the widget's rules about frames, origins and messages, in a real browser."""

from __future__ import annotations

from flask import Flask
from playwright.sync_api import expect

from .conftest import FRAME

FOREIGN_PAGE = """<!doctype html><title>foreign</title><script>
var p = {platform!r};
parent.postMessage({{type: "mais:resize", height: 3000}}, "*");
parent.postMessage({{type: "mais:navigate", url: p + "/book/x/"}}, "*");
parent.postMessage({{type: "mais:navigate", url: "https://checkout.stripe.com/c/pay/x"}}, "*");
parent.postMessage({{type: "mais:booked", reference: "FORGED"}}, "*");
parent.postMessage("done", "*");
</script>"""

HOST_PAGE = """<!doctype html><title>host</title><body>
<script>
window.maisEvents = [];
document.addEventListener("mais:booked", function (e) {{ maisEvents.push(e.detail.reference); }});
window.addEventListener("message", function (e) {{ if (typeof e.data == "string") document.body.dataset[e.data] = "1"; }});
</script>
<script src="{platform}/static/sdk/mais-sdk.js" data-tenant="{slug}" data-key="{key}" async></script>
{extra}"""


def _site(html: str) -> Flask:
    site = Flask("site")
    site.add_url_rule("/", "home", lambda: html)
    return site


def _frame_height(page) -> int:
    return page.eval_on_selector(FRAME, "f => f.getBoundingClientRect().height")


def _widget_frame(page, live_server):
    return next(f for f in page.frames if f.url.startswith(live_server + "/widget/"))


def test_frame_height_follows_the_content_without_inner_scrolling(
    live_server, demo_host, studio, page
):
    page.set_default_timeout(15000)
    page.goto(demo_host([(studio.slug, studio.public_key)]) + "/")
    frame = page.frame_locator(FRAME)
    heights = []
    steps = [
        (lambda: None, "Choose a package"),
        (lambda: frame.get_by_role("link", name="Courthouse").click(), "Courthouse"),
        (lambda: frame.get_by_role("button", name="Choose a date").click(), "Choose your date"),
    ]
    for action, heading in steps:
        action()
        expect(frame.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        inner = _widget_frame(page, live_server)
        # The loader resizes the frame to the content: nothing is left to scroll inside it
        # (waits up to the default timeout, then fails).
        inner.wait_for_function(
            "() => document.documentElement.scrollHeight <= window.innerHeight + 1"
            " && Math.abs(document.getElementById('widget').getBoundingClientRect().height"
            " - window.innerHeight) <= 1"
        )
        heights.append(_frame_height(page))
    assert len(set(heights)) > 1, f"the frame kept one height: {heights}"


def test_messages_from_a_foreign_frame_or_the_page_itself_change_nothing(
    live_server, serve_on_host_origin, serve_wsgi, studio, page
):
    page.set_default_timeout(15000)
    foreign = serve_wsgi(_site(FOREIGN_PAGE.format(platform=live_server)))
    host = serve_on_host_origin(
        _site(
            HOST_PAGE.format(
                platform=live_server,
                slug=studio.slug,
                key=studio.public_key,
                extra=f'<iframe id="foreign" src="{foreign}/"></iframe>',
            )
        )
    )
    page.goto(host + "/")
    expect(
        page.frame_locator(FRAME).get_by_role("heading", name="Choose a package")
    ).to_be_visible()
    page.wait_for_function("() => document.body.dataset.done === '1'")
    # The top window posting to itself is not the widget's frame either.
    page.evaluate(
        """p => {
            window.postMessage({type: "mais:resize", height: 4000}, "*");
            window.postMessage({type: "mais:navigate", url: p + "/book/x/"}, "*");
            window.postMessage({type: "mais:booked", reference: "SELF"}, "*");
            window.postMessage("done2", "*");
        }""",
        live_server,
    )
    page.wait_for_function("() => document.body.dataset.done2 === '1'")
    height = _frame_height(page)
    assert height < 3000
    assert page.url == host + "/"
    assert page.evaluate("window.maisEvents") == []


def test_a_site_on_an_origin_not_allowed_cannot_frame_the_widget(
    live_server, serve_wsgi, host_origin, studio, page
):
    page.set_default_timeout(15000)
    # The page even claims an allowed origin: the response's frame-ancestors still names only
    # the tenant's origins, so the browser refuses to show it here.
    lying = (
        f'<iframe title="w" src="{live_server}/widget/{studio.slug}/?key={studio.public_key}'
        f'&origin={host_origin}"></iframe>'
    )
    site = serve_wsgi(_site(f"<!doctype html><title>not allowed</title>{lying}"))
    with page.expect_console_message(lambda m: "frame-ancestors" in m.text) as refusal:
        page.goto(site + "/")
    assert "The request has been blocked" in refusal.value.text
    assert f"frame-ancestors {host_origin} {live_server}" in refusal.value.text
    for frame in page.frames[1:]:
        assert "Choose a package" not in frame.content()
