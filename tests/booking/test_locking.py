from datetime import date

from sqlalchemy import text

from mais.extensions import db
from mais.locking import date_lock_key, lock_date


def test_lock_key_is_a_stable_signed_64_bit_fnv1a():
    # FNV-1a 64 of "1:2026-06-20", computed independently and wrapped to a signed bigint.
    value = 0xCBF29CE484222325
    for byte in b"1:2026-06-20":
        value = ((value ^ byte) * 0x100000001B3) % 2**64
    expected = value - 2**64 if value >= 2**63 else value
    assert date_lock_key(1, date(2026, 6, 20)) == expected
    keys = {date_lock_key(t, date(2026, 6, d)) for t in (1, 2) for d in range(1, 31)}
    assert len(keys) == 60
    assert all(-(2**63) <= k < 2**63 for k in keys)


def test_lock_date_takes_a_transaction_level_advisory_lock(app_ctx):
    lock_date(db.session, 7, date(2026, 6, 20))
    held = db.session.scalar(
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND pid = pg_backend_pid() AND granted"
        )
    )
    assert held == 1
