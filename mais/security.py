"""Security headers: one strict policy for the whole application, framing only for the widget."""

from __future__ import annotations

from flask import Flask, Response, request
from flask_talisman import Talisman
from werkzeug.middleware.proxy_fix import ProxyFix

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
    # On the request, not on ``g``: an application context (and its ``g``) can outlive one
    # request, as it does in tests, and a framing grant must never carry over to the next.
    request.environ["mais.frame_ancestors"] = [origin for origin in origins if origin]


def allow_form_action_to(origins: list[str]) -> None:
    """Let this page's forms also lead to these origins. Browsers apply ``form-action`` to the
    redirect after a POST too: the mock checkout's Pay must be able to return the couple to the
    tenant's site, as Stripe's own page does."""
    request.environ["mais.form_action"] = [origin for origin in origins if origin]


def _apply_form_action(response: Response) -> Response:
    origins = request.environ.get("mais.form_action")
    policy = response.headers.get("Content-Security-Policy")
    if not origins or not policy:
        return response
    directives = [d.strip() for d in policy.split(";") if d.strip()]
    response.headers["Content-Security-Policy"] = "; ".join(
        f"{d} {' '.join(origins)}" if d.startswith("form-action") else d for d in directives
    )
    return response


def _apply_frame_ancestors(response: Response) -> Response:
    _apply_form_action(response)
    origins = request.environ.get("mais.frame_ancestors")
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
    if is_production:
        # Behind the load balancer TLS ends there: trust its X-Forwarded-Proto/For/Host (one
        # hop) so that request.is_secure holds and Talisman sends HSTS instead of redirecting.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    # Registered before Talisman so that it runs after Talisman's own after_request hook.
    app.after_request(_apply_frame_ancestors)
    # One Talisman per application: it keeps its options on the instance, so a shared one would
    # let a second application (a test's production app) change the first one's policy.
    Talisman(
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
