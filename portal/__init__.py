"""The tenant owners' portal."""

from flask import Blueprint

bp = Blueprint("portal", __name__, url_prefix="/portal")

from . import (  # noqa: E402,F401 - the views register themselves on bp
    account,
    auth,
    calendar,
    catalog,
    overview,
    public,
    settings,
)
