"""The baseline: a bare Flask route, served exactly like MAIS, that every figure is divided by."""

from flask import Flask


def create_bare_app() -> Flask:
    app = Flask(__name__)

    @app.get("/bare")
    def bare() -> str:
        return "<!doctype html><title>bare</title><p>ok</p>"

    return app
