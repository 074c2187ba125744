"""Operations endpoints: health, metrics, security.txt, CSP reports."""

from flask import Blueprint

from mais.extensions import csrf

bp = Blueprint("ops", __name__)
# Browsers post CSP reports without cookies or tokens; nothing else here accepts a POST.
csrf.exempt(bp)

from . import views  # noqa: E402, F401  (registers the routes on bp)
