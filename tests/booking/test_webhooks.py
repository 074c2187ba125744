import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mais import booking, webhooks
from mais.extensions import db
from mais.models import (
    Booking,
    BookingStatus,
    DateHold,
    HoldStatus,
    OnboardingState,
    OutboxMessage,
    WebhookEvent,
    WebhookEventArchive,
    WebhookStatus,
)
from mais.models.base import utcnow

from .conftest import completed_session, couple, future, hold_for, post_event, signed_event


def count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def events(app_ctx):
    """Lists the events this test stored (committed tests of this worker leave theirs behind)."""
    from mais.tenancy import platform_scope

    with platform_scope("the test reads the event log"):
        before = db.session.scalar(select(func.max(WebhookEvent.id))) or 0

    def stored():
        with platform_scope("the test reads the event log"):
            return list(
                db.session.scalars(
                    select(WebhookEvent).where(WebhookEvent.id > before).order_by(WebhookEvent.id)
                )
            )

    return stored


def test_completed_event_turns_the_hold_into_a_booking_with_mails(client, tenant, package, events):
    extra = package.addons[0]
    hold = hold_for(tenant, package, future(12), addons=[extra])
    response = post_event(
        client, *signed_event("checkout.session.completed", completed_session(hold))
    )
    assert response.status_code == 200
    made = booking.find_booking_for_hold(tenant, hold.id)
    assert made.status == BookingStatus.CONFIRMED
    assert (made.total_cents, made.commission_cents) == (hold.total_cents, hold.commission_cents)
    assert made.payment_intent_id == f"pi_test_{hold.id}"
    assert [(a.title, a.price_cents) for a in made.addons] == [(extra.title, 9000)]
    assert db.session.get(DateHold, hold.id).status == HoldStatus.CONVERTED
    mails = {
        m.template: m
        for m in db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.tenant_id == tenant.id)
        )
    }
    assert mails["booking_confirmation"].to_email == hold.email
    assert made.reference in mails["booking_confirmation"].body_text
    assert mails["booking_notice"].to_email == tenant.owner.email
    [event] = events()
    assert (event.status, event.attempts, event.tenant_id) == (
        WebhookStatus.PROCESSED,
        1,
        tenant.id,
    )


def test_duplicate_delivery_changes_nothing(client, tenant, package, events):
    hold = hold_for(tenant, package, future(12))
    delivery = signed_event("checkout.session.completed", completed_session(hold))
    assert post_event(client, *delivery).status_code == 200
    assert post_event(client, *delivery).status_code == 200
    assert (
        count(Booking) == 1
        and count(OutboxMessage, OutboxMessage.tenant_id == tenant.id) == 2
        and len(events()) == 1
    )


@pytest.mark.parametrize("problem", ["bad secret", "stale", "no header", "tampered"])
def test_bad_or_stale_signature_is_refused_and_nothing_is_stored(
    client, tenant, package, problem, events
):
    hold = hold_for(tenant, package, future(12))
    kwargs = {
        "bad secret": {"secret": "whsec_wrong"},
        "stale": {"timestamp": int(time.time()) - 301},
    }.get(problem, {})
    payload, header = signed_event("checkout.session.completed", completed_session(hold), **kwargs)
    if problem == "no header":
        header = ""
    if problem == "tampered":
        payload = payload.replace(b'"paid"', b'"unpaid"')
    assert post_event(client, payload, header).status_code == 400
    assert events() == [] and count(Booking) == 0


def test_failing_handler_is_recorded_sanitized_and_retried(
    client, tenant, package, monkeypatch, events
):
    hold = hold_for(tenant, package, future(12))
    delivery = signed_event("checkout.session.completed", completed_session(hold))

    def broken(*args, **kwargs):
        raise RuntimeError(f"could not reach the ledger for {hold.email} ({hold.couple_name})")

    monkeypatch.setattr(booking, "_owner_emails", broken)
    assert post_event(client, *delivery).status_code == 500
    [event] = events()
    assert (event.status, event.attempts) == (WebhookStatus.FAILED, 1)
    assert event.last_error.startswith("RuntimeError: could not reach the ledger")
    assert hold.email not in event.last_error and hold.couple_name not in event.last_error
    assert count(Booking) == 0 and count(OutboxMessage, OutboxMessage.tenant_id == tenant.id) == 0
    assert db.session.get(DateHold, hold.id).status == HoldStatus.ACTIVE

    monkeypatch.undo()
    assert post_event(client, *delivery).status_code == 200
    [event] = events()
    assert (event.status, event.attempts, event.last_error) == (WebhookStatus.PROCESSED, 2, None)
    assert count(Booking) == 1 and count(OutboxMessage, OutboxMessage.tenant_id == tenant.id) == 2


def test_operator_replay_reprocesses_a_failed_event(client, tenant, package, monkeypatch, events):
    hold = hold_for(tenant, package, future(12))
    monkeypatch.setitem(webhooks.HANDLERS, "checkout.session.completed", lambda payload: 1 / 0)
    delivery = signed_event("checkout.session.completed", completed_session(hold))
    assert post_event(client, *delivery).status_code == 500
    monkeypatch.undo()
    [event] = events()
    assert webhooks.replay_webhook_event(event.id) == WebhookStatus.PROCESSED
    assert webhooks.replay_webhook_event(event.id) == WebhookStatus.PROCESSED
    assert count(Booking) == 1


