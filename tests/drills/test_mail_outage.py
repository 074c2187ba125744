"""The SMTP server refuses every connection (421) for a while, then comes back. Two relays run
as production runs them (``flask mais send-mail --loop``), with the backoff shrunk from 30 s /
1 h to 0.5 s / 2 s: every message is retried through the outage and then delivered exactly
once, and none is given up."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from mais.extensions import db
from mais.models import OutboxMessage, OutboxStatus
from mais.tenancy import platform_scope
from tests.drills.harness import VENV_BIN, app_environment, queue_drill_mail
from tests.drills.smtp_sink import SmtpSink
from tests.support import ROOT

MESSAGES = 30
RELAYS = 2
SHRUNK_BACKOFF = {
    "MAIS_MAIL_RETRY_BASE": "0.5",
    "MAIS_MAIL_RETRY_CAP": "2",
    # Far beyond the drill: a message given up during it would be a failure.
    "MAIS_MAIL_GIVE_UP_AFTER": "600",
}


def _relay(
    drill_database: str, drill_mail_dir: Path, smtp_url: str, number: int
) -> subprocess.Popen[bytes]:
    env = app_environment(
        drill_database,
        "http://127.0.0.1",
        drill_mail_dir,
        MAIS_SMTP_URL=smtp_url,
        **SHRUNK_BACKOFF,
    )
    log = open(drill_mail_dir.parent / f"relay-outage-{number}.log", "wb")  # noqa: SIM115
    try:
        return subprocess.Popen(
            [str(VENV_BIN / "flask"), "mais", "send-mail", "--loop", "--interval", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()  # the child has its own descriptor


def _drill_messages(app: Flask, prefix: str) -> list[OutboxMessage]:
    with app.app_context(), platform_scope("drill: watching the outbox"):
        messages = list(
            db.session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedup_key.like(f"{prefix}:%"))
            )
        )
        db.session.expunge_all()
    return messages


def _wait_for(condition, timeout: float) -> bool:  # noqa: ANN001 - a predicate
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_mail_queued_during_an_smtp_outage_is_delivered_once_it_ends(
    drill_app: Flask, drill_database: str, drill_mail_dir: Path
) -> None:
    prefix = f"drill-outage-{time.time_ns()}"
    queue_drill_mail(drill_app, prefix, MESSAGES, to="couple")

    sink = SmtpSink()
    sink.refusing = True
    relays = [_relay(drill_database, drill_mail_dir, sink.url, n) for n in range(RELAYS)]
    try:
        # The outage lasts until every message has been refused at least twice (the deadline
        # includes the relays' start, slow on a loaded machine).
        refused_twice = _wait_for(
            lambda: all(m.attempts >= 2 for m in _drill_messages(drill_app, prefix)), 120
        )
        during_outage = _drill_messages(drill_app, prefix)
        sink.refusing = False
        all_sent = _wait_for(
            lambda: all(m.status == OutboxStatus.SENT for m in _drill_messages(drill_app, prefix)),
            45,
        )
    finally:
        for relay in relays:
            relay.terminate()
        for relay in relays:
            relay.wait(timeout=10)
        sink.stop()

    assert refused_twice, "the relays did not retry every message during the outage"
    assert all(m.status == OutboxStatus.PENDING for m in during_outage)  # none given up
    assert all(m.last_error == "SMTPConnectError: 421" for m in during_outage)
    assert all_sent
    after = _drill_messages(drill_app, prefix)
    assert not [m for m in after if m.status == OutboxStatus.DEAD]
    assert len(sink.accepted) == MESSAGES  # none lost
    assert max(sink.accepted.values()) == 1  # none twice
