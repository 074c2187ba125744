"""Outbound requests go only to addresses that were checked: every non-global spelling is
refused, the connection goes to the checked address, each redirect hop is checked, and size and
time are capped. Traffic in these tests only ever goes to 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest
from werkzeug import Request, Response

from mais import outbound
from mais.config import build_config
from tests.support import TEST_SECRET_KEY, TEST_SECRETS_KEY

REFUSED_ALWAYS = [
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "169.254.169.254",  # cloud metadata
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
]


@pytest.mark.parametrize("text", REFUSED_ALWAYS)
def test_non_public_addresses_are_refused_even_when_loopback_is_allowed(text):
    address = ipaddress.ip_address(text)
    assert outbound.refusal(address, allow_loopback=False) is not None
    assert outbound.refusal(address, allow_loopback=True) is not None


@pytest.mark.parametrize("text", ["127.0.0.1", "127.1.2.3", "::1"])
def test_loopback_is_refused_unless_the_setting_allows_it(text):
    address = ipaddress.ip_address(text)
    assert outbound.refusal(address, allow_loopback=False) == "a loopback address"
    assert outbound.refusal(address, allow_loopback=True) is None


@pytest.mark.parametrize("text", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_pass(text):
    assert outbound.refusal(ipaddress.ip_address(text)) is None


def test_the_setting_is_off_unless_set_explicitly(tmp_path):
    env = {"SECRET_KEY": TEST_SECRET_KEY, "MAIS_SECRETS_KEY": TEST_SECRETS_KEY}
    assert build_config(str(tmp_path), env=env)["MAIS_OUTBOUND_ALLOW_LOOPBACK"] is False
    env["MAIS_OUTBOUND_ALLOW_LOOPBACK"] = "1"
    assert build_config(str(tmp_path), env=env)["MAIS_OUTBOUND_ALLOW_LOOPBACK"] is True


def test_a_feed_on_loopback_is_fetched_when_allowed(app_ctx, httpserver):
    httpserver.expect_request("/cal.ics").respond_with_data(
        "BEGIN:VCALENDAR", headers={"ETag": '"a"', "Last-Modified": "Wed, 01 Jan 2030 00:00:00 GMT"}
    )
    result = outbound.fetch(httpserver.url_for("/cal.ics"))  # the test app allows loopback
    assert (result.status, result.body, result.etag) == (200, b"BEGIN:VCALENDAR", '"a"')
    assert result.last_modified == "Wed, 01 Jan 2030 00:00:00 GMT"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_names_and_spellings_are_refused_when_not_allowed(httpserver, host):
    httpserver.expect_request("/cal.ics").respond_with_data("secret")
    with pytest.raises(outbound.OutboundError, match="public internet"):
        outbound.fetch(f"http://{host}:{httpserver.port}/cal.ics", allow_loopback=False)
    assert httpserver.log == []


def test_an_ipv4_mapped_loopback_is_refused_even_when_loopback_is_allowed(httpserver):
    httpserver.expect_request("/cal.ics").respond_with_data("secret")
    with pytest.raises(outbound.OutboundError, match="public internet"):
        outbound.fetch(f"http://[::ffff:127.0.0.1]:{httpserver.port}/cal.ics", allow_loopback=True)
    assert httpserver.log == []


def test_the_connection_goes_to_the_address_that_was_checked(httpserver, monkeypatch):
    """A second DNS answer (rebinding) is never asked for: the checked address is used."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding_dns(host, *args, **kwargs):
        if host == "calendar.test":
            lookups.append(host)
            if len(lookups) > 1:
                raise socket.gaierror("a second lookup would have answered another address")
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    hosts: list[str | None] = []

    def handler(request: Request) -> Response:
        hosts.append(request.headers.get("Host"))
        return Response("BEGIN:VCALENDAR")

    httpserver.expect_request("/cal.ics").respond_with_handler(handler)
    result = outbound.fetch(f"http://calendar.test:{httpserver.port}/cal.ics", allow_loopback=True)
    assert result.body == b"BEGIN:VCALENDAR"
    assert lookups == ["calendar.test"]
    assert hosts == [f"calendar.test:{httpserver.port}"]


def test_each_redirect_hop_is_checked(httpserver):
    port = httpserver.port
    httpserver.expect_request("/moved").respond_with_data(
        "", status=302, headers={"Location": f"http://[::ffff:127.0.0.1]:{port}/secret"}
    )
    httpserver.expect_request("/secret").respond_with_data("secret")
    with pytest.raises(outbound.OutboundError, match="public internet"):
        outbound.fetch(httpserver.url_for("/moved"), allow_loopback=True)
    assert [entry[0].path for entry in httpserver.log] == ["/moved"]


def test_redirects_are_followed_a_few_times_only(httpserver):
    httpserver.expect_request("/a").respond_with_data("", status=301, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=308, headers={"Location": "b2"})
    httpserver.expect_request("/b2").respond_with_data("BEGIN:VCALENDAR")
    result = outbound.fetch(httpserver.url_for("/a"), allow_loopback=True)
    assert result.body == b"BEGIN:VCALENDAR" and result.url.endswith("/b2")

    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )
    with pytest.raises(outbound.OutboundError, match="redirects too many times"):
        outbound.fetch(httpserver.url_for("/loop"), allow_loopback=True)


def test_a_conditional_request_may_answer_not_modified(httpserver):
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response("BEGIN:VCALENDAR", headers={"ETag": '"v1"'})

    httpserver.expect_request("/cal.ics").respond_with_handler(handler)
    first = outbound.fetch(httpserver.url_for("/cal.ics"), allow_loopback=True)
    again = outbound.fetch(httpserver.url_for("/cal.ics"), etag=first.etag, allow_loopback=True)
    assert (first.status, again.status, again.body) == (200, 304, b"")


def test_the_body_is_capped_with_or_without_a_length(httpserver):
    big = b"x" * (outbound.MAX_BODY_BYTES + 1)
    httpserver.expect_request("/declared").respond_with_data(big)

    def chunked(request: Request) -> Response:
        return Response(iter([big[:1_000_000], big[1_000_000:]]), direct_passthrough=True)

    httpserver.expect_request("/chunked").respond_with_handler(chunked)
    for path in ("/declared", "/chunked"):
        with pytest.raises(outbound.OutboundError, match="larger than 2 MB"):
            outbound.fetch(httpserver.url_for(path), allow_loopback=True)


def test_the_whole_exchange_has_a_deadline(httpserver):
    """A server dripping a byte now and then never trips a per-read timeout; the deadline
    still ends the fetch."""

    def drip(request: Request) -> Response:
        def body():
            for _ in range(15):
                time.sleep(0.2)
                yield b"x"

        return Response(body(), direct_passthrough=True)

    httpserver.expect_request("/slow").respond_with_handler(drip)
    started = time.monotonic()
    with pytest.raises(outbound.OutboundError, match="did not answer in time"):
        outbound.fetch(httpserver.url_for("/slow"), seconds=1.0, allow_loopback=True)
    assert time.monotonic() - started < 2.0


def test_an_error_status_is_a_clear_message(httpserver):
    httpserver.expect_request("/cal.ics").respond_with_data("no", status=500)
    with pytest.raises(outbound.OutboundError, match="HTTP status 500"):
        outbound.fetch(httpserver.url_for("/cal.ics"), allow_loopback=True)
