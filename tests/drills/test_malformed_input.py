"""Malformed input: Hypothesis-generated bodies against every form of the widget and the portal
and against the webhook endpoint, and garbage in the path segments, query strings and headers of
every route. No answer is a server error, and every rejection says what was wrong (never a bare
framework error page)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote_to_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mais.extensions import db
from mais.payments import sign_payload
from mais.tenancy import tenant_scope
from tests.factories import make_addon, make_blackout, make_package, make_segment, make_tenant
from tests.support import ROOT, TEST_WEBHOOK_SECRET
from widget.state import Selection, sign_selection

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GENERIC_ERROR_PAGES = (
    "could not understand",  # Werkzeug's bare 400
    "Internal Server Error",
    "Traceback",
)


def _field_names() -> list[str]:
    names: set[str] = set()
    for path in [*Path(ROOT, "templates").rglob("*.html"), *Path(ROOT, "portal").glob("*.py")]:
        text = path.read_text()
        names |= set(re.findall(r'name="([a-z_]+)"', text))
        names |= set(re.findall(r"^\s+([a-z_]+) = \w+Field\(", text, flags=re.M))
    names |= {
        "couple_name",
        "partner_name",
        "email",
        "phone",
        "s",
        "on_date",
        "month",
        "addon_ids",
        "title",
        "price",
        "description",
        "slug",
        "password",
        "reason",
        "start",
        "end",
        "origins",
        "return_url",
        "primary_color",
        "accent_color",
        "url",
    }
    return sorted(names - {"csrf_token", "viewport"})


FIELDS = _field_names()
TEXT = st.text(st.characters(codec="utf-8"), max_size=300) | st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "99999999999999999999",
        "1e400",
        "NaN",
        "2026-02-30",
        "9999-12-31",
        "0001-01-01",
        "#zzzzzz",
        "#FFFFFF",
        "javascript:alert(1)",
        "https://evil.example",
        "<script>alert(1)</script>",
        "a" * 5000,
        "\x00",
        "' OR 1=1 --",
        "12.345",
        "ftp://x",
    ]
)
FORMS = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=20), TEXT | st.lists(TEXT, max_size=3), max_size=8
)


def _assert_explained(response, where: str) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code < 500, f"{where}: {response.status_code}\n{body[:800]}"
    if 400 <= response.status_code < 500 and response.status_code not in (404, 405):
        assert body.strip(), f"{where}: an empty {response.status_code}"
        for generic in GENERIC_ERROR_PAGES:
            assert generic not in body, f"{where}: a generic error page\n{body[:800]}"


@pytest.fixture
def shop(app):
    """A tenant with one of everything, and a client logged in as its owner."""
    with app.app_context():
        tenant = make_tenant(allowed_origins=["https://studio.example"])
        with tenant_scope(tenant):
            segment = make_segment(tenant)
            addon = make_addon(tenant)
            package = make_package(
                tenant, "Courthouse", slug="courthouse", addons=[addon], segment=segment
            )
            blackout = make_blackout(tenant, date.today() + timedelta(days=5))
            ids = {
                "slug": tenant.slug,
                "package_id": package.id,
                "addon_id": addon.id,
                "segment_id": segment.id,
                "blackout_id": blackout.id,
                "booking_id": 999_999,
                "photo_id": 999_999,
                "message_id": 999_999,
                "event_id": 999_999,
                "tenant_id": tenant.id,
                "session_id": "cs_mock_unknown",
            }
        email, password, tenant_id = tenant.owner.email, tenant.owner_password, tenant.id
        db.session.commit()
    client = app.test_client()
    client.post("/portal/login", data={"email": email, "password": password})
    return client, ids, tenant_id


def _post_rules(app, prefixes: tuple[str, ...]) -> list:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods
        and rule.rule.startswith(prefixes)
        and rule.endpoint not in ("portal.logout",)
    ]


def _garbage_poster(client, url: str, endpoint: str, slug: str, valid_tokens: list[str]):
    @SETTINGS
    @given(form=FORMS, token=st.sampled_from(valid_tokens) | TEXT)
    def post_garbage(form, token):
        data = dict(form)
        if endpoint.startswith("widget.") and "s" not in data:
            data["s"] = token
        query = f"?key=garbage&origin={slug}" if url.startswith("/widget") else ""
        response = client.post(url + query, data=data)
        _assert_explained(response, f"POST {url} {sorted(data)}")

    return post_garbage


def test_every_portal_and_widget_form_explains_rejections(app, shop):
    client, ids, tenant_id = shop
    rules = _post_rules(app, ("/portal", "/widget", "/book"))
    assert len(rules) > 20

    with app.app_context():
        valid_tokens = [
            sign_selection(
                tenant_id,
                Selection("courthouse", (), date.today() + timedelta(days=30)).with_couple(
                    {"couple_name": "Ada", "email": "ada@example.com"}
                ),
            ),
            sign_selection(tenant_id, Selection("courthouse", (2**40,), None)),
            sign_selection(tenant_id, Selection("no-such-package", (), date(1999, 1, 1))),
        ]

    for rule in rules:
        url = rule.rule
        for name in rule.arguments:
            url = re.sub(rf"<(?:\w+:)?{name}>", str(ids[name]), url)

        _garbage_poster(client, url, rule.endpoint, ids["slug"], valid_tokens)()


EVENT_TYPES = [
    "checkout.session.completed",
    "checkout.session.expired",
    "charge.refunded",
    "account.updated",
    "checkout.session.async_payment_succeeded",
    "invoice.paid",
]
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


def test_webhook_endpoint_explains_rejections(app, client):
    with app.app_context():
        tenant_id = make_tenant().id
        db.session.commit()

    @SETTINGS
    @given(
        event_type=st.sampled_from(EVENT_TYPES) | TEXT,
        data_object=st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "metadata",
                    "payment_intent",
                    "payment_status",
                    "amount",
                    "amount_refunded",
                    "charges_enabled",
                ]
            )
            | TEXT,
            JSONISH
            | st.fixed_dictionaries(
                {"tenant_id": st.sampled_from([str(tenant_id), "x", "-1"]), "hold_id": TEXT}
            ),
            max_size=6,
        )
        | JSONISH,
        sign=st.booleans(),
        event_id=st.text(min_size=1, max_size=40),
    )
    def deliver(event_type, data_object, sign, event_id):
        payload = json.dumps(
            {"id": event_id, "type": event_type, "object": "event", "data": {"object": data_object}}
        )
        headers = {"Content-Type": "application/json"}
        if sign:
            headers["Stripe-Signature"] = sign_payload(payload, TEST_WEBHOOK_SECRET)
        response = client.post("/webhooks/stripe", data=payload, headers=headers)
        _assert_explained(response, f"webhook {event_type!r} {payload[:200]}")
        if response.status_code >= 400:
            assert response.is_json and response.json.get("status"), response.data

    deliver()


# What a client may put in a URL or a header that no page of ours wants: controls, CR/LF, broken
# or overlong percent-encodings, lone surrogates spelled in UTF-8, bytes that are not UTF-8.
GARBAGE = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "\r\nSet-Cookie: x=1",
        "\x1b[31m",
        "\x7f",
        "\x85",
        "\u2028",
        "\ufeff",
        "%00",
        "%",
        "%zz",
        "%e9",
        "%ED%A0%80",
        "%ff%fe",
        "%0d%0a",
        "..",
        "%2e%2e",
        "//evil.example",
        "\\evil.example",
        "javascript:alert(1)",
        "-1",
        "99999999999999999999",
        "a" * 5000,
    ]
)
# Spelled as sent: raw (the percent signs above stay as they are) or percent-encoded.
URL_PIECE = GARBAGE | GARBAGE.map(lambda text: quote(text, safe=""))
QUERY_NAMES = [
    "next",
    "key",
    "origin",
    "ret",
    "s",
    "month",
    "from",
    "to",
    "date",
    "booking",
    "package",
    "addon",
    "page",
    "q",
    "token",
    "filter",
]
QUERY = st.lists(st.tuples(st.sampled_from(QUERY_NAMES) | URL_PIECE, URL_PIECE), max_size=4).map(
    lambda pairs: "&".join(f"{quote_plus(k, safe='%')}={quote_plus(v, safe='%')}" for k, v in pairs)
)
RAW_QUERY = QUERY | URL_PIECE
# The headers MAIS, Flask or an extension reads, by WSGI name.
HEADERS = [
    "HTTP_HOST",
    "HTTP_ORIGIN",
    "HTTP_REFERER",
    "HTTP_HX_REQUEST",
    "HTTP_HX_TARGET",
    "HTTP_HX_CURRENT_URL",
    "HTTP_HX_HISTORY_RESTORE_REQUEST",
    "HTTP_X_TENANT_KEY",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_AUTHORIZATION",
    "HTTP_IF_NONE_MATCH",
    "HTTP_STRIPE_SIGNATURE",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_USER_AGENT",
    "CONTENT_TYPE",
]
# A server hands header values over as their bytes read as latin-1.
HEADER_VALUE = GARBAGE.map(lambda text: text.encode("utf-8", "surrogatepass").decode("latin-1"))
ROUTE_SETTINGS = settings(SETTINGS, max_examples=3)
# Answered to browsers' own reports, which no person reads: a bare 400 is enough there.
MACHINE_ENDPOINTS = frozenset({"ops.csp_report"})


def _routes(app) -> list[tuple[object, str]]:
    return [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - {"HEAD"})
    ]


def _segments(rule, ids: dict[str, object]) -> list[str]:
    """The rule's path, split on "/", with each variable given a value that exists."""
    values = {
        **ids,
        "package_slug": "courthouse",
        "filename": "sdk/mais-sdk.js",
        "key": "nothing.jpg",
        "unknown": "x",
    }
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: quote(str(values.get(m[1], "1"))), rule.rule)
    return path.split("/")


