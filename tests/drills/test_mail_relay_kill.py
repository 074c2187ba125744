"""The mail relay is killed with SIGKILL in the middle of a batch and started again: no message
is lost, none is sent twice."""

from __future__ import annotations

import signal
import subprocess
import time

from sqlalchemy import func, select

from mais.extensions import db
from mais.models import OutboxMessage, OutboxStatus
from mais.tenancy import platform_scope
from tests.drills.harness import VENV_BIN, app_environment, queue_drill_mail
from tests.drills.smtp_sink import SmtpSink
from tests.support import ROOT

MESSAGES = 60
KILL_AT = 25


def _relay(drill_database: str, drill_mail_dir, smtp_url: str) -> subprocess.Popen[bytes]:
    env = app_environment(
        drill_database, "http://127.0.0.1", drill_mail_dir, MAIS_SMTP_URL=smtp_url
    )
    return subprocess.Popen(
        [str(VENV_BIN / "flask"), "mais", "send-mail", "--loop", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_relay_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    drill_app, drill_database, drill_mail_dir
):
    prefix = f"drill-relay-{time.time_ns()}"
    queue_drill_mail(drill_app, prefix, MESSAGES, to="owner")

    sink = SmtpSink(stall_at_message=KILL_AT)
    try:
        relay = _relay(drill_database, drill_mail_dir, sink.url)
        assert sink.stalled.wait(timeout=60), "the relay never reached the stalling message"
        relay.send_signal(signal.SIGKILL)
        relay.wait(timeout=10)
        delivered_before_kill = sum(sink.accepted.values())
        sink.stall_at_message = None
        sink.release.set()

        restarted = _relay(drill_database, drill_mail_dir, sink.url)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with drill_app.app_context(), platform_scope("drill: watching the outbox"):
                    pending = db.session.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(
                            OutboxMessage.dedup_key.like(f"{prefix}:%"),
                            OutboxMessage.status != OutboxStatus.SENT,
                        )
                    )
                if pending == 0:
                    break
                time.sleep(0.2)
        finally:
            restarted.terminate()
            restarted.wait(timeout=10)
    finally:
        sink.stop()

    assert 0 < delivered_before_kill < MESSAGES  # the kill really landed mid-batch
    assert pending == 0
    assert len(sink.accepted) == MESSAGES  # none lost
    assert max(sink.accepted.values()) == 1  # none twice
