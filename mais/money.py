"""Money: integer cents in the tenant's one currency; the platform's fee rounds in its favour."""

from __future__ import annotations

from decimal import Decimal

from .errors import DomainError

_BASIS_POINTS = Decimal(100)


def commission_cents(total_cents: int, percent: Decimal) -> int:
    """ceil(total × percent / 100), computed on integers so no float ever rounds it."""
    basis_points = int((Decimal(percent) * _BASIS_POINTS).to_integral_exact())
    return -(-total_cents * basis_points // 10_000)


def checked_fee(total_cents: int, percent: Decimal) -> int:
    """The application fee for a charge; Stripe needs 0 < fee < total."""
    fee = commission_cents(total_cents, percent)
    if not 0 < fee < total_cents:
        raise DomainError(
            "This booking cannot be paid online: its total is too small for the platform fee."
        )
    return fee


def format_money(cents: int, currency: str = "usd") -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}.get(currency.lower())
    amount = f"{cents // 100:,}.{cents % 100:02d}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


def parse_money(text: str) -> int:
    """'1,200.50' → 120050. Raises DomainError with a message fit for a form."""
    cleaned = text.strip().replace(",", "").lstrip("$€£")
    try:
        value = Decimal(cleaned)
    except ArithmeticError:
        value = None
    if value is None or not value.is_finite() or value < 0:
        raise DomainError("Enter an amount such as 1200 or 1200.50.", field="price")
    if value > Decimal("1000000"):
        raise DomainError("Amounts above 1,000,000 are not supported.", field="price")
    if value != value.quantize(Decimal("0.01")):
        raise DomainError("Use at most two decimals, such as 1200.50.", field="price")
    return int(value * 100)
