"""Schemathesis drives /v1 from its own OpenAPI document: no server error, and every response
(status, content type, headers, body) is one the document describes.

One default check is left out: "schema-valid data is accepted". OpenAPI 3.0 cannot say that
``from`` must not be after ``to`` nor that the range stays within 366 days, so a schema-valid pair
of dates can rightly be refused with the documented 400.
"""

from __future__ import annotations

from datetime import timedelta

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mais.booking import today
from mais.extensions import db
from mais.tenancy import tenant_scope

from ..factories import make_addon, make_blackout, make_package, make_tenant


def test_openapi_document_names_every_api_route(app: Flask) -> None:
    document = app.test_client().get("/v1/openapi.json").json
    documented = {"/v1" + path for path in document["paths"]}
    routes = {
        rule.rule.replace("<slug>", "{slug}")
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        and rule.endpoint not in ("api.openapi", "api.not_found")
    }
    assert routes == documented


def test_the_api_conforms_to_its_openapi_document(app: Flask, app_ctx: Flask) -> None:
    tenant = make_tenant(allowed_origins=["https://studio.example"])
    with tenant_scope(tenant):
        addon = make_addon(tenant, "Bouquet", 7500)
        make_package(tenant, "Courthouse", 120000, slug="courthouse", addons=[addon])
        make_blackout(tenant, today() + timedelta(days=3), "Closed")
        db.session.flush()
    headers = {"X-Tenant-Key": tenant.issued_keys.public_key}  # type: ignore[attr-defined]

    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 3

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        conforms()
