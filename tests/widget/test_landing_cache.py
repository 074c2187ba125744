"""The widget's landing page is answered from the cache, and every change that could alter it
(the catalog, the key, the allowed origins, the tenant's activation) is seen at once."""

from __future__ import annotations

import gzip
import logging
from dataclasses import replace
from urllib.parse import quote_plus

import brotli
from sqlalchemy import event

from mais import metrics
from mais.extensions import db
from mais.tenant_registry import rotate_public_key
from tests.factories import make_package

from .conftest import HOST_ORIGIN, htmx


def sdk_query(params: dict[str, str]) -> str:
    """The query string as mais-sdk.js writes it (``URLSearchParams``)."""
    return "&".join(
        f"{quote_plus(k, safe='*')}={quote_plus(v, safe='*')}".replace("~", "%7E")
        for k, v in params.items()
    )


def _landing(client, shop, **params):
    query = {**shop.embed, **params}
    return client.get(f"/widget/{shop.tenant.slug}/", query_string=sdk_query(query))


def _statements_during(request) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        request()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_repeated_landing_runs_no_sql_and_keeps_its_headers(client, shop):
    url, query = f"/widget/{shop.tenant.slug}/", sdk_query(shop.embed)
    first = client.get(url, query_string=query)
    statements = _statements_during(lambda: client.get(url, query_string=query))
    again = client.get(url, query_string=query)
    assert first.status_code == again.status_code == 200
    assert again.get_data() == first.get_data()
    assert statements == []
    assert list(again.headers.items()) == list(first.headers.items())
    assert f"frame-ancestors {HOST_ORIGIN}" in again.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in again.headers


def test_changes_to_the_catalog_or_the_tenant_are_seen_at_once(client, shop):
    assert "Courthouse" in _landing(client, shop).get_data(as_text=True)
    make_package(shop.tenant, "Lighthouse vows", 90000)
    db.session.commit()
    assert "Lighthouse vows" in _landing(client, shop).get_data(as_text=True)

    old_key = shop.tenant.public_key
    rotate_public_key(shop.tenant)
    db.session.commit()
    assert _landing(client, shop, key=old_key).status_code == 403

    shop.tenant.allowed_origins = ["https://elsewhere.example"]
    db.session.commit()
    assert _landing(client, shop).status_code == 403

    shop.tenant.allowed_origins = [HOST_ORIGIN]
    shop.tenant.is_active = False
    db.session.commit()
    closed = _landing(client, shop)
    assert (
        "not taking bookings" in closed.get_data(as_text=True).lower() or closed.status_code == 200
    )
    assert "Courthouse" not in closed.get_data(as_text=True)


def test_htmx_and_full_page_answers_are_kept_apart(client, shop):
    url = f"/widget/{shop.tenant.slug}/"
    for _ in range(2):
        fragment = htmx(client, url, query_string=sdk_query(shop.embed))
        page = client.get(url, query_string=sdk_query(shop.embed))
        assert "<html" not in fragment.get_data(as_text=True)
        assert "<html" in page.get_data(as_text=True)
        assert "Courthouse" in fragment.get_data(as_text=True)


def test_each_embedding_origin_gets_its_own_answer(client, shop, app):
    url = f"/widget/{shop.tenant.slug}/"
    stranger = {**shop.embed, "origin": "https://stranger.example"}
    preview = {**shop.embed, "origin": app.config["MAIS_BASE_URL"]}
    for _ in range(2):
        assert client.get(url, query_string=sdk_query(stranger)).status_code == 403
        allowed = client.get(url, query_string=sdk_query(shop.embed))
        from_portal = client.get(url, query_string=sdk_query(preview))
        assert allowed.status_code == from_portal.status_code == 200
    assert "frame-ancestors https://studio.example" in allowed.headers["Content-Security-Policy"]


def test_the_hosted_page_and_other_tenants_are_answered_apart(client, shop, other_tenant):
    ours_name, theirs_name = shop.tenant.name, other_tenant.name
    assert ours_name != theirs_name
    for _ in range(2):
        ours = client.get(f"/book/{shop.tenant.slug}/").get_data(as_text=True)
        theirs = client.get(f"/book/{other_tenant.slug}/").get_data(as_text=True)
        assert "Courthouse" in ours and ours_name in ours and theirs_name not in ours
        assert theirs_name in theirs and "Courthouse" not in theirs


def test_an_answer_from_the_cache_is_counted_and_logged(client, shop, caplog):
    url, query = f"/widget/{shop.tenant.slug}/", sdk_query(shop.embed)
    client.get(url, query_string=query)
    labels = {"endpoint": "widget.embed_catalog", "method": "GET", "status": "2xx"}
    before = metrics.registry.get_sample_value("mais_request_duration_seconds_count", labels)
    with caplog.at_level(logging.INFO, logger="mais.access"):
        # Only the repeat's line: an earlier test may have left access lines enabled already.
        caplog.clear()
        assert _statements_during(lambda: client.get(url, query_string=query)) == []
    after = metrics.registry.get_sample_value("mais_request_duration_seconds_count", labels)
    assert after == before + 1
    (line,) = [r for r in caplog.records if r.name == "mais.access"]
    assert line.endpoint == "widget.embed_catalog" and line.status == 200
    assert line.tenant_id == shop.tenant.id


