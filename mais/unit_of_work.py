"""The transaction's owner: one commit per request, command or job, and what must wait for it.

Some work may only happen once a transaction is durable and its locks are gone: a payment
provider's refund decided under a date lock can take seconds to answer, and no date may stay
locked that long. Such work is queued with ``call_after_commit`` inside the transaction that
decided it, and ``commit`` runs it after the commit, each action in a short transaction of its
own. A rollback drops what the transaction queued. An action that fails is logged and left for
the maintenance sweep that owns that kind of work (refunds: ``mais.refunds``), so nothing queued
here may be the only record of what is owed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from .extensions import db

log = logging.getLogger(__name__)

_QUEUE_KEY = "mais.after_commit"


def _session() -> Session:
    session = db.session
    return session() if isinstance(session, scoped_session) else session


def call_after_commit(action: Callable[[], None]) -> None:
    """Run ``action`` once the current transaction commits; never if it rolls back."""
    session = _session()
    root = session.get_transaction()
    queued: tuple[SessionTransaction | None, list[Callable[[], None]]] | None = session.info.get(
        _QUEUE_KEY
    )
    if queued is None or queued[0] is not root:
        # Whatever was queued under an earlier transaction died with its rollback.
        queued = session.info[_QUEUE_KEY] = (root, [])
    queued[1].append(action)


def commit() -> None:
    """Commit the current transaction, then run what it queued."""
    session = _session()
    root = session.get_transaction()
    queued = session.info.pop(_QUEUE_KEY, None)
    session.commit()
    if queued is None or root is None or queued[0] is not root:
        return
    for action in queued[1]:
        try:
            action()
            session.commit()
        except Exception:  # noqa: BLE001 - the owning sweep retries; one failure must not stop the rest
            session.rollback()
            log.exception("an action after commit failed; its maintenance sweep will retry it")
