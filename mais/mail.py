"""Outgoing mail through a transactional outbox.

``enqueue_mails`` adds rendered messages to the caller's transaction, so an email exists exactly
when the change that caused it was committed. ``send_pending`` (the relay: ``flask mais
send-mail``, or inline after a request in development) delivers committed messages through SMTP,
or as ``.eml`` files when no SMTP server is configured. Several relays may run at once: each
claims its rows with ``FOR UPDATE SKIP LOCKED``.

A message that cannot be delivered waits for its ``next_attempt_at``: exponential backoff with
full jitter, capped per step. It is given up (``dead``, listed in the admin's outbox with a retry
button) only when its first attempt is older than the give-up window (48 h by default), or at
once when the server refuses its recipient for good (5xx).
"""

from __future__ import annotations

import hashlib
import logging
import random
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import current_app, g, has_request_context
from jinja2 import TemplateNotFound
from sqlalchemy import literal, select

from . import unit_of_work
from .extensions import db
from .models import OutboxMessage, OutboxStatus
from .models.base import utcnow
from .tenancy import insert_or_skip, platform_scope

log = logging.getLogger(__name__)

# Not for security: only spreads retries over time.
_jitter = random.Random()  # noqa: S311


def _render(template: str, context: dict[str, Any]) -> tuple[str, str, str | None]:
    """(subject, text body, html body or None) from ``templates/mail/<template>.txt|.html``;
    the text template's first line is ``Subject: …``."""
    env = current_app.jinja_env
    text = env.get_template(f"mail/{template}.txt").render(**context)
    first_line, _, body = text.lstrip("\n").partition("\n")
    if not first_line.startswith("Subject:"):
        raise ValueError(f"mail/{template}.txt must start with a 'Subject: …' line")
    subject = first_line.removeprefix("Subject:").strip()
    try:
        html = env.get_template(f"mail/{template}.html").render(subject=subject, **context)
    except TemplateNotFound:
        html = None
    return subject, body.strip("\n") + "\n", html


@dataclass(frozen=True)
class Mail:
    """One email for ``enqueue_mails``; ``dedup_key`` names it once and for all."""

    template: str
    to: str
    dedup_key: str
    context: dict[str, Any]
    tenant_id: int | None


# A message whose dedup key is known is skipped, without a query and a savepoint per message.
_INSERT_NEW_MESSAGE = insert_or_skip(OutboxMessage.__table__, "(dedup_key)")


def enqueue_mails(mails: Sequence[Mail]) -> None:
    """Add emails to the current transaction in one round trip, one mail or many alike. A
    message whose ``dedup_key`` is already in the outbox (or being added by a concurrent
    transaction) is skipped: a retried operation never mails twice."""
    if not mails:
        return
    now = utcnow()
    rows = []
    for mail in mails:
        subject, body_text, body_html = _render(mail.template, mail.context)
        rows.append(
            {
                "dedup_key": mail.dedup_key,
                "tenant_id": mail.tenant_id,
                "template": mail.template,
                "to_email": mail.to,
                "subject": subject,
                "body_text": body_text,
                "body_html": body_html,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "sent_at": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    # One executemany (psycopg sends the rows in one pipeline), on the session's connection:
    # the outbox is a platform table, so the ORM's execution events have nothing to check.
    db.session.connection().execute(_INSERT_NEW_MESSAGE, rows)
    if has_request_context():
        g.mais_mail_enqueued = True


def _as_email(message: OutboxMessage) -> EmailMessage:
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = current_app.config["MAIS_MAIL_FROM"]
    email["To"] = message.to_email
    email["Date"] = formatdate(localtime=False)
    # Derived from the dedup key: a message delivered again carries the same id, so receiving
    # servers and clients can recognise it.
    digest = hashlib.sha256(message.dedup_key.encode()).hexdigest()[:32]
    domain = urlsplit(current_app.config["MAIS_BASE_URL"]).hostname or "mais.local"
    email["Message-ID"] = f"<{digest}@{domain}>"
    email.set_content(message.body_text)
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


def _deliver_smtp(url: str, email: EmailMessage) -> None:
    parts = urlsplit(url)
    use_ssl = parts.scheme == "smtps"
    port = parts.port or (465 if use_ssl else 587)
    smtp_class = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
    with smtp_class(parts.hostname or "localhost", port, timeout=30) as smtp:
        smtp.ehlo()
        # smtp+starttls:// insists on TLS; smtp:// upgrades whenever the server offers it.
        if not use_ssl and (parts.scheme == "smtp+starttls" or smtp.has_extn("starttls")):
            smtp.starttls()
            smtp.ehlo()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(email)


def _deliver_file(directory: str, message: OutboxMessage, email: EmailMessage) -> None:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{message.id:06d}-{message.template}.eml").write_bytes(email.as_bytes())


def retry_ceiling(attempts: int, *, base: float, cap: float) -> float:
    """The longest wait, in seconds, after ``attempts`` failed attempts: ``base`` doubling per
    attempt, never above ``cap``."""
    # The exponent is bounded: past it the cap has long applied, and 2.0 ** 1100 overflows.
    return float(min(cap, base * 2.0 ** min(max(attempts - 1, 0), 64)))


def retry_delay(
    attempts: int, *, base: float, cap: float, rng: random.Random | None = None
) -> timedelta:
    """How long to wait after ``attempts`` failed attempts: full jitter, a uniform draw under
    ``retry_ceiling``, so the messages of one outage do not all come back at the same instant."""
    ceiling = retry_ceiling(attempts, base=base, cap=cap)
    return timedelta(seconds=(rng or _jitter).uniform(0, ceiling))


def _describe(error: OSError) -> str:
    # Class and reply codes only: SMTP replies may echo the recipient's address.
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _reply in error.recipients.values()})
        return f"{type(error).__name__}: {', '.join(str(code) for code in codes)}"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{type(error).__name__}: {error.smtp_code}"
    return f"{type(error).__name__}: {getattr(error, 'errno', '') or ''}"


