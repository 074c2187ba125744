"""The transaction's owner: one commit per request, command or job, and what must wait for it.

A request is one unit of work (``install``): it commits once when it answers under 400 and rolls
back otherwise; views and domain functions never commit. The one exception, a commit before a
network call, is ``commit_before_network_call``. CLI commands and jobs commit through ``commit``
where they say why (per batch, per message). The webhook is a unit of work of its own
(``owns_its_transactions``).

Some work may only happen once a transaction is durable and its locks are gone: a payment
provider's refund decided under a date lock can take seconds to answer, and no date may stay
locked that long. Such work is queued with ``call_after_commit`` inside the transaction that
decided it, and ``commit`` runs it after the commit, each action in a short transaction of its
own. A rollback drops what the transaction queued. An action that fails is logged and left for
the maintenance sweep that owns that kind of work (refunds: ``mais.refunds``), so nothing queued
here may be the only record of what is owed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, g
from sqlalchemy.exc import InterfaceError, OperationalError
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


def rollback() -> None:
    """Drop the current transaction and whatever it queued."""
    session = _session()
    session.info.pop(_QUEUE_KEY, None)
    session.rollback()


def commit_before_network_call(*keep: object) -> None:
    """Commit now, in the middle of a request, because a network call comes next.

    This is the one exception to "a request commits once, at its end". A view calls it (never a
    domain function) right before asking another server for something, when what the
    transaction wrote must be durable first or no transaction may stay open while waiting:

    - Pay: the hold must be committed (its date lock released) before the provider's checkout
      session is created for it; a checkout must never exist for a hold that was not stored.
    - Abandoning a checkout: the read ends before the provider is asked to expire the session.
    - Payouts onboarding: the connected account's id is stored before the onboarding link is
      asked for, so an account created at the provider is never forgotten.

    The request's own commit at its end still writes what comes after. ``keep`` stays loaded
    across this commit (Pay's tenant and hold: expiring them would cost a SELECT each to read
    back the values this transaction has just written); everything else expires as usual.
    """
    session = _session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        commit()
    finally:
        session.expire_on_commit = expire_on_commit
    if expire_on_commit:
        kept = {id(obj) for obj in keep}
        for obj in list(session.identity_map.values()):
            if id(obj) not in kept:
                session.expire(obj)


def install(app: Flask) -> None:
    """Make every request one unit of work: a response under 400 commits (then runs what was
    queued with ``call_after_commit``), any other answer or an exception rolls back, and the
    session always ends with the request. Views and domain functions never commit."""

    @app.after_request
    def _end_unit_of_work(response: Response) -> Response:
        if g.get(_OWNS_TRANSACTIONS):
            return response
        if response.status_code >= 400:
            rollback()
            return response
        try:
            commit()
        except (OperationalError, InterfaceError) as error:
            # The database went away at the commit: the same answer as anywhere else.
            rollback()
            return app.make_response(app.handle_user_exception(error))
        return response

    @app.teardown_request
    def _roll_back_on_error(exc: BaseException | None) -> None:
        # An exception skipped the hook above. Flask-SQLAlchemy then ends the session with the
        # application context, whatever happened.
        if exc is not None:
            rollback()


_OWNS_TRANSACTIONS = "mais_owns_transactions"

F = TypeVar("F", bound=Callable[..., Any])


def owns_its_transactions(view: F) -> F:
    """For a view whose domain call is a unit of work of its own (the webhook: it rolls back a
    failed handler and records the failure in a transaction of its own). The request neither
    commits nor rolls back after it; its session still ends at teardown."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        g.setdefault(_OWNS_TRANSACTIONS, True)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
