"""The public JSON API."""

from flask import Blueprint

from mais.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/v1")
# Integrators call it with a public key header from any allowed origin, never with a session.
csrf.exempt(bp)

from . import views  # noqa: E402, F401  (registers the routes on bp)