def _is_permanent(error: OSError) -> bool:
    # A recipient refused for good (5xx) will still be refused in 48 hours. Other 5xx replies
    # (sender, authentication, size) usually mean our own configuration is wrong: those keep
    # being retried, so the messages go out once it is fixed.
    return (
        isinstance(error, smtplib.SMTPRecipientsRefused)
        and bool(error.recipients)
        and all(500 <= code < 600 for code, _reply in error.recipients.values())
    )


def _server_unavailable(error: OSError) -> bool:
    # The next message would meet the same refusal (or wait out the same 30 s timeout): one
    # attempt per run is enough to notice the server is back.
    if isinstance(
        error,
        smtplib.SMTPConnectError
        | smtplib.SMTPServerDisconnected
        | smtplib.SMTPHeloError
        | smtplib.SMTPAuthenticationError,
    ):
        return True
    # SMTPException is an OSError; what is left are socket, TLS and file system errors.
    return not isinstance(error, smtplib.SMTPException)


# Rendered into the SQL, not bound: the claim becomes a prepared statement in a long-running
# relay, and a generic plan may use the partial index on pending rows only if it reads 'pending'.
_PENDING = literal(OutboxStatus.PENDING.value, literal_execute=True)


def _claim_next(skip_ids: list[int]) -> OutboxMessage | None:
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == _PENDING,
            OutboxMessage.next_attempt_at <= utcnow(),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if skip_ids:
        query = query.where(OutboxMessage.id.not_in(skip_ids))
    return db.session.scalars(query).first()


def _record_failure(message: OutboxMessage, error: OSError) -> None:
    config = current_app.config
    now = utcnow()
    message.last_error = _describe(error)
    give_up_at = message.created_at + timedelta(seconds=config["MAIS_MAIL_GIVE_UP_AFTER"])
    if _is_permanent(error) or now >= give_up_at:
        message.status = OutboxStatus.DEAD
        log.error(
            "outbox message %s given up after %s attempt(s): %s",
            message.id,
            message.attempts,
            message.last_error,
        )
        return
    message.next_attempt_at = now + retry_delay(
        message.attempts,
        base=config["MAIS_MAIL_RETRY_BASE"],
        cap=config["MAIS_MAIL_RETRY_CAP"],
    )
    log.warning(
        "outbox message %s not delivered (attempt %s, %s); next attempt at %s",
        message.id,
        message.attempts,
        message.last_error,
        message.next_attempt_at.isoformat(timespec="seconds"),
    )


def send_pending(limit: int = 100) -> int:
    """Deliver up to ``limit`` messages that are due; returns how many were sent.

    One message per transaction: claim it (``FOR UPDATE SKIP LOCKED``), deliver it, mark it
    sent (or schedule its next attempt, or give it up), commit. A relay killed mid-batch
    therefore leaves every delivered message marked sent and every other one pending, so a
    restarted relay neither loses nor repeats any (the window left is the instant between the
    server's acceptance and our commit). A server that cannot be reached ends the run.
    """
    smtp_url = current_app.config.get("MAIS_SMTP_URL")
    mail_dir = current_app.config["MAIS_MAIL_DIR"]
    sent = 0
    tried: list[int] = []
    with platform_scope("the mail relay serves every tenant"):
        for _ in range(limit):
            message = _claim_next(tried)
            if message is None:
                unit_of_work.commit()  # ends the claiming read
                break
            tried.append(message.id)
            message.attempts += 1
            try:
                email = _as_email(message)
                if smtp_url:
                    _deliver_smtp(smtp_url, email)
                else:
                    _deliver_file(mail_dir, message, email)
            except OSError as error:  # smtplib.SMTPException included
                _record_failure(message, error)
                unit_of_work.commit()
                if _server_unavailable(error):
                    break
                continue
            message.status = OutboxStatus.SENT
            message.sent_at = utcnow()
            message.last_error = None
            # A job of its own, one message per transaction: a relay killed mid-batch keeps
            # every delivery it made.
            unit_of_work.commit()
            sent += 1
    if sent:
        log.info("outbox relay sent %s message(s)", sent)
    return sent
