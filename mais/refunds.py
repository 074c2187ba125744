"""Refunds are decided under the date lock and issued after its transaction commits.

A payment provider can take seconds to answer, and no date may stay locked that long. So the
decision (a lost race, a cancellation with refund) only marks the hold or booking
``is_refund_owed`` in the locked transaction and queues the call with
``unit_of_work.call_after_commit``; once the transaction commits, the provider is asked with the
row's own idempotency key (one key, one refund, however often it is asked) and the row notes the
refund id. A process that dies between the commit and the provider's answer leaves the row owed:
``issue_owed_refunds`` (run by ``flask mais maintenance``) asks again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select, update

from .extensions import db
from .models import Booking, DateHold, Tenant
from .payments import get_provider
from .tenancy import platform_scope, tenant_operation
from .unit_of_work import call_after_commit, commit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OwedRefund:
    """A refund decided and not yet acknowledged by the provider."""

    model: type[DateHold] | type[Booking]
    tenant_id: int
    row_id: str | int
    payment_intent_id: str

    @property
    def idempotency_key(self) -> str:
        # The keys refunds have always used: a refund issued before this module existed is
        # found again, not made twice.
        prefix = "lost-hold" if self.model is DateHold else "cancel-booking"
        return f"{prefix}-{self.row_id}"


def owe_refund(refund: OwedRefund) -> None:
    """Called under the date lock, after marking the row owed: issue it once the transaction
    commits."""
    call_after_commit(partial(issue_refund, refund.tenant_id, refund))


@tenant_operation
def issue_refund(tenant: Tenant | int, refund: OwedRefund) -> str | None:
    """Ask the provider for the refund, then note its id. No lock is held while asking; the
    caller (``unit_of_work.commit`` or the sweep) commits the note."""
    refund_id = get_provider().refund(
        payment_intent_id=refund.payment_intent_id, idempotency_key=refund.idempotency_key
    )
    model = refund.model
    db.session.execute(
        update(model)
        .where(model.id == refund.row_id, model.is_refund_owed.is_(True))
        .values(refund_id=refund_id, is_refund_owed=False)
        .execution_options(synchronize_session=False)
    )
    return refund_id


def owed_refunds(limit: int = 500) -> list[OwedRefund]:
    with platform_scope("the refund sweep finds what every tenant still owes"):
        found: list[OwedRefund] = []
        for model in (DateHold, Booking):
            rows = db.session.execute(
                select(model.tenant_id, model.id, model.payment_intent_id)
                .where(model.is_refund_owed.is_(True))
                .order_by(model.id)
                .limit(limit)
            )
            found += [OwedRefund(model, *row) for row in rows]
        return found


def issue_owed_refunds() -> int:
    """The sweep: issue every refund still owed, each in its own transaction, none while a
    transaction is open. Returns how many were issued."""
    refunds = owed_refunds()
    commit()  # the read ends here: nothing stays open across the provider's answers
    issued = 0
    for refund in refunds:
        try:
            issue_refund(refund.tenant_id, refund)
            commit()  # a job of its own, one refund per transaction: each is kept as it is issued
            issued += 1
        except Exception:  # noqa: BLE001 - one provider failure must not stop the others
            db.session.rollback()
            log.exception("refund %s of %s is still owed", refund.row_id, refund.model.__name__)
    return issued
