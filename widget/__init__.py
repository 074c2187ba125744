"""The couple-facing booking widget (iframe) and the hosted booking page."""

from flask import Blueprint

from mais.extensions import csrf

bp = Blueprint("widget", __name__)
# CSRF protection would store its token in a session cookie; the widget sets no cookies. Its only
# state-changing request (Pay) carries a signed selection and starts a payment the couple must
# still complete, so a forged request gains an attacker nothing.
csrf.exempt(bp)

from . import views  # noqa: E402, F401  - registers the routes on bp
