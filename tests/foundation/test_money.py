from decimal import Decimal

import pytest

from mais.errors import DomainError
from mais.money import checked_fee, commission_cents, format_money, parse_money


@pytest.mark.parametrize(
    ("total", "percent", "fee"),
    [
        (120000, Decimal("12.5"), 15000),
        (100, Decimal("12.5"), 13),  # 12.5 rounds up to 13
        (1, Decimal("12.5"), 1),
        (999, Decimal("10"), 100),  # 99.9 → 100
        (1000, Decimal("10"), 100),  # exact: no rounding
        (333, Decimal("33.33"), 111),  # 110.9889 → 111
        (0, Decimal("12.5"), 0),
        (5000, Decimal("0"), 0),
    ],
)
def test_commission_is_rounded_up_in_integer_cents(total, percent, fee):
    assert commission_cents(total, percent) == fee


def test_fee_bounds_are_enforced():
    assert checked_fee(120000, Decimal("12.5")) == 15000
    with pytest.raises(DomainError):
        checked_fee(1, Decimal("12.5"))  # fee 1 == total
    with pytest.raises(DomainError):
        checked_fee(5000, Decimal("0"))  # fee 0


def test_money_parsing_and_formatting():
    assert parse_money("1,200.50") == 120050
    assert parse_money("$75") == 7500
    for bad in ["", "abc", "-1", "1.234", "NaN", "1e400"]:
        with pytest.raises(DomainError):
            parse_money(bad)
    assert format_money(120050, "usd") == "$1,200.50"
    assert format_money(5, "chf") == "0.05 CHF"