def _garbage_requester(client, rule, method: str, ids: dict[str, object], cookies: bool):
    segments = _segments(rule, ids)
    # A client with a cookie jar replaces any Cookie header with the jar's.
    header_names = HEADERS if cookies else [*HEADERS, "HTTP_COOKIE"]

    @ROUTE_SETTINGS
    @given(
        garbled=st.none() | st.integers(min_value=1, max_value=len(segments) - 1),
        piece=URL_PIECE,
        query=st.none() | RAW_QUERY,
        headers=st.dictionaries(st.sampled_from(header_names), HEADER_VALUE, max_size=3),
    )
    def request_garbage(garbled, piece, query, headers):
        parts = list(segments)
        if garbled is not None:
            parts[garbled] = piece
        path = "/".join(parts)
        # What a server puts in PATH_INFO: the percent-decoded bytes, read as latin-1.
        overrides = {"PATH_INFO": unquote_to_bytes(path).decode("latin-1"), **headers}
        where = f"{method} {rule.rule} path={path[:200]!r} q={query!r:.200} {headers!r:.300}"
        with client.open(
            path.replace("?", "%3F").replace("#", "%23"),
            method=method,
            query_string=query or "",
            environ_overrides=overrides,
        ) as response:
            if rule.endpoint in MACHINE_ENDPOINTS:
                assert response.status_code < 500, f"{where}: {response.status_code}"
            else:
                _assert_explained(response, where)

    return request_garbage


def test_every_route_survives_garbage_in_path_query_and_headers(app, shop):
    owner, ids, _tenant_id = shop
    anonymous = app.test_client(use_cookies=False)
    routes = _routes(app)
    assert len(routes) > 100
    for rule, method in routes:
        _garbage_requester(anonymous, rule, method, ids, cookies=False)()
        if rule.endpoint not in ("portal.logout", "admin.logout"):
            _garbage_requester(owner, rule, method, ids, cookies=True)()
