"""Schemathesis drives /v1 from its own OpenAPI document, with schema-valid and schema-invalid
requests: no server error, and every response (status, content type, headers, body) is one the
document describes, so an undeclared status fails.

Every built-in check runs, named explicitly so that a new schemathesis default cannot silently
drop one, but for "schema-valid data is accepted" on /availability only: OpenAPI 3.0 cannot say
that ``from`` must not be after ``to`` nor that the range stays within 366 days (or 2000 to
2100), so a schema-valid pair of dates can rightly be refused with the documented 400.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, CheckFunction, load_all_checks, not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

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


@pytest.fixture
def key_headers(app_ctx: Flask) -> dict[str, str]:
    """The public key of a tenant with a package, an add-on and a blackout."""
    tenant = make_tenant(allowed_origins=["https://studio.example"])
    with tenant_scope(tenant):
        addon = make_addon(tenant, "Bouquet", 7500)
        make_package(tenant, "Courthouse", 120000, slug="courthouse", addons=[addon])
        make_blackout(tenant, today() + timedelta(days=3), "Closed")
        db.session.flush()
    return {"X-Tenant-Key": tenant.issued_keys.public_key}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("operation_id", "parts"),
    [
        ("getPackage", {"path_parameters": {"slug": "\x00"}}),
        ("getPackage", {"path_parameters": {"slug": "court\x00house"}}),
        (
            "getPackage",
            {"path_parameters": {"slug": "courthouse"}, "headers": {"If-None-Match": "\x01"}},
        ),
        ("listPackages", {"headers": {"Origin": "https://studio.example\x00"}}),
        ("getAvailability", {"query": {"from": "\x00", "to": "2027-01-01"}}),
        ("getAvailability", {"query": {"from": "2027-01-01", "to": "2027-01-0\x1f"}}),
        ("getAvailability", {"query": {"from": "2100-12-31", "to": "2101-01-01"}}),
        ("getAvailability", {"query": {"from": "1999-12-31", "to": "2000-01-01"}}),
        ("getAvailability", {"query": {"from": "0001-01-01", "to": "9999-12-31"}}),
    ],
    ids=[
        "nul-slug",
        "nul-inside-slug",
        "control-in-if-none-match",
        "nul-in-origin",
        "nul-date",
        "control-in-date",
        "after-2100",
        "before-2000",
        "year-1-to-9999",
    ],
)
def test_hostile_requests_get_a_declared_json_400(
    app: Flask, key_headers: dict[str, str], operation_id: str, parts: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
    operation = schema.find_operation_by_id(operation_id)
    case = operation.Case(**parts)
    response = case.call_and_validate(
        headers=key_headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]


def test_the_api_conforms_to_its_openapi_document(app: Flask, key_headers: dict[str, str]) -> None:
    headers = key_headers
    load_all_checks()
    every_check = CHECKS.get_all()
    assert {"status_code_conformance", "response_schema_conformance"} <= {
        check.__name__ for check in every_check
    }

    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 3

    for operation in operations:
        checks = [
            check
            for check in every_check
            if not (check is positive_data_acceptance and operation.path == "/availability")
        ]
        _conforms(operation, headers, checks)


def _conforms(
    operation: APIOperation, headers: dict[str, str], checks: list[CheckFunction]
) -> None:
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @given(case=strategy)
    @settings(
        max_examples=80,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    conforms()
