"""The MAIS application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from mais import tenancy, unit_of_work
from mais.asset_build import BUILD_DIR
from mais.assets import load_assets, serve_static_files
from mais.compression import init_compression
from mais.config import build_config
from mais.errors import DomainError
from mais.extensions import cache, csrf, db, limiter, migrate
from mais.input_guard import install as install_input_guard
from mais.logs import init_logging
from mais.metrics import init_metrics
from mais.security import init_security
from widget.landing import install as install_landing_cache


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    # Static files are served from the build (mais/asset_build.py), never from the sources.
    app = Flask(__name__, instance_relative_config=True, static_folder=BUILD_DIR / "static")
    app.config.from_mapping(build_config(app.instance_path, overrides=test_config))
    # First: a missing build stops start-up with a message saying how to make it.
    load_assets(app)

    db.init_app(app)
    migrate.init_app(app, db, directory="migrations", render_as_batch=True)
    csrf.init_app(app)
    cache.init_app(app)
    limiter.init_app(app)
    # Before the security layer, which wraps the WSGI app in the proxy fix in production: the
    # landing cache must see the scheme and host the application sees.
    install_landing_cache(app)
    init_security(app)
    init_metrics(app)
    init_logging(app)
    init_compression(app)
    # In front of the landing cache and the proxy fix: a static file needs neither.
    serve_static_files(app)
    # Last of the WSGI layers, so it stands in front of all of them (landing cache, proxy fix).
    install_input_guard(app)
    with app.app_context():
        _configure_engine(db.engine)

    _install_tenant_scope_reset(app)
    _register_blueprints(app)
    # After the blueprints: after-request hooks run last-registered first, so the request's
    # commit comes before theirs (inline mail delivery sends only what was committed).
    unit_of_work.install(app)
    _register_error_handlers(app)
    _register_template_helpers(app)

    from mais.cli import mais_cli

    app.cli.add_command(mais_cli)
    return app


def _configure_engine(engine: Engine) -> None:
    """SQLite: real transactions, so that the date lock can be ``BEGIN IMMEDIATE``."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_begin_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _install_tenant_scope_reset(app: Flask) -> None:
    """A worker thread serves many requests: no tenant scope may outlive its request."""

    # A URL value preprocessor, not before_request: the application's own preprocessors run
    # before any blueprint's, so a blueprint may enter its tenant's scope in its own
    # preprocessor or before_request hook and this never wipes it.
    @app.url_value_preprocessor
    def _clear_scope(endpoint: str | None, values: dict[str, Any] | None) -> None:
        request.environ["mais.scope_token"] = tenancy.enter_scope(None)

    @app.teardown_request
    def _restore_scope(exc: BaseException | None) -> None:
        token = request.environ.pop("mais.scope_token", None)
        if token is not None:
            try:
                tenancy.reset_scope(token)
            except ValueError:
                # Created in another context (streamed response); clearing is what matters.
                tenancy.enter_scope(None)


def _register_blueprints(app: Flask) -> None:
    from admin import bp as admin_bp
    from api import bp as api_bp
    from checkout import bp as checkout_bp
    from ops import bp as ops_bp
    from portal import bp as portal_bp
    from widget import bp as widget_bp

    for blueprint in (ops_bp, checkout_bp, widget_bp, portal_bp, admin_bp, api_bp):
        app.register_blueprint(blueprint)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError) -> tuple[Response, int]:
        return jsonify(error=error.message, field=error.field), error.status_code

    @app.errorhandler(404)
    @app.errorhandler(405)
    def _http_error(error: HTTPException) -> Response | HTTPException:
        # Routing errors belong to no blueprint: under /v1 they still answer in the API's
        # JSON error shape (the OpenAPI document declares it), elsewhere as usual.
        if not request.path.startswith("/v1/"):
            return error
        response = jsonify(error=error.description)
        response.status_code = error.code or 500
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(error: DBAPIError) -> Response:
        # The database restarted or is unreachable: answer at once and let the caller retry
        # (Stripe redelivers webhooks) instead of hanging or pretending a server bug.
        db.session.remove()
        message = "MAIS is briefly unavailable. Please try again in a moment."
        if request.accept_mimetypes.best == "text/html":
            response = Response(
                f"<!doctype html><title>Unavailable</title><p>{message}</p>",
                503,
                mimetype="text/html",
            )
        else:
            response = jsonify(error=message)
            response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response


def _register_template_helpers(app: Flask) -> None:
    from mais.money import format_money

    app.jinja_env.filters["money"] = format_money
