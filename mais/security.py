"""Security headers: one strict policy for the whole application, framing only for the widget."""

from __future__ import annotations

from flask import Flask, Response, g

from .extensions import talisman

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self' https://checkout.stripe.com",
    "base-uri": "'none'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
}


def allow_framing_by(origins: list[str]) -> None:
    """Let the current response be framed by exactly these origins (the widget's tenant)."""
    g.mais_frame_ancestors = [origin for origin in origins if origin]


def _apply_frame_ancestors(response: Response) -> Response:
    origins = g.get("mais_frame_ancestors")
    if origins is None:
        return response
    policy = response.headers.get("Content-Security-Policy", "")
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    directives = [d for d in directives if not d.startswith("frame-ancestors")]
    directives.append("frame-ancestors " + (" ".join(origins) if origins else "'none'"))
    response.headers["Content-Security-Policy"] = "; ".join(directives)
    # X-Frame-Options cannot name several origins; CSP frame-ancestors supersedes it.
    response.headers.pop("X-Frame-Options", None)
    return response


def init_security(app: Flask) -> None:
    is_production = app.config["MAIS_ENV"] == "production"
    # Registered before Talisman so that it runs after Talisman's own after_request hook.
    app.after_request(_apply_frame_ancestors)
    talisman.init_app(
        app,
        force_https=is_production,
        strict_transport_security=True,
        strict_transport_security_max_age=31536000,
        content_security_policy=CONTENT_SECURITY_POLICY,
        content_security_policy_report_uri="/csp-report",
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
        session_cookie_secure=is_production,
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        x_xss_protection=False,
        permissions_policy={"geolocation": "()", "microphone": "()", "camera": "()"},
    )
