"""Static files come from the build: fingerprinted and cached for good, precompressed, and named
by every page; the SDK's fixed URL is revalidated; Flask's own answers are compressed too."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import brotli
import pytest

from app import create_app
from mais.asset_build import BUILD_DIR, build
from mais.assets import AssetsNotBuilt
from tests.factories import make_tenant
from tests.support import ROOT, app_config

MANIFEST = json.loads((BUILD_DIR / "manifest.json").read_text())
SDK_URL = "/static/sdk/mais-sdk.js"


def _get(client, url: str, **headers: str):
    # Buffered: the test client then closes the file WhiteNoise answered with.
    return client.get(url, headers=headers, buffered=True)


def _decoded(response) -> bytes:
    coding = response.headers.get("Content-Encoding")
    body = response.get_data()
    if coding == "br":
        return brotli.decompress(body)
    if coding == "gzip":
        return gzip.decompress(body)
    assert coding is None, coding
    return body


def test_a_fingerprinted_file_is_cached_for_good_and_sent_precompressed(client):
    url = "/static/" + MANIFEST["files"]["widget/widget.css"]
    plain = _get(client, url)
    assert plain.status_code == 200
    assert plain.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["Vary"]
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    for coding in ("br", "gzip"):
        answer = _get(client, url, **{"Accept-Encoding": coding})
        assert answer.status_code == 200
        assert answer.headers["Content-Encoding"] == coding
        assert len(answer.get_data()) < len(plain.get_data()) / 2
        assert _decoded(answer) == plain.get_data()
    # Chromium's header: brotli, the smaller one, is chosen.
    best = _get(client, url, **{"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert best.headers["Content-Encoding"] == "br"


def test_pages_name_only_fingerprinted_files(client, app_ctx):
    tenant = make_tenant()
    pages = [f"/book/{tenant.slug}/", "/portal/login", "/admin/login"]
    fingerprinted = set(MANIFEST["files"].values())
    for page in pages:
        html = client.get(page).get_data(as_text=True)
        named = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
        assert named, f"{page} names no static file"
        for name in named:
            assert name in fingerprinted, f"{page} names /static/{name}, not fingerprinted"
            answer = _get(client, "/static/" + name)
            assert answer.status_code == 200, name
            assert "immutable" in answer.headers["Cache-Control"]


def test_the_sdks_fixed_url_is_revalidated_and_fits_in_a_kilobyte(client):
    first = _get(client, SDK_URL, **{"Accept-Encoding": "gzip"})
    assert first.status_code == 200
    assert first.headers["Content-Encoding"] == "gzip"
    assert len(first.get_data()) <= 1024
    directives = {d.strip() for d in first.headers["Cache-Control"].split(",")}
    assert directives == {"public", "max-age=300"}
    etag = first.headers["ETag"]
    assert etag
    # The served loader is the minified build of the readable source, not the source itself.
    assert len(_decoded(first)) < len((ROOT / "static" / "sdk" / "mais-sdk.js").read_bytes())
    again = _get(client, SDK_URL, **{"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    # The ETag comes from the content: every server of one build agrees on it.
    assert MANIFEST["digests"]["sdk/mais-sdk.js"] in etag


@pytest.mark.parametrize("coding", ["br", "gzip"])
def test_html_and_json_answers_are_compressed_when_accepted(client, coding):
    for url, marker in (("/portal/login", b"<html"), ("/v1/openapi.json", b'"openapi"')):
        plain = client.get(url)
        answer = client.get(url, headers={"Accept-Encoding": coding})
        assert plain.status_code == answer.status_code == 200
        assert "Content-Encoding" not in plain.headers
        assert answer.headers["Content-Encoding"] == coding
        assert "Accept-Encoding" in answer.headers["Vary"]
        assert "Accept-Encoding" in plain.headers["Vary"]
        assert marker in _decoded(answer)
        assert len(answer.get_data()) < len(plain.get_data())


def test_without_a_build_the_application_refuses_to_start(database_url, tmp_path):
    config = app_config(database_url, tmp_path, MAIS_ASSETS_DIR=str(tmp_path / "nothing"))
    with pytest.raises(AssetsNotBuilt, match="scripts/setup"):
        create_app(config)


def test_the_build_minifies_fingerprints_and_compresses_and_skips_when_unchanged(tmp_path):
    assert build(build_dir=tmp_path) is True
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    built = tmp_path / "static" / manifest["files"]["sdk/mais-sdk.js"]
    content = built.read_bytes()
    assert manifest["digests"]["sdk/mais-sdk.js"] in built.name
    assert (tmp_path / "static" / "sdk" / "mais-sdk.js").read_bytes() == content
    assert brotli.decompress(Path(f"{built}.br").read_bytes()) == content
    assert gzip.decompress(Path(f"{built}.gz").read_bytes()) == content
    assert len(content) < len((ROOT / "static" / "sdk" / "mais-sdk.js").read_bytes()) * 0.75
    assert build(build_dir=tmp_path) is False
