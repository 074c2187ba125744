"""Fixtures for the widget: a small catalog and the parameters of a correctly embedded frame."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from mais.booking import today
from mais.extensions import db
from mais.models import AddOn, Package, Segment, Tenant
from tests.factories import make_addon, make_package, make_segment

HOST_ORIGIN = "https://studio.example"


@dataclass
class Shop:
    tenant: Tenant
    segment: Segment
    bouquet: AddOn
    violin: AddOn
    courthouse: Package
    garden: Package

    @property
    def embed(self) -> dict[str, str]:
        return {
            "key": self.tenant.public_key,
            "origin": HOST_ORIGIN,
            "ret": f"{HOST_ORIGIN}/weddings?x=1",
        }


@pytest.fixture
def shop(tenant: Tenant) -> Shop:
    segment = make_segment(tenant, "Elopements")
    bouquet = make_addon(tenant, "Bouquet", 9000)
    violin = make_addon(tenant, "Violinist", 40000)
    courthouse = make_package(
        tenant, "Courthouse", 120000, slug="courthouse", segment=segment, addons=[bouquet, violin]
    )
    garden = make_package(tenant, "Garden party", 250000, slug="garden")
    # Requests find the tenant outside its scope; nothing of the fixture may wait to be flushed.
    db.session.flush()
    return Shop(tenant, segment, bouquet, violin, courthouse, garden)


@pytest.fixture
def open_day():
    """A day safely inside the booking window."""
    return today() + timedelta(days=20)


def htmx(client: FlaskClient, url: str, **kwargs) -> TestResponse:
    headers = {"HX-Request": "true", **kwargs.pop("headers", {})}
    return client.get(url, headers=headers, **kwargs)
