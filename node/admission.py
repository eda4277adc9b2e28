"""Admission of transactions into the mempool, from the HTTP API and from peers' gossip.

Checks, in order: encoding and signature (node.tx), expiry against the node's
clock, chain id, a (sender, nonce) already committed, the contracts' cheap
`check_tx` (sender known, role allowed, payload shape), then the mempool's own
bounds and duplicate checks. A known sender that breaks a rule decision (its
role may not send the type, or the member is suspended or removed) is still
admitted: block execution commits it with `ok: false` and the rule's code, so
the refusal is on the record. Its payload shape is still checked, so a
malformed payload is rejected here whatever the sender's role. `admit_many` verifies a batch's signatures first,
in a process pool when the batch is large, so each transaction is verified once
per node and later checks (proposal validation, block execution) hit the
verifier's cache. Admitted envelopes from the API are queued for
gossip. Envelopes that came by gossip are not gossiped again, because every
member node is connected to every other.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections import Counter, OrderedDict
from typing import Any, Callable

from node.api import SubmitResult
from node.canonical import CanonicalError
from node.chain import Chain
from node.execution import ContractError, Executor
from node.mempool import Mempool, MempoolError
from node.tx import TxError, TxVerifier, VerifiedTransaction, compute_tx_id

REJECTED_REMEMBERED_MAX = 10_000
# Contract codes that are rule decisions about a known sender. Execution records
# them on chain with ok: false, so admission lets them through.
RULE_DECISION_CODES = frozenset({"role_not_allowed", "sender_suspended", "sender_removed"})
GOSSIP_BATCH_MAX = 500

log = logging.getLogger("xinlian.admission")


class Admission:
    def __init__(
        self,
        chain: Callable[[], Chain],
        mempool: Mempool,
        verifier: TxVerifier,
        executor: Executor,
        now_ms: Callable[[], int],
        pool: Callable[[], concurrent.futures.Executor | None] = lambda: None,
        on_admitted: Callable[[], None] = lambda: None,
    ) -> None:
        self._chain = chain
        self._pool = pool
        # Called once per batch that added a transaction, so the primary can propose without waiting for a tick.
        self._on_admitted = on_admitted
        self.mempool = mempool
        self.verifier = verifier
        self.executor = executor
        self.now_ms = now_ms
        self.admitted_total = 0
        self.rejected_by_code: Counter[str] = Counter()
        self.rejected: OrderedDict[str, str] = OrderedDict()  # tx_id -> reason, bounded, for GET /v1/transactions
        self.gossip_queue: list[dict[str, Any]] = []

    def admit(self, envelope: Any, from_peer: bool = False) -> SubmitResult:
        return self._admit_checked(envelope, from_peer, None)

    async def admit_many(self, envelopes: list[Any], from_peer: bool = False, parsed_strictly: bool = False) -> list[SubmitResult]:
        """Admit a batch and return one result per envelope, in order.

        The signatures of the whole batch are verified first, in the node's
        process pool when the batch is large, and land in the verifier's cache.
        The per-envelope checks that follow then run no ed25519 check.
        `parsed_strictly` is for envelopes from `parse_json` (API bodies, peer frames).
        """
        verified = await self.verifier.verify_many_async(envelopes, now_ms=self.now_ms(), pool=self._pool(), parsed_strictly=parsed_strictly)
        admitted_before = self.admitted_total
        results = [self._admit_checked(envelope, from_peer, result) for envelope, result in zip(envelopes, verified)]
        if self.admitted_total != admitted_before:
            self._on_admitted()
        return results

    def _admit_checked(self, envelope: Any, from_peer: bool, verified: VerifiedTransaction | TxError | None) -> SubmitResult:
        tx_id = verified.tx_id if isinstance(verified, VerifiedTransaction) else _tx_id_or_none(envelope)
        try:
            if isinstance(verified, TxError):
                raise verified
            self._check_and_add(envelope, verified)
        except TxError as exc:
            return self._reject(tx_id, exc.code, str(exc), exc.details)
        except ContractError as exc:
            details = dict(exc.details)
            if exc.rule:
                details["rule"] = exc.rule
            return self._reject(tx_id, exc.code, exc.code, details)
        except MempoolError as exc:
            if exc.code == "duplicate_tx":
                # Submitting the same pending transaction again is harmless: report it as pending.
                return SubmitResult(tx_id)
            return self._reject(tx_id, exc.code, str(exc), {})
        self.admitted_total += 1
        if not from_peer and len(self.gossip_queue) < self.mempool.limits.tx_count_max:
            self.gossip_queue.append(envelope)
        return SubmitResult(tx_id)

    def _check_and_add(self, envelope: Any, verified: VerifiedTransaction | None) -> None:
        now_ms = self.now_ms()
        vtx = verified if verified is not None else self.verifier.verify(envelope, now_ms=now_ms)
        chain = self._chain()
        if vtx.tx_id in self.mempool:
            raise MempoolError("duplicate_tx", f"transaction {vtx.tx_id} is already pending")
        if chain.get_tx(vtx.tx_id) is not None or chain.nonce_committed(vtx.sender, vtx.nonce):
            raise TxError("duplicate_nonce", f"sender {vtx.sender} already committed a transaction with nonce {vtx.nonce!r}", nonce=vtx.nonce)
        try:
            self.executor.check_tx(chain.state(), vtx.tx, now_ms)
        except ContractError as exc:
            if exc.code not in RULE_DECISION_CODES:
                raise
            _check_payload_shape(vtx.tx)
        self.mempool.add(vtx)

    def _reject(self, tx_id: str | None, code: str, reason: str, details: dict[str, Any]) -> SubmitResult:
        self.rejected_by_code[code] += 1
        if tx_id is not None and code not in ("duplicate_nonce", "duplicate_tx"):
            # A duplicate's id may be the id of a pending or committed transaction; never shadow it.
            self.rejected[tx_id] = f"{code}: {reason}"
            if len(self.rejected) > REJECTED_REMEMBERED_MAX:
                self.rejected.popitem(last=False)
        return SubmitResult(tx_id, code, details)

    def take_gossip(self) -> list[list[dict[str, Any]]]:
        """Remove and return queued envelopes in batches of at most GOSSIP_BATCH_MAX."""
        queued, self.gossip_queue = self.gossip_queue, []
        return [queued[start : start + GOSSIP_BATCH_MAX] for start in range(0, len(queued), GOSSIP_BATCH_MAX)]


def _check_payload_shape(tx: Any) -> None:
    """Raise the contracts' invalid_payload for a malformed payload of a built-in type.

    The contracts' `check_tx` stops at the role or status check, before it
    validates the payload, so admission validates it here. The contracts check
    the type before the role, so a type they do not route never gets here from
    them. Types of other executors (in tests) are left to that executor.
    """
    from node.contracts.executor import ROUTES
    from node.contracts.models import parse_payload

    entry = ROUTES.get(tx.type)
    if entry is not None:
        parse_payload(entry.model, tx.payload)


def _tx_id_or_none(envelope: Any) -> str | None:
    try:
        return compute_tx_id(envelope) if isinstance(envelope, dict) else None
    except CanonicalError:
        return None
