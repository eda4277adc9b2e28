"""Who may read a subject's credit report or personal details: the access policy.

The policy is a pure function of the chain state at one height, the date of
that height's block, and the state of the subject in this node's off-chain
store. It reads consents and mandates only through the query functions of
`node.contracts.queries`, so those rules live in one place.

Rules, checked in this order:

1. Data erased or frozen in the off-chain store is not served to anyone (`erased`, `frozen`).
   Personal details of a subject that the chain marks erased or frozen (a
   committed `subject.erase`) are refused the same way, even on a node that has
   not yet applied the erasure event to its store. Credit reports are built
   from chain records, which stay under the credit-reporting retention rule,
   so the chain marker does not refuse them.
2. A data subject reads only its own data (`not_subject`). Its own reports are
   always allowed. The decision carries how many it has had this year, so the
   caller can charge for reports beyond the free ones.
3. The regulator reads everything; the decision is marked for the audit log.
4. A suspended or removed member reads nothing (`member_suspended`).
5. A collector reading for purpose `collection` needs an active mandate and an
   open case for the subject (`mandate_ended`).
6. Any other member needs the subject's active consent naming it for the stated
   purpose. Personal details held by another member also need a consent naming
   it for `data_sharing`, because sharing needs its own consent. A rejection names
   the reason: `no_consent`, `consent_expired` or `consent_revoked`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from node.contracts import queries
from node.privacy.errors import PrivacyError
from node.privacy.read_auth import Reader

PURPOSES = ("credit_query", "assessment", "collection", "data_sharing")
SHARING_PURPOSE = "data_sharing"
FREE_SELF_REPORTS_DEFAULT = 2

Basis = Literal["subject_self", "regulator", "collector_mandate", "consent"]
Kind = Literal["report", "details"]


@dataclass(frozen=True)
class AccessDecision:
    """The basis of an allowed read, and what the caller must record or charge for it."""

    basis: Basis
    member_id: str | None
    purpose: str
    audit: bool  # True for regulator reads, which the node logs and records like any other access
    self_reports_this_year: int = 0  # subject reads only: own reports already recorded this calendar year
    free_self_reports_per_year: int = FREE_SELF_REPORTS_DEFAULT

    @property
    def charge_applies(self) -> bool:
        """True when a subject's own report is beyond the free ones of this year (2 a year by default)."""
        return self.basis == "subject_self" and self.self_reports_this_year >= self.free_self_reports_per_year


_CONSENT_REFUSALS = {"none": "no_consent", "expired": "consent_expired", "revoked": "consent_revoked"}


def reader_for_key(state: Any, public_key: str) -> Reader | None:
    """Map a public key to a Reader: a member's client key or a registered subject's key.

    Node keys are for peer links and do not sign read requests. Use as the
    `lookup` of a ReadVerifier: `ReadVerifier(lambda key: reader_for_key(state_now(), key))`.
    """
    owner = state.get(f"member_key/{public_key}")
    if owner is not None:
        if owner.get("kind") != "client":
            return None
        member = state.get(f"member/{owner['member_id']}")
        if member is None:
            return None
        return Reader(public_key=public_key, member_id=member["member_id"], role=member["role"])
    subject_id = state.get(f"subject_key/{public_key}")
    if subject_id is not None:
        return Reader(public_key=public_key, subject_id=subject_id)
    return None


def check_access(
    state: Any,
    reader: Reader,
    subject_id: str,
    purpose: str,
    date: str,
    kind: Kind = "report",
    store_state: str | None = None,
) -> AccessDecision:
    """Decide whether `reader` may read `subject_id`'s report or details on `date`; raise PrivacyError if not.

    `store_state` is the subject's state in this node's off-chain store
    ("active", "frozen", "erased" or None); pass it when the read serves details.
    For `kind="details"` the chain's erasure marker is checked as well.
    """
    if purpose not in PURPOSES:
        raise PrivacyError("invalid_purpose", purpose=purpose)
    if store_state == "erased":
        raise PrivacyError("erased", subject_id=subject_id)
    if store_state == "frozen":
        raise PrivacyError("frozen", subject_id=subject_id)
    if kind == "details":
        _check_chain_erasure(state, subject_id)

    if reader.is_subject:
        return _check_subject_self(state, reader, subject_id, purpose, date)

    member = state.get(f"member/{reader.member_id}")
    if member is None or member.get("status") != "active":
        raise PrivacyError("member_suspended", member_id=reader.member_id)
    if member["role"] == "regulator":
        return AccessDecision(basis="regulator", member_id=reader.member_id, purpose=purpose, audit=True)

    if member["role"] == "collector" and purpose == "collection":
        if queries.collector_mandate_active(state, reader.member_id, subject_id, date):
            return AccessDecision(basis="collector_mandate", member_id=reader.member_id, purpose=purpose, audit=False)
        raise PrivacyError("mandate_ended", member_id=reader.member_id, subject_id=subject_id, date=date)

    required_purposes = [purpose]
    if kind == "details" and purpose != SHARING_PURPOSE:
        required_purposes.append(SHARING_PURPOSE)
    for consent_purpose in required_purposes:
        status = queries.consent_state(state, subject_id, reader.member_id, consent_purpose, date)
        if status != "active":
            code = _CONSENT_REFUSALS.get(status, "no_consent")
            raise PrivacyError(code, member_id=reader.member_id, subject_id=subject_id, purpose=consent_purpose, date=date)
    return AccessDecision(basis="consent", member_id=reader.member_id, purpose=purpose, audit=False)


def _check_chain_erasure(state: Any, subject_id: str) -> None:
    """Raise `erased` or `frozen` when a committed subject.erase marks the subject on chain."""
    marker = queries.subject_erasure(state, subject_id)
    if marker is None:
        return
    if marker["state"] == "erased":
        raise PrivacyError("erased", subject_id=subject_id, erasure_id=marker["erasure_id"])
    raise PrivacyError("frozen", subject_id=subject_id, erasure_id=marker["erasure_id"], retain_until=marker["retain_until"])


def _check_subject_self(state: Any, reader: Reader, subject_id: str, purpose: str, date: str) -> AccessDecision:
    if reader.subject_id != subject_id:
        raise PrivacyError("not_subject", subject_id=subject_id)
    # The report.query contract counts a subject's own reports per calendar year under this key.
    count = state.get(f"self_reports/{subject_id}/{date[:4]}") or 0
    params = state.get("params") or {}
    free = params.get("free_self_reports_per_year", FREE_SELF_REPORTS_DEFAULT)
    return AccessDecision(
        basis="subject_self",
        member_id=None,
        purpose=purpose,
        audit=False,
        self_reports_this_year=count,
        free_self_reports_per_year=free,
    )

