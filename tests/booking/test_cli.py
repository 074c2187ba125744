from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from mais import mail
from mais.extensions import db
from mais.models import DateHold, HoldStatus, OutboxMessage, OutboxStatus
from mais.models.base import utcnow

from .conftest import cancellation_context, future, hold_for


def test_send_mail_command_relays_the_outbox(app, tenant, empty_outbox):
    context = cancellation_context("R9")
    mail.enqueue_mails(
        [mail.Mail("booking_cancelled", "cli@example.com", "cli-1", context, tenant.id)]
    )
    message = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.dedup_key == "cli-1")
    ).one()
    result = app.test_cli_runner().invoke(args=["mais", "send-mail"])
    assert result.exit_code == 0 and "Sent 1 message(s)." in result.output
    assert db.session.get(OutboxMessage, message.id).status == OutboxStatus.SENT
    assert list(Path(app.config["MAIS_MAIL_DIR"]).glob(f"{message.id:06d}-*.eml"))


def test_maintenance_command_releases_expired_holds(app, tenant, package):
    hold = hold_for(tenant, package, future(3))
    hold.expires_at = utcnow() - timedelta(minutes=1)
    db.session.flush()
    result = app.test_cli_runner().invoke(args=["mais", "maintenance"])
    assert result.exit_code == 0, result.output
    assert "expired hold(s)" in result.output and "webhook event(s)" in result.output
    assert db.session.scalar(select(DateHold.status).where(DateHold.id == hold.id)) == (
        HoldStatus.RELEASED
    )
