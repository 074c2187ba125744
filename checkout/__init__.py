"""Payment-facing endpoints: the provider webhook and the mock provider's hosted checkout."""

from flask import Blueprint

bp = Blueprint("checkout", __name__)

from . import views  # noqa: E402, F401 - registers the routes on bp
