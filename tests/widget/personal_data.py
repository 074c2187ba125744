"""A distinctive couple, and whether a URL or log line gives any of their details away.

A signed token is readable by anyone (base64 of JSON, maybe zlib-compressed) and URLs nest (the
mock checkout's token holds the cancel URL, which held the selection): every token-like chunk is
unpacked before looking.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import zlib
from collections.abc import Iterator
from urllib.parse import unquote_plus

COUPLE = {
    "couple_name": "Zelda Quux",
    "partner_name": "Yorick Plover",
    "email": "zelda.quux@example.org",
    "phone": "+15550001234",
}
# Each detail's most distinctive parts: "+" may be a space once decoded, "@" may be "%40".
NEEDLES = ("zelda", "quux", "yorick", "plover", "15550001234")


def _readings(text: str, depth: int = 0) -> Iterator[str]:
    """``text`` as a reader of the URL could see it: decoded, and every token in it unpacked."""
    plain = unquote_plus(unquote_plus(text))
    yield text
    yield plain
    if depth > 3:
        return
    for chunk in re.findall(r"[A-Za-z0-9_-]{12,}", plain):
        try:
            raw = base64.urlsafe_b64decode(chunk + "=" * (-len(chunk) % 4))
        except (binascii.Error, ValueError):
            continue
        candidates = [raw]
        with contextlib.suppress(zlib.error):
            candidates.append(zlib.decompress(raw))
        for candidate in candidates:
            yield from _readings(candidate.decode("utf-8", "replace"), depth + 1)


def exposed(text: str) -> list[str]:
    """The couple's details readable in ``text``, however encoded."""
    found: set[str] = set()
    for reading in _readings(text):
        found.update(needle for needle in NEEDLES if needle in reading.lower())
    return sorted(found)
