"""Pay and the payment webhook run prebuilt Core statements: what the ORM did for them (the
tenant guard, autoflush, cache invalidation, the unique index behind the lock) still holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, func, null, select

from mais import booking, cache, mail
from mais.extensions import db
from mais.models import Booking, DateHold, HoldStatus, OutboxMessage, WebhookEvent, WebhookStatus
from mais.models.base import utcnow
from mais.payments import sign_payload
from mais.tenancy import platform_scope
from tests.conftest import TEST_WEBHOOK_SECRET

from .conftest import completed_session, couple, future, hold_for, post_event, signed_event


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL sent meanwhile, without the savepoints the test transaction wraps commits in."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")):
            sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def availability_generation(tenant) -> str:  # noqa: ANN001
    return cache.tenant_key(tenant, cache.AVAILABILITY)


def test_a_hold_and_its_checkout_take_four_round_trips_and_read_nothing_back(tenant, package):
    with statements() as sent:
        hold = hold_for(tenant, package, future(12), addons=package.addons)
        booking.start_checkout(tenant, hold, success_url="https://a/", cancel_url="https://b/")
        # What the pay view reads afterwards is still loaded: reading it sends no statement.
        assert hold.id and tenant.slug and tenant.return_url is None
        assert hold.checkout_session_id == f"cs_mock_{hold.id}"
    # The lock, the selection with the date's state, the hold, the checkout's id.
    assert len(sent) == 4, sent
    db.session.expire_all()
    stored = db.session.get(DateHold, hold.id)
    assert (stored.checkout_session_id, stored.addon_lines[0]["price_cents"]) == (
        f"cs_mock_{hold.id}",
        9000,
    )


def test_a_paid_event_takes_ten_statements(client, tenant, package):
    hold = hold_for(tenant, package, future(12))
    delivery = signed_event("checkout.session.completed", completed_session(hold))
    with statements() as sent:
        assert post_event(client, *delivery).status_code == 200
    assert len(sent) == 10, sent
    assert booking.find_booking_for_hold(tenant, hold.id) is not None


def test_availability_is_invalidated_once_holds_and_bookings_commit(tenant, package):
    before = availability_generation(tenant)
    hold = hold_for(tenant, package, future(12))
    after_hold = availability_generation(tenant)
    assert after_hold != before
    booking.confirm_paid_hold(tenant, hold.id, checkout_session_id="cs", payment_intent_id="pi")
    assert availability_generation(tenant) == after_hold  # not before the caller commits
    db.session.commit()
    assert availability_generation(tenant) != after_hold


def test_a_rolled_back_booking_invalidates_nothing(tenant, package):
    hold = hold_for(tenant, package, future(12))
    generation = availability_generation(tenant)
    booking.confirm_paid_hold(tenant, hold.id, checkout_session_id="cs", payment_intent_id="pi")
    db.session.rollback()
    db.session.commit()
    assert availability_generation(tenant) == generation


def test_objects_the_session_holds_see_what_core_statements_wrote(tenant, package):
    hold = hold_for(tenant, package, future(12))
    assert hold.status == HoldStatus.ACTIVE
    made = db.session.get(
        Booking,
        booking.confirm_paid_hold(
            tenant, hold.id, checkout_session_id="cs", payment_intent_id="pi"
        ),
    )
    assert hold.status == HoldStatus.CONVERTED and hold.payment_intent_id == "pi"
    assert made.hold_id == hold.id and made.package_title == package.title


def test_unflushed_changes_are_read_by_the_core_statements(tenant, package):
    hold = hold_for(tenant, package, future(12))
    hold.expires_at = utcnow() - timedelta(minutes=1)
    hold.status = HoldStatus.RELEASED
    # Not flushed: a hold on the same date must still find the date open.
    assert booking.day_statuses(tenant, future(12), future(12))[0].is_open
    assert hold_for(tenant, package, future(12), couple(2)).on_date == future(12)


def test_the_unique_index_still_refunds_when_the_lock_is_bypassed(
    client, tenant, package, refunds, monkeypatch
):
    late = hold_for(tenant, package, future(12), couple(1))
    late.expires_at = utcnow() - timedelta(minutes=1)
    db.session.flush()
    winner = hold_for(tenant, package, future(12), couple(2))
    post_event(client, *signed_event("checkout.session.completed", completed_session(winner)))
    # Blind the check made under the lock, as a path that forgot the lock would be.
    blind = booking._HOLD_UNDER_LOCK.with_only_columns(
        *[
            c
            for c in booking._HOLD_UNDER_LOCK.selected_columns
            if c.name not in ("booked_by", "held_by")
        ],
        null().label("booked_by"),
        null().label("held_by"),
    )
    monkeypatch.setattr(booking, "_HOLD_UNDER_LOCK", blind)
    delivery = signed_event("checkout.session.completed", completed_session(late))
    assert post_event(client, *delivery).status_code == 200
    assert post_event(client, *delivery).status_code == 200
    assert refunds == [
        {"payment_intent_id": f"pi_test_{late.id}", "idempotency_key": f"lost-hold-{late.id}"}
    ]
    assert db.session.get(DateHold, late.id).status == HoldStatus.REFUNDED
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 1
    apologies = db.session.scalars(
        select(OutboxMessage.to_email).where(
            OutboxMessage.template == "lost_race_refund", OutboxMessage.tenant_id == tenant.id
        )
    ).all()
    assert apologies == ["couple1@example.com"]


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({"tenant_id": "2147483000", "hold_id": "abc"}, "metadata.tenant_id names no MAIS tenant"),
        ({"hold_id": "nope"}, "metadata.hold_id names no hold of that tenant"),
    ],
)
def test_a_paid_event_naming_no_tenant_or_hold_is_rejected_and_kept(
    client, tenant, package, metadata, reason
):
    hold = hold_for(tenant, package, future(12))
    session_object = completed_session(hold)
    session_object["metadata"] = {**session_object["metadata"], **metadata}
    payload, header = signed_event("checkout.session.completed", session_object)
    response = post_event(client, payload, header)
    assert response.status_code == 400 and reason in response.get_json()["status"]
    with platform_scope("test: reading the event log"):
        stored = db.session.scalars(
            select(WebhookEvent).where(WebhookEvent.provider_event_id == json.loads(payload)["id"])
        ).one()
    assert (stored.status, stored.attempts) == (WebhookStatus.FAILED, 1)
    assert reason in stored.last_error
    assert db.session.get(DateHold, hold.id).status == HoldStatus.ACTIVE


def test_enqueue_mails_skips_known_dedup_keys(app_ctx):
    def message(to: str) -> mail.Mail:
        context = {
            "tenant_name": "T",
            "couple_name": "A",
            "partner_name": "",
            "on_date": future(1),
            "total_cents": 100,
            "currency": "usd",
        }
        return mail.Mail("lost_race_refund", to, "test-enqueue-mails", context, None)

    mail.enqueue_mails([message("first@example.com")])
    mail.enqueue_mails([message("second@example.com")])
    with platform_scope("test: reading the outbox"):
        sent_to = db.session.scalars(
            select(OutboxMessage.to_email).where(OutboxMessage.dedup_key == "test-enqueue-mails")
        ).all()
    assert sent_to == ["first@example.com"]


@pytest.mark.parametrize("body", ["[1, 2]", '"evt"', "not json"])
def test_signed_payloads_that_are_not_events_are_refused_and_not_stored(client, app_ctx, body):
    with platform_scope("test: reading the event log"):
        before = db.session.scalar(select(func.count()).select_from(WebhookEvent))
    response = post_event(client, body.encode(), sign_payload(body, TEST_WEBHOOK_SECRET))
    assert response.status_code == 400
    with platform_scope("test: reading the event log"):
        assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == before


@pytest.mark.parametrize(
    "data_object",
    [[None], "text", {"customer_details": [1], "metadata": {"tenant_id": "x"}}],
    ids=["list", "string", "odd-details"],
)
def test_an_event_of_the_wrong_shape_is_rejected_and_kept(client, app_ctx, data_object):
    payload, header = signed_event("checkout.session.completed", data_object)
    response = post_event(client, payload, header)
    assert response.status_code == 400, response.get_data(as_text=True)
    with platform_scope("test: reading the event log"):
        stored = db.session.scalars(
            select(WebhookEvent).where(WebhookEvent.provider_event_id == json.loads(payload)["id"])
        ).one()
    assert stored.status == WebhookStatus.FAILED and stored.last_error.startswith("MalformedEvent")
