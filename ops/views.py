"""Health, cache figures, Prometheus metrics, security.txt and CSP violation reports."""

from __future__ import annotations

import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import Response, abort, current_app, jsonify, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from mais import cache as tenant_cache
from mais import metrics
from mais.extensions import db, limiter
from mais.personal_data import scrub

from . import bp

log = logging.getLogger("mais.csp")

CSP_REPORT_MAX_BYTES = 16 * 1024
SECURITY_TXT_VALID_DAYS = 180


@bp.get("/health")
def health() -> tuple[Response, int]:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok"), 200


def _require_scrape_token() -> None:
    """/metrics and /health/cache tell anyone the platform's traffic: they need the bearer token
    when one is configured, and in production they are closed without one (doctor fails it)."""
    token = current_app.config.get("MAIS_METRICS_TOKEN")
    if not token:
        if current_app.config["MAIS_ENV"] == "production":
            abort(404)
        return
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        abort(404)


@bp.get("/health/cache")
def health_cache() -> Response:
    _require_scrape_token()
    return jsonify(tenant_cache.stats())


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    _require_scrape_token()
    return metrics.exposition()


@bp.get("/.well-known/security.txt")
def security_txt() -> Response:
    base_url = current_app.config["MAIS_BASE_URL"]
    contact = current_app.config.get("MAIS_SECURITY_CONTACT") or (
        "mailto:security@" + (urlsplit(base_url).hostname or "localhost")
    )
    expires = (datetime.now(UTC) + timedelta(days=SECURITY_TXT_VALID_DAYS)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    body = (
        f"Contact: {contact}\n"
        f"Expires: {expires:%Y-%m-%dT%H:%M:%SZ}\n"
        "Preferred-Languages: en\n"
        f"Canonical: {base_url}/.well-known/security.txt\n"
    )
    response = Response(body, mimetype="text/plain")
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response


def _origin_only(uri: object) -> str:
    """Keep the scheme and host of a URL (or a keyword such as ``inline``), never its path or
    query: those can hold tokens or a couple's details."""
    if not isinstance(uri, str) or not uri:
        return ""
    parts = urlsplit(uri)
    if parts.scheme and parts.netloc:
        return scrub(f"{parts.scheme}://{parts.netloc}")[:200]
    return scrub(uri.split("?", 1)[0].split("#", 1)[0])[:40]


def _path_only(uri: object) -> str:
    if not isinstance(uri, str):
        return ""
    return scrub(urlsplit(uri).path)[:200]


def _summaries(payload: object) -> list[dict[str, str]]:
    """The reports inside a legacy ``{"csp-report": …}`` body or a Reporting API list."""
    if isinstance(payload, dict) and isinstance(payload.get("csp-report"), dict):
        reports = [payload["csp-report"]]
    elif isinstance(payload, list):
        reports = [item.get("body") for item in payload if isinstance(item, dict)]
    else:
        reports = []
    summaries = []
    for report in reports[:20]:
        if not isinstance(report, dict):
            continue
        directive = report.get("effective-directive") or report.get("violated-directive")
        directive = directive or report.get("effectiveDirective") or ""
        summaries.append(
            {
                "directive": scrub(str(directive))[:80],
                "blocked": _origin_only(report.get("blocked-uri") or report.get("blockedURL")),
                "page": _path_only(report.get("document-uri") or report.get("documentURL")),
                "source": _origin_only(report.get("source-file") or report.get("sourceFile")),
            }
        )
    return summaries


@bp.post("/csp-report")
@limiter.limit("30 per minute")
def csp_report() -> tuple[str, int]:
    if (request.content_length or 0) > CSP_REPORT_MAX_BYTES:
        abort(413)
    raw = request.stream.read(CSP_REPORT_MAX_BYTES + 1)
    if len(raw) > CSP_REPORT_MAX_BYTES:
        abort(413)
    try:
        payload = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        abort(400)
    summaries = _summaries(payload)
    if not summaries:
        abort(400)
    for summary in summaries:
        metrics.CSP_REPORTS.inc()
        log.warning("csp violation", extra=summary)
    return "", 204
