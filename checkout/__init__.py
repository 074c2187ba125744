"""Payment-facing endpoints: the provider webhook and the mock provider's hosted checkout."""

from flask import Blueprint

bp = Blueprint("checkout", __name__)
