"""The couple-facing booking widget (iframe) and the hosted booking page."""

from flask import Blueprint

bp = Blueprint("widget", __name__)
