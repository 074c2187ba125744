"""What counts as personal data in free text, in one place: the logs and the errors kept on
failed webhook events are both cleaned with ``scrub`` before they are written."""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Broad on purpose: anything shaped like an address, with or without a domain suffix.
    (re.compile(r"[^\s@'\"<>(),;:=]+@[^\s@'\"<>(),;]+"), "[email]"),
    (re.compile(r"\b(?:pk|sk|rk)_(?:live|test)_[A-Za-z0-9_-]+"), "[key]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9_-]+"), "[secret]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [token]"),
    (re.compile(r"(?i)\b(token|password|secret)=[^\s&]+"), r"\1=[redacted]"),
    # Phone-like numbers, but not inside a longer token: hold ids and hashes are hex and may
    # hold long digit runs.
    (re.compile(r"(?<![\w.-])\+?\d[\d ().-]{6,}\d(?![\w-])"), "[number]"),
)


def scrub(text: str, *known: str) -> str:
    """``text`` with emails, keys, secrets, tokens and phone-like numbers replaced by a tag,
    and each of the ``known`` values (a couple's name, say) by ``[redacted]``."""
    for value in known:
        if value.strip():
            text = text.replace(value, "[redacted]")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
