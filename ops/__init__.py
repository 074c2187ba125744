"""Operations endpoints: health, metrics, security.txt, CSP reports."""

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from mais.extensions import db

bp = Blueprint("ops", __name__)


@bp.get("/health")
def health():  # type: ignore[no-untyped-def]
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