def test_expired_event_releases_the_hold_but_never_a_converted_one(client, tenant, package):
    first, second = hold_for(tenant, package, future(12)), hold_for(tenant, package, future(13))
    post_event(client, *signed_event("checkout.session.expired", completed_session(first)))
    assert db.session.get(DateHold, first.id).status == HoldStatus.RELEASED

    post_event(client, *signed_event("checkout.session.completed", completed_session(second)))
    post_event(client, *signed_event("checkout.session.expired", completed_session(second)))
    assert db.session.get(DateHold, second.id).status == HoldStatus.CONVERTED
    assert count(Booking, Booking.status == BookingStatus.CONFIRMED) == 1


def test_payment_after_expiry_and_release_still_books_a_free_date(client, tenant, package):
    hold = hold_for(tenant, package, future(12))
    post_event(client, *signed_event("checkout.session.expired", completed_session(hold)))
    hold.expires_at = utcnow() - timedelta(minutes=1)
    db.session.flush()
    post_event(client, *signed_event("checkout.session.completed", completed_session(hold)))
    assert booking.find_booking_for_hold(tenant, hold.id) is not None


def test_charge_refunded_marks_the_booking_refunded(client, tenant, package):
    hold = hold_for(tenant, package, future(12))
    post_event(client, *signed_event("checkout.session.completed", completed_session(hold)))
    charge = {"id": "ch_1", "object": "charge", "payment_intent": f"pi_test_{hold.id}"}
    partial = {**charge, "amount": 100, "amount_refunded": 50}
    post_event(client, *signed_event("charge.refunded", partial))
    assert booking.find_booking_for_hold(tenant, hold.id).status == BookingStatus.CONFIRMED
    post_event(
        client, *signed_event("charge.refunded", {**charge, "amount": 100, "amount_refunded": 100})
    )
    assert booking.find_booking_for_hold(tenant, hold.id).status == BookingStatus.REFUNDED
    assert booking.day_statuses(tenant, future(12), future(12))[0].is_open


def test_account_updated_sets_the_onboarding_state(client, tenant):
    tenant.onboarding_state = OnboardingState.PENDING
    account = {"id": tenant.stripe_account_id, "object": "account", "charges_enabled": False}
    post_event(client, *signed_event("account.updated", account))
    assert tenant.onboarding_state == OnboardingState.PENDING
    post_event(client, *signed_event("account.updated", {**account, "charges_enabled": True}))
    db.session.refresh(tenant)
    assert tenant.onboarding_state == OnboardingState.COMPLETE


def test_unknown_event_types_are_recorded_and_ignored(client, tenant, events):
    assert post_event(client, *signed_event("customer.created", {"id": "cus_1"})).status_code == 200
    assert [e.status for e in events()] == [WebhookStatus.PROCESSED]


def test_lost_race_refunds_once_and_apologises(client, tenant, package, refunds):
    late = hold_for(tenant, package, future(12), couple(1))
    late.expires_at = utcnow() - timedelta(minutes=1)
    db.session.flush()
    winner = hold_for(tenant, package, future(12), couple(2))
    post_event(client, *signed_event("checkout.session.completed", completed_session(winner)))

    delivery = signed_event("checkout.session.completed", completed_session(late))
    assert post_event(client, *delivery).status_code == 200
    assert post_event(client, *delivery).status_code == 200
    assert refunds == [
        {"payment_intent_id": f"pi_test_{late.id}", "idempotency_key": f"lost-hold-{late.id}"}
    ]
    late = db.session.get(DateHold, late.id)
    assert late.status == HoldStatus.REFUNDED and late.refund_id.startswith("re_mock_")
    assert booking.find_booking_for_hold(tenant, late.id) is None
    apology = db.session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.template == "lost_race_refund", OutboxMessage.tenant_id == tenant.id
        )
    )
    assert apology.to_email == "couple1@example.com"
    assert count(Booking) == 1


def test_archive_moves_only_old_events(client, tenant, events):
    post_event(client, *signed_event("customer.created", {"id": "cus_1"}, event_id="evt_old"))
    post_event(client, *signed_event("customer.created", {"id": "cus_2"}, event_id="evt_new"))
    old = next(e for e in events() if e.provider_event_id == "evt_old")
    old.created_at = utcnow() - timedelta(days=91)
    db.session.flush()
    assert webhooks.archive_webhook_events() == 1
    assert [e.provider_event_id for e in events()] == ["evt_new"]
    archived = db.session.scalars(select(WebhookEventArchive)).one()
    assert (archived.provider_event_id, archived.status) == ("evt_old", "processed")


def test_release_expired_holds(tenant, package):
    stale, fresh = hold_for(tenant, package, future(12)), hold_for(tenant, package, future(13))
    stale.expires_at = utcnow() - timedelta(seconds=1)
    db.session.flush()
    assert booking.release_expired_holds() >= 1
    assert db.session.get(DateHold, stale.id).status == HoldStatus.RELEASED
    assert db.session.get(DateHold, fresh.id).status == HoldStatus.ACTIVE


def test_the_webhook_is_exempt_from_csrf_and_the_mock_pages_are_not(
    app, client, tenant, monkeypatch
):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    delivery = signed_event("customer.created", {"id": "cus_csrf"})
    assert post_event(client, *delivery).status_code == 200
    assert client.post("/checkout/mock/cs_mock_x/pay", data={"s": "x"}).status_code == 400
