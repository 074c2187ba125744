"""Committed demo studios for the browser tests, and helpers to drive the embedded widget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from flask import Flask

from mais.booking import today
from mais.extensions import db
from mais.tenancy import tenant_scope
from tests.factories import make_addon, make_package, make_segment, make_tenant

FRAME = "iframe[title='Booking widget']"


@dataclass(frozen=True)
class Studio:
    id: int
    slug: str
    public_key: str
    name: str


@pytest.fixture
def make_studio(live_app: Flask, host_origin: str):
    def make(name: str = "Harbour Studio") -> Studio:
        with live_app.app_context():
            tenant = make_tenant(name=name, allowed_origins=[host_origin])
            with tenant_scope(tenant):
                segment = make_segment(tenant, "Elopements")
                bouquet = make_addon(tenant, "Bouquet", 9000)
                make_package(
                    tenant,
                    "Courthouse",
                    120000,
                    slug="courthouse",
                    segment=segment,
                    addons=[bouquet],
                    description_html="<p>Ten minutes, two witnesses, one kiss.</p>",
                )
                make_package(tenant, "Garden party", 250000, slug="garden", segment=segment)
            db.session.commit()
            return Studio(tenant.id, tenant.slug, tenant.public_key, tenant.name)

    return make


@pytest.fixture
def studio(make_studio) -> Studio:
    return make_studio()


def months_ahead(day: date) -> int:
    start = today()
    return (day.year - start.year) * 12 + day.month - start.month
