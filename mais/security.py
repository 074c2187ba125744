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


def allow_form_action_to(origins: list[str | None]) -> None:
    """Let this page's forms also lead to these origins. Browsers apply ``form-action`` to the
    redirect after a POST too: the mock checkout's Pay must be able to return the couple to the
    tenant's site, as Stripe's own page does."""
    request.environ["mais.form_action"] = [origin for origin in origins if origin]


def _set_content_security_policy(response: Response) -> Response:
    """The one place the policy is written: the strict default, with this request's grants
    (framing by the widget's tenant, forms leading back to a tenant's site) in their
    directives. Talisman sends the other headers; it does not write this one."""
    policy = dict(CONTENT_SECURITY_POLICY)
    frame_ancestors = request.environ.get("mais.frame_ancestors")
    if frame_ancestors is not None:
        policy["frame-ancestors"] = " ".join(frame_ancestors) or "'none'"
        # X-Frame-Options cannot name several origins; CSP frame-ancestors supersedes it.
        response.headers.pop("X-Frame-Options", None)
    form_action = request.environ.get("mais.form_action")
    if form_action:
        policy["form-action"] = " ".join([policy["form-action"], *form_action])
    response.headers["Content-Security-Policy"] = "; ".join(
        [f"{name} {value}" for name, value in policy.items()] + ["report-uri /csp-report"]
    )
    return response


def init_security(app: Flask) -> None:
    is_production = app.config["MAIS_ENV"] == "production"
    if is_production:
        # Behind the load balancer TLS ends there: trust its X-Forwarded-Proto/For/Host (one
        # hop) so that request.is_secure holds and Talisman sends HSTS instead of redirecting.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    # Registered before Talisman so that it runs after Talisman's own after_request hook (and
    # can drop the X-Frame-Options Talisman sets where the widget may be framed).
    app.after_request(_set_content_security_policy)
    # One Talisman per application: it keeps its options on the instance, so a shared one would
    # let a second application (a test's production app) change the first one's policy.
    Talisman(
        app,
        force_https=is_production,
        strict_transport_security=True,
        strict_transport_security_max_age=31536000,
        content_security_policy=None,
        frame_options="DENY",
        referrer_policy="strict-origin-when-cross-origin",
        session_cookie_secure=is_production,
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        x_xss_protection=False,
        permissions_policy={"geolocation": "()", "microphone": "()", "camera": "()"},
    )