def test_a_confirmation_view_is_never_taken_from_the_cache(client, shop):
    url = f"/widget/{shop.tenant.slug}/"
    query = {**shop.embed, "booking": "forged"}
    # A reference that is not this tenant's is ignored: the couple sees the catalog.
    assert client.get(url, query_string=query).status_code == 200
    statements = _statements_during(lambda: client.get(url, query_string=query))
    assert statements, "a landing with a booking reference must go through the full path"


def test_only_the_widgets_own_spelling_of_a_landing_is_kept(client, shop):
    url = f"/widget/{shop.tenant.slug}/"
    variants = [
        {**shop.embed, "junk": "1"},  # a parameter the widget never sends
        {**shop.embed, "origin": "https://stranger.example"},  # refused
        {**shop.embed, "ret": "https://elsewhere.example/"},  # a return URL it drops
    ]
    # Each spelled as the SDK spells a query, so that only the variation itself is refused.
    for query in map(sdk_query, variants):
        first = client.get(url, query_string=query)
        assert first.status_code in (200, 403)
        again = _statements_during(lambda q=query: client.get(url, query_string=q))
        assert again, f"{query} was answered from the cache"
    # The same parameters spelled another way (werkzeug's encoding) are not kept either.
    werkzeug_spelling = dict(shop.embed)
    client.get(url, query_string=werkzeug_spelling)
    assert _statements_during(lambda: client.get(url, query_string=werkzeug_spelling))
    # The widget's own spelling is.
    own = sdk_query(shop.embed)
    client.get(url, query_string=own)
    assert _statements_during(lambda: client.get(url, query_string=own)) == []
    hosted = f"/book/{shop.tenant.slug}/"
    client.get(hosted, query_string={"x": "1"})
    assert _statements_during(lambda: client.get(hosted, query_string={"x": "1"}))
    client.get(hosted)
    assert _statements_during(lambda: client.get(hosted)) == []


def _decoded(response) -> bytes:
    coding = response.headers.get("Content-Encoding")
    if coding == "br":
        return brotli.decompress(response.get_data())
    if coding == "gzip":
        return gzip.decompress(response.get_data())
    assert coding is None, coding
    return response.get_data()


def test_a_stored_landing_is_sent_compressed_to_clients_that_accept_it(client, shop):
    url, query = f"/widget/{shop.tenant.slug}/", sdk_query(shop.embed)
    chromium = {"Accept-Encoding": "gzip, deflate, br, zstd"}
    first = client.get(url, query_string=query, headers=chromium)
    plain = client.get(url, query_string=query)
    answers = {}
    for name, accept in (("br", chromium), ("gzip", {"Accept-Encoding": "gzip"})):
        seen = _statements_during(
            lambda a=accept, n=name: answers.__setitem__(
                n, client.get(url, query_string=query, headers=a)
            )
        )
        assert seen == [], f"the {name} answer was not taken from the cache"
    assert first.headers["Content-Encoding"] == answers["br"].headers["Content-Encoding"] == "br"
    assert answers["gzip"].headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain.headers
    for answer in (first, answers["br"], answers["gzip"], plain):
        assert answer.status_code == 200
        assert "Accept-Encoding" in answer.headers["Vary"]
        assert int(answer.headers["Content-Length"]) == len(answer.get_data())
        assert _decoded(answer) == plain.get_data()
    assert "Courthouse" in plain.get_data(as_text=True)
    assert len(answers["br"].get_data()) < len(plain.get_data()) / 3


def test_landings_the_cache_does_not_keep_are_compressed_too(client, shop):
    url = f"/widget/{shop.tenant.slug}/"
    # Another spelling of the same parameters: rendered every time, never stored.
    answer = client.get(url, query_string=dict(shop.embed), headers={"Accept-Encoding": "br"})
    assert answer.status_code == 200
    assert answer.headers["Content-Encoding"] == "br"
    assert "Courthouse" in _decoded(answer).decode()
    assert _statements_during(
        lambda: client.get(url, query_string=dict(shop.embed), headers={"Accept-Encoding": "br"})
    )


def test_a_new_build_of_the_static_files_is_a_new_landing(client, shop, app, monkeypatch):
    url, query = f"/widget/{shop.tenant.slug}/", sdk_query(shop.embed)
    client.get(url, query_string=query)
    assert _statements_during(lambda: client.get(url, query_string=query)) == []
    # A stored page names the fingerprinted files of the build it was rendered with.
    manifest = app.extensions["mais.assets"]
    monkeypatch.setitem(app.extensions, "mais.assets", replace(manifest, version="next"))
    assert _statements_during(lambda: client.get(url, query_string=query))
