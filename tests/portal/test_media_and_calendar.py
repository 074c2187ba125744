"""Photo uploads, blackout dates, bookings and cancellation, and the private iCal feed."""

from __future__ import annotations

import io
import os
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from mais.extensions import db
from mais.models import AuditLog, Blackout, BookingStatus, OutboxMessage, PackagePhoto
from mais.payments.mock import MockProvider
from tests.factories import make_package

from .conftest import make_booking


def _upload(owner, package, data: bytes, name: str = "photo.png"):
    return owner.post(
        f"/portal/packages/{package.id}/photos",
        data={"photo": (io.BytesIO(data), name), "alt_text": "The ridge at dawn"},
        content_type="multipart/form-data",
    )


def test_photo_upload_stores_a_thumbnail_served_with_its_type(owner, tenant):
    package = make_package(tenant)
    jpeg = io.BytesIO()
    Image.new("RGB", (1200, 800), (10, 120, 200)).save(jpeg, format="JPEG")
    # the name lies; the content decides
    assert _upload(owner, package, jpeg.getvalue(), "photo.png").status_code == 302
    photo = db.session.scalars(
        select(PackagePhoto).where(PackagePhoto.package_id == package.id)
    ).one()
    assert photo.content_type == "image/jpeg" and photo.alt_text == "The ridge at dawn"
    response = owner.get(f"/portal/media/{photo.thumbnail_key}")
    assert response.status_code == 200 and response.content_type == "image/jpeg"
    assert max(Image.open(io.BytesIO(response.data)).size) == 480
    assert owner.get(f"/portal/media/{photo.storage_key}").status_code == 200

    thumbnail_key, package_id = photo.thumbnail_key, package.id
    removed = owner.post(f"/portal/photos/{photo.id}/delete")
    assert removed.headers["Location"] == f"/portal/packages/{package_id}"
    assert owner.get(f"/portal/media/{thumbnail_key}").status_code == 404


def test_upload_rejects_a_non_image(owner, tenant):
    package = make_package(tenant)
    db.session.commit()
    response = _upload(owner, package, b"<?php echo 'hi'; ?>" * 50, "photo.jpg")
    assert response.status_code == 400
    assert "not a JPEG, PNG or WebP image" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(PackagePhoto)) == 0


