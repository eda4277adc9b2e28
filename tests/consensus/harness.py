"""A synchronous in-memory exchange between Replica objects for scripted tests.

Each `Node` plays the daemon's part: it persists `Output.persist` records
before enqueueing `Output.messages`, executes committed blocks in order, reports
them with `block_executed`, and serves fetch requests from other nodes' blocks.
Messages go through one FIFO queue; hooks can drop or alter them in flight.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

from consensus import (
    CertifiedBlock,
    Ed25519Signer,
    Ed25519Verifier,
    Message,
    Output,
    Replica,
    ReplicaConfig,
    RestoredState,
)

CHAIN_ID = "xinlian-test"
SIGNERS = [Ed25519Signer(hashlib.sha256(b"validator-%d" % index).digest()) for index in range(24)]
VERIFIER = Ed25519Verifier()  # shared so each signature is checked once per test process

DropHook = Callable[[str, str, Message], bool]
AlterHook = Callable[[str, str, Message], Message]


def next_state_digest(previous: str, payload: bytes) -> str:
    return hashlib.sha256(previous.encode() + b"|" + payload).hexdigest()


@dataclass
class Node:
    replica: Replica
    signer: Ed25519Signer
    config: ReplicaConfig
    records: dict[str, dict] = field(default_factory=dict)
    blocks: dict[int, CertifiedBlock] = field(default_factory=dict)
    state_digest: str = "genesis"
    fetches: list = field(default_factory=list)
    view_changes: list[int] = field(default_factory=list)
    # seq -> (effective_seq, validators): the governance decision a block carries
    validator_updates: dict[int, tuple[int, tuple[str, ...]]] = field(default_factory=dict)
    to_execute: deque[CertifiedBlock] = field(default_factory=deque)
    executing: bool = False

    @property
    def key(self) -> str:
        return self.signer.public_key

    def payloads(self) -> list[bytes]:
        return [self.blocks[seq].payload for seq in sorted(self.blocks)]


class Cluster:
    def __init__(self, validator_count: int, observer_count: int = 0, **config_fields) -> None:
        signers = SIGNERS[: validator_count + observer_count]
        self.config = ReplicaConfig(
            chain_id=CHAIN_ID,
            validators=tuple(s.public_key for s in signers[:validator_count]),
            **config_fields,
        )
        self.nodes = [Node(Replica(self.config, s, VERIFIER), s, self.config) for s in signers]
        self.queue: deque[tuple[str, str, Message]] = deque()
        self.drop: DropHook | None = None
        self.alter: AlterHook | None = None
        self.isolated: set[str] = set()
        self.auto_fetch = True
        self.delivered_count = 0

    def node(self, key: str) -> Node:
        return next(n for n in self.nodes if n.key == key)

    def primary(self) -> Node:
        """Return the primary as seen by the connected replica in the highest view."""
        connected = [n for n in self.nodes if n.key not in self.isolated]
        viewer = max(connected, key=lambda n: n.replica.view)
        return self.node(viewer.replica.primary)

    # ---- performing outputs -----------------------------------------------------

    def apply(self, node: Node, out: Output) -> None:
        for key, value in out.persist:
            if value is None:
                node.records.pop(key, None)
            else:
                node.records[key] = value
        for recipient, message in out.messages:
            targets = [recipient] if recipient is not None else [n.key for n in self.nodes if n.key != node.key]
            for target in targets:
                self.queue.append((node.key, target, message))
        if out.view_changed is not None:
            node.view_changes.append(out.view_changed)
        node.to_execute.extend(out.committed)
        if not node.executing:
            node.executing = True
            while node.to_execute:
                self._execute(node, node.to_execute.popleft())
            node.executing = False
        if out.fetch is not None:
            node.fetches.append(out.fetch)
            if self.auto_fetch:
                self._serve_fetch(node, out.fetch)

    def _execute(self, node: Node, block: CertifiedBlock) -> None:
        assert block.seq == len(node.blocks) + 1, f"block {block.seq} released out of order"
        node.blocks[block.seq] = block
        node.state_digest = next_state_digest(node.state_digest, block.payload)
        update = node.validator_updates.get(block.seq)
        self.apply(node, node.replica.block_executed(block.seq, node.state_digest, update))

    def _serve_fetch(self, node: Node, request) -> None:
        if node.key in self.isolated:
            return
        for peer in self.nodes:
            if peer.key in request.hint_peers and peer.key not in self.isolated:
                blocks = [peer.blocks[s] for s in range(request.from_seq, request.to_seq + 1) if s in peer.blocks]
                self.apply(node, node.replica.deliver_fetched(blocks))

    # ---- driving ------------------------------------------------------------------

    def deliver_all(self, steps_max: int = 200_000) -> None:
        steps = 0
        while self.queue:
            steps += 1
            assert steps <= steps_max, "message exchange did not settle"
            sender, recipient, message = self.queue.popleft()
            if sender in self.isolated or recipient in self.isolated:
                continue
            if self.drop is not None and self.drop(sender, recipient, message):
                continue
            if self.alter is not None:
                message = self.alter(sender, recipient, message)
            node = self.node(recipient)
            self.delivered_count += 1
            self.apply(node, node.replica.step(message))

    def propose(self, payload: bytes, deliver: bool = True) -> None:
        primary = self.primary()
        assert primary.replica.can_propose(), "primary cannot propose"
        self.apply(primary, primary.replica.propose(payload))
        if deliver:
            self.deliver_all()

    def tick_all(self, ticks: int, pending: bool = True) -> None:
        for _ in range(ticks):
            for node in self.nodes:
                if node.key not in self.isolated:
                    self.apply(node, node.replica.tick(pending))
            self.deliver_all()

    def restart(self, node: Node) -> Node:
        """Replace a node's replica by one rebuilt from its persisted records."""
        restored = RestoredState(dict(node.records), len(node.blocks), node.state_digest)
        node.replica = Replica(node.config, node.signer, VERIFIER, restored)
        return node


def resign(message: Message, signer: Ed25519Signer) -> Message:
    """Return `message` signed again by `signer`, after a test altered its fields."""
    unsigned = replace(message, sender=signer.public_key, signature=b"")
    return replace(unsigned, signature=signer.sign(unsigned.signing_bytes(CHAIN_ID)))
