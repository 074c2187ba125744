"""The browser harness itself: the platform answers on one origin, a page on another."""

from flask import Flask


def test_platform_and_second_origin_are_served(live_server, serve_on_host_origin, page):
    site = Flask("tenant_site")

    @site.get("/")
    def home():
        return "<!doctype html><title>Tenant site</title><h1>Welcome</h1>"

    host = serve_on_host_origin(site)
    assert host.startswith("http://127.0.0.1:") and live_server.startswith("http://localhost:")
    page.goto(host + "/")
    assert page.locator("h1").inner_text() == "Welcome"
    response = page.goto(live_server + "/health")
    assert response.status == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
