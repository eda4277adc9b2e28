"""Byzantine behaviour of a replica: rewrite what it sends and inject extra messages.

A Byzantine node still runs a real Replica, so it takes part in the protocol
like a correct one, and its outgoing messages pass through `rewrite`. Every
forged message is properly signed, by the Byzantine replica's own key or by an
outsider key, so replicas must reject it by the protocol rules and not merely
by a bad signature.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import deque
from typing import Any

from consensus import CertifiedBlock, Checkpoint, Commit, NewView, PrePrepare, Prepare, ViewChange, sign_message
from tests.sim.workload import PayloadError, decode_batch, encode_batch

REPLAY_HISTORY_MAX = 256
HUGE_VIEW = 2**40
INJECT_PROBABILITY = 0.03


def _random_digest(rng: random.Random) -> str:
    return hashlib.sha256(rng.randbytes(16)).hexdigest()


class ByzantineBehaviour:
    def __init__(
        self,
        rng: random.Random,
        behaviours: frozenset[str],
        signer: Any,
        outsider: Any,
        chain_id: str,
        peer_ids: list[str],
    ) -> None:
        self._rng = rng
        self.behaviours = behaviours
        self._signer = signer
        self._outsider = outsider
        self._chain_id = chain_id
        self._peer_ids = peer_ids
        self._history: deque[Any] = deque(maxlen=REPLAY_HISTORY_MAX)
        self.silent = False  # the liveness phase turns every Byzantine replica silent
        self.forged = 0

    def _sign(self, message: Any, signer: Any | None = None) -> Any:
        self.forged += 1
        return sign_message(message, signer or self._signer, self._chain_id)

    def observe_received(self, message: Any) -> None:
        if "replay" in self.behaviours:
            self._history.append(message)

    def rewrite(self, recipient: str | None, message: Any) -> list[tuple[str, Any]]:
        """Return the (recipient, message) pairs actually sent instead of `message`."""
        if self.silent:
            return []
        recipients = [recipient] if recipient is not None else list(self._peer_ids)
        if "withhold_checkpoint" in self.behaviours and isinstance(message, Checkpoint):
            return []
        if "selective_silence" in self.behaviours and len(recipients) > 1:
            recipients = [peer for peer in recipients if self._rng.random() < 0.5]
        sent: list[tuple[str, Any]] = []
        for index, peer in enumerate(recipients):
            sent.append((peer, self._rewrite_one(index, message)))
        if "outsider" in self.behaviours and isinstance(message, (Prepare, Commit)) and recipients:
            sent.extend(self._outsider_copies(recipients, message))
        return sent

    def _rewrite_one(self, index: int, message: Any) -> Any:
        if "equivocate" in self.behaviours and index % 2 == 1:
            if isinstance(message, PrePrepare):
                return self._conflicting_pre_prepare(message)
            if isinstance(message, NewView) and message.pre_prepares:
                return self._conflicting_new_view(message)
        if "bad_payload" in self.behaviours and isinstance(message, PrePrepare) and self._rng.random() < 0.3:
            payload = encode_batch([f"forged-{self._rng.randrange(10**9)}"])
            return self._sign(dataclasses.replace(message, payload=payload, digest=hashlib.sha256(payload).hexdigest()))
        if "bad_digest" in self.behaviours and isinstance(message, (PrePrepare, Prepare, Commit)):
            if self._rng.random() < 0.3:
                return self._sign(dataclasses.replace(message, digest=_random_digest(self._rng)))
        return message

    def _conflicting_pre_prepare(self, message: PrePrepare) -> PrePrepare:
        """Build a signed PRE-PREPARE for the same (view, seq) with another valid payload."""
        try:
            batch = decode_batch(message.payload)
        except PayloadError:
            batch = []
        other_batch = batch[:-1] if len(batch) > 1 else []
        payload = encode_batch(other_batch)
        digest = hashlib.sha256(payload).hexdigest()
        return self._sign(dataclasses.replace(message, payload=payload, digest=digest))

    def _conflicting_new_view(self, message: NewView) -> NewView:
        """Build a signed NEW-VIEW whose last re-proposal carries another payload than the plan requires."""
        pre_prepares = list(message.pre_prepares)
        pre_prepares[-1] = self._conflicting_pre_prepare(pre_prepares[-1])
        return self._sign(dataclasses.replace(message, pre_prepares=tuple(pre_prepares)))

    def _outsider_copies(self, recipients: list[str], message: Any) -> list[tuple[str, Any]]:
        peer = self._rng.choice(recipients)
        copies = [(peer, self._sign(message, self._outsider))]
        # A vote that names another validator as sender but carries the outsider's signature.
        impersonated = dataclasses.replace(message, sender=self._rng.choice(self._peer_ids), signature=b"")
        forged_signature = self._outsider.sign(impersonated.signing_bytes(self._chain_id))
        copies.append((peer, dataclasses.replace(impersonated, signature=forged_signature)))
        return copies

    def inject(self, view: int, last_seq: int) -> list[tuple[str, Any]]:
        """Messages this replica sends on its own initiative this tick."""
        if self.silent or self._rng.random() >= INJECT_PROBABILITY:
            return []
        peer = self._rng.choice(self._peer_ids)
        injected: list[tuple[str, Any]] = []
        if "bogus_view" in self.behaviours:
            huge_view = HUGE_VIEW + self._rng.randint(0, 1000)
            seq = last_seq + self._rng.randint(1, 4)
            injected.append((peer, self._sign(Prepare(huge_view, seq, _random_digest(self._rng), ""))))
            injected.append((peer, self._sign(ViewChange(huge_view, 0, (), (), ""))))
            injected.append((peer, self._sign(ViewChange(view + self._rng.randint(1, 3), 0, (), (), ""))))
        if "bad_digest" in self.behaviours:
            seq = last_seq + self._rng.randint(1, 4)
            injected.append((peer, self._sign(Commit(view, seq, _random_digest(self._rng), ""))))
        if "replay" in self.behaviours and self._history:
            injected.append((peer, self._rng.choice(self._history)))
        return injected

    def rewrite_fetched(self, blocks: list[CertifiedBlock]) -> list[CertifiedBlock]:
        """Swap the payload of each served block, keeping its certificate, when forge_fetch is on."""
        if self.silent:
            return []
        if "forge_fetch" not in self.behaviours:
            return blocks
        forged = []
        for block in blocks:
            payload = encode_batch([])
            forged.append(dataclasses.replace(block, payload=payload, digest=hashlib.sha256(payload).hexdigest()))
        return forged
