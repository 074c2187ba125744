from datetime import timedelta

import pytest

from mais import booking
from mais.errors import DateUnavailable, DomainError, NotFound
from mais.extensions import db
from mais.models import Booking, BookingStatus, HoldStatus
from mais.models.base import utcnow
from tests.factories import make_addon, make_blackout, make_package

from .conftest import couple, future, hold_for


def status_of(tenant, day):
    return booking.day_statuses(tenant, day, day)[0]


def test_open_day_has_no_reason(tenant, package):
    assert status_of(tenant, future(5)) == booking.DayStatus(future(5), True, None)


def test_past_days_and_days_beyond_the_horizon_are_closed(tenant, package):
    tenant.booking_horizon_days = 30
    assert status_of(tenant, future(-1)).reason == "past"
    assert status_of(tenant, future(0)).is_open
    assert status_of(tenant, future(30)).is_open
    assert status_of(tenant, future(31)).reason == "beyond horizon"


def test_blackout_is_unavailable_with_its_reason_as_note(tenant, package):
    make_blackout(tenant, future(3), "Team retreat")
    status = status_of(tenant, future(3))
    assert (status.is_open, status.reason, status.note) == (False, "unavailable", "Team retreat")


def test_active_hold_closes_the_date_and_an_expired_one_does_not(tenant, package):
    active = hold_for(tenant, package, future(4))
    expired = hold_for(tenant, package, future(6))
    expired.expires_at = utcnow() - timedelta(seconds=1)
    db.session.flush()
    assert status_of(tenant, future(4)).reason == "unavailable"
    assert status_of(tenant, future(6)).is_open
    active.status = HoldStatus.RELEASED
    db.session.flush()
    assert status_of(tenant, future(4)).is_open


def test_confirmed_booking_closes_the_date_and_a_cancelled_one_frees_it(tenant, package):
    hold = hold_for(tenant, package, future(8))
    made = db.session.get(
        Booking,
        booking.confirm_paid_hold(
            tenant, hold.id, checkout_session_id="cs_1", payment_intent_id="pi_1"
        ),
    )
    assert status_of(tenant, future(8)).reason == "booked"
    made.status = BookingStatus.CANCELLED
    db.session.flush()
    assert status_of(tenant, future(8)).is_open


def test_range_covers_every_day_inclusive(tenant, package):
    make_blackout(tenant, future(2))
    statuses = booking.day_statuses(tenant, future(1), future(10))
    assert [s.on_date for s in statuses] == [future(d) for d in range(1, 11)]
    assert [s.is_open for s in statuses].count(False) == 1


def test_other_tenants_closures_do_not_leak(tenant, package, other_tenant):
    from mais.tenancy import platform_scope, tenant_scope

    with platform_scope("the test sets up another tenant"), tenant_scope(other_tenant):
        make_blackout(other_tenant, future(5))
        db.session.flush()
    assert status_of(tenant, future(5)).is_open


def test_next_open_dates_skip_closed_days(tenant, package):
    make_blackout(tenant, future(2))
    hold_for(tenant, package, future(3))
    assert booking.next_open_dates(tenant, future(1)) == [future(4), future(5), future(6)]


def test_next_open_dates_stop_at_the_horizon(tenant, package):
    tenant.booking_horizon_days = 3
    assert booking.next_open_dates(tenant, future(1), count=5) == [future(2), future(3)]


def test_hold_snapshots_price_and_commission(tenant):
    extra = make_addon(tenant, price_cents=9000)
    package = make_package(tenant, price_cents=120000, addons=[extra])
    hold = hold_for(tenant, package, future(10), addons=[extra])
    assert (hold.package_price_cents, hold.total_cents) == (120000, 129000)
    assert hold.commission_cents == 16125  # ceil(129000 × 12.5 %)
    assert hold.addon_lines == [{"addon_id": extra.id, "title": extra.title, "price_cents": 9000}]
    assert hold.status == HoldStatus.ACTIVE
    assert timedelta(minutes=29) < hold.expires_at - utcnow() <= timedelta(minutes=30)


def test_hold_on_a_taken_date_offers_alternatives(tenant, package):
    hold_for(tenant, package, future(5))
    with pytest.raises(DateUnavailable) as caught:
        hold_for(tenant, package, future(5), couple(2))
    assert caught.value.message == "This date was just taken."
    assert caught.value.alternatives == [future(6), future(7), future(8)]


def test_hold_on_a_past_date_is_refused(tenant, package):
    with pytest.raises(DateUnavailable, match="passed"):
        hold_for(tenant, package, future(-2))


def test_hold_needs_an_onboarded_active_tenant(tenant, package):
    tenant.stripe_account_id = None
    with pytest.raises(DomainError, match="cannot take online payments"):
        hold_for(tenant, package, future(5))
    tenant.stripe_account_id = "acct_x"
    tenant.is_active = False
    with pytest.raises(DomainError, match="not taking bookings"):
        hold_for(tenant, package, future(5))


def test_quote_totals_on_the_server_and_refuses_foreign_addons(tenant, other_tenant):
    from mais.tenancy import platform_scope, tenant_scope

    mine, unlinked = make_addon(tenant, price_cents=9000), make_addon(tenant, price_cents=100)
    package = make_package(tenant, price_cents=120000, addons=[mine])
    quoted = booking.quote(tenant, package.slug, [mine.id, str(mine.id)])
    assert quoted.total_cents == 129000 and len(quoted.addon_lines) == 1
    with platform_scope("the test sets up another tenant"), tenant_scope(other_tenant):
        foreign = make_addon(other_tenant)
        db.session.flush()
    for bad in (unlinked.id, foreign.id, "x"):
        with pytest.raises(DomainError) as caught:
            booking.quote(tenant, package.slug, [bad])
        assert caught.value.field == "addons"
    mine.is_active = False
    with pytest.raises(DomainError):
        booking.quote(tenant, package.slug, [mine.id])
    with pytest.raises(NotFound):
        booking.quote(tenant, "no-such-package", [])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "B", "a@example.com", ""), "couple_name"),
        (("A", "B", "not-an-email", ""), "email"),
        (("A", "B", "a@example.com", "12"), "phone"),
        (("A", "B" * 201, "a@example.com", ""), "partner_name"),
    ],
)
def test_validate_couple_names_the_bad_field(args, field):
    with pytest.raises(DomainError) as caught:
        booking.validate_couple(*args)
    assert caught.value.field == field


def test_validate_couple_normalizes():
    details = booking.validate_couple(" Ada ", "", " Ada@Example.COM ", "+1 (555) 123-4567")
    assert details == booking.CoupleDetails("Ada", "", "ada@example.com", "+1 (555) 123-4567")


def test_find_booking_for_hold(tenant, package):
    hold = hold_for(tenant, package, future(9))
    assert booking.find_booking_for_hold(tenant, hold.id) is None
    booking.confirm_paid_hold(tenant, hold.id, checkout_session_id="cs", payment_intent_id="pi")
    found = booking.find_booking_for_hold(tenant, hold.id)
    assert isinstance(found, Booking) and found.on_date == future(9)