def test_upload_rejects_an_oversized_file(owner, tenant, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAIS_MAX_UPLOAD_BYTES", 2000)
    package = make_package(tenant)
    db.session.commit()
    noise = io.BytesIO()
    Image.frombytes("RGB", (100, 100), os.urandom(30_000)).save(noise, format="PNG")
    assert len(noise.getvalue()) > 2000  # random pixels do not compress
    response = _upload(owner, package, noise.getvalue())
    assert response.status_code == 400
    assert "images may be at most" in response.get_data(as_text=True)


def test_media_keys_cannot_escape_the_upload_folder(client, app_ctx):
    assert client.get("/portal/media/../../secrets.json").status_code == 404
    assert client.get("/portal/media/t1/" + "0" * 32 + ".png").status_code == 404


def test_blackouts_for_a_date_and_a_range(owner, tenant):
    first = date.today() + timedelta(days=10)
    owner.post("/portal/blackouts", data={"on_date": first.isoformat(), "reason": "Retreat"})
    owner.post(
        "/portal/blackouts",
        data={
            "on_date": (first + timedelta(days=1)).isoformat(),
            "last_date": (first + timedelta(days=3)).isoformat(),
            "reason": "Holiday",
        },
    )
    days = list(db.session.scalars(select(Blackout.on_date).order_by(Blackout.on_date)))
    assert days == [first + timedelta(days=n) for n in range(4)]
    page = owner.get("/portal/calendar").get_data(as_text=True)
    assert "Retreat" in page and "Holiday" in page
    blackout = db.session.scalars(select(Blackout).where(Blackout.on_date == first)).one()
    owner.post(f"/portal/blackouts/{blackout.id}/delete")
    assert db.session.scalar(select(func.count()).select_from(Blackout)) == 3
    actions = set(db.session.scalars(select(AuditLog.action)))
    assert {"blackout.create", "blackout.create_range", "blackout.delete"} <= actions


def test_blackout_errors(owner, tenant):
    db.session.commit()
    past = owner.post("/portal/blackouts", data={"on_date": "2001-01-01"})
    assert past.status_code == 400 and "today or a later date" in past.get_data(as_text=True)
    backwards = owner.post(
        "/portal/blackouts",
        data={
            "on_date": (date.today() + timedelta(days=5)).isoformat(),
            "last_date": (date.today() + timedelta(days=2)).isoformat(),
        },
    )
    assert 'id="f-last_date-error"' in backwards.get_data(as_text=True)


def test_bookings_list_filters_and_paginates(owner, tenant):
    package = make_package(tenant)
    for n in range(23):
        make_booking(
            tenant, package, date.today() + timedelta(days=n + 1), couple_name=f"Couple {n}"
        )
    make_booking(tenant, package, date.today() - timedelta(days=3), couple_name="Past couple")
    make_booking(
        tenant,
        package,
        date.today() + timedelta(days=90),
        status="cancelled",
        couple_name="Gone couple",
    )
    upcoming = owner.get("/portal/bookings").get_data(as_text=True)
    assert "Couple 0" in upcoming and "Couple 22" not in upcoming and "Page 1 of 2" in upcoming
    assert "Couple 22" in owner.get("/portal/bookings?page=2").get_data(as_text=True)
    assert "Past couple" in owner.get("/portal/bookings?filter=past").get_data(as_text=True)
    cancelled = owner.get("/portal/bookings?filter=cancelled").get_data(as_text=True)
    assert "Gone couple" in cancelled and "Couple 0" not in cancelled


def test_cancel_and_refund_twice_refunds_once(owner, tenant, monkeypatch):
    refunds = []
    original = MockProvider.refund

    def counting_refund(self, **kwargs):
        refunds.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(MockProvider, "refund", counting_refund)
    package = make_package(tenant)
    booking = make_booking(tenant, package, date.today() + timedelta(days=20))
    db.session.commit()
    page = owner.get(f"/portal/bookings/{booking.id}").get_data(as_text=True)
    assert "data-disable-on-submit" in page and "Cancel and refund" in page
    for _ in range(2):
        response = owner.post(f"/portal/bookings/{booking.id}/cancel", data={"refund": "1"})
        assert response.status_code == 302
    db.session.expire_all()
    assert booking.status == BookingStatus.REFUNDED
    assert len(refunds) == 1
    mails = select(func.count()).where(OutboxMessage.dedup_key == f"booking-cancelled:{booking.id}")
    assert db.session.scalar(mails) == 1
    assert "Cancel and refund" not in owner.get(f"/portal/bookings/{booking.id}").get_data(
        as_text=True
    )


def test_cancel_without_refund(owner, tenant, monkeypatch):
    monkeypatch.setattr(MockProvider, "refund", lambda self, **kw: pytest.fail("no refund asked"))
    booking = make_booking(tenant, make_package(tenant), date.today() + timedelta(days=21))
    db.session.commit()
    owner.post(f"/portal/bookings/{booking.id}/cancel", data={"refund": "0"})
    db.session.expire_all()
    assert booking.status == BookingStatus.CANCELLED and booking.refund_id is None


def test_private_ical_feed(client, owner, tenant):
    booking = make_booking(
        tenant, make_package(tenant, "Lighthouse"), date(2030, 6, 1), couple_name="Grace Hopper"
    )
    response = client.get(f"/portal/ical/{tenant.ical_export_token}.ics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/calendar")
    body = response.get_data(as_text=True)
    assert "DTSTART;VALUE=DATE:20300601" in body and "Grace Hopper" in body
    assert booking.reference in body
    assert client.get("/portal/ical/" + "x" * 43 + ".ics").status_code == 404
    # rotating the address kills the old one
    old = tenant.ical_export_token
    owner.post("/portal/settings/ical-export/rotate")
    assert client.get(f"/portal/ical/{old}.ics").status_code == 404


def test_a_request_over_the_size_cap_gets_a_clear_page(owner, tenant, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    package = make_package(tenant)
    response = _upload(owner, package, b"x" * 5000)
    assert response.status_code == 413
    assert "File too large" in response.get_data(as_text=True)
