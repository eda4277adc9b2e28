"""One seeded run of a whole cluster: a safety phase under faults, then a liveness phase.

Everything random in a run comes from random.Random(seed), the clock is an
integer tick, and nodes are visited in index order, so a seed reproduces its
run exactly. Replicas exchange the canonical JSON of each message's wire form,
which exercises `to_wire` and `decode_message` as the real network does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import traceback
from dataclasses import dataclass, field
from typing import Any

from consensus import (
    CertifiedBlock,
    ConsensusDecodeError,
    Ed25519Signer,
    Ed25519Verifier,
    ReplicaConfig,
    RestoredState,
    decode_message,
    quorum_size,
)
from consensus.certificates import verify_certified_block
from consensus.encoding import canonical_bytes, sha256_hex
from consensus.replica import Replica
from tests.sim.byzantine import ByzantineBehaviour
from tests.sim.checkers import SafetyChecker, SimulationFailure
from tests.sim.faults import FaultPlan, format_faults, plan_faults
from tests.sim.network import HEALTHY_NETWORK, SimNetwork
from tests.sim.node import PROPOSALS_PER_TICK_MAX, CatchUpRequest, CatchUpResponse, SimNode
from tests.sim.store import DurableStore
from tests.sim.workload import JOIN_PREFIX, Workload

logger = logging.getLogger("xinlian.sim.cluster")

CHAIN_ID = "xinlian-sim"
CATCH_UP_INTERVAL_TICKS = 50
CATCH_UP_BLOCKS_MAX = 16
LIVENESS_CHECK_INTERVAL_TICKS = 5
DECODE_CACHE_ENTRIES_MAX = 4096
# One verifier per process, so its memo cache spans every replica and every seed of a worker.
SHARED_VERIFIER = Ed25519Verifier()


@dataclass(frozen=True)
class SimulationConfig:
    seed: int
    node_count: int
    faults: frozenset[str]
    safety_ticks: int = 600
    liveness_ticks: int = 4000
    checkpoint_interval: int = 4
    view_timeout_ticks: int = 30
    view_timeout_max_ticks: int = 240
    # With reconfig, one more node starts as an observer and a committed
    # governance transaction adds it to the validator set.
    reconfig: bool = False

    def reproduce_command(self) -> str:
        command = (
            f"python scripts/simulate.py --seed {self.seed} --n {self.node_count} "
            f"--faults {format_faults(self.faults)} --safety-ticks {self.safety_ticks} "
            f"--liveness-ticks {self.liveness_ticks}"
        )
        return command + " --reconfig" if self.reconfig else command


@dataclass
class SimulationReport:
    seed: int
    node_count: int
    byzantine: dict[int, list[str]]
    validator_count: int  # in force at the highest committed seq
    transactions: int
    commits_checked: int
    votes_checked: int
    highest_seq: int
    highest_view: int
    crashes: int
    liveness_ticks_used: int
    network: dict[str, int]
    rejections: dict[str, int] = field(default_factory=dict)


def _key_seed(index: int) -> bytes:
    # Fixed keys per node index, so signatures recur across seeds and the verifier cache helps.
    return hashlib.sha256(f"xinlian-sim-node-{index}".encode()).digest()


class Cluster:
    """The nodes, network, client and checkers of one seeded run."""

    def __init__(self, config: SimulationConfig) -> None:
        # The order of the rng calls below fixes what each seed means; changing it changes every run.
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = 0
        self.plan: FaultPlan = plan_faults(self.rng, config.node_count, config.faults)
        self.network = SimNetwork(self.rng, self.plan.network)
        self.workload = Workload(self.rng, config.seed, submit_probability=self.rng.uniform(0.05, 0.3))

        node_total = config.node_count + (1 if config.reconfig else 0)
        signers = [Ed25519Signer(_key_seed(index)) for index in range(node_total)]
        self.node_ids = tuple(signer.public_key for signer in signers)
        self.genesis_validators = self.node_ids[: config.node_count]
        # Expected validator schedule as (effective seq, validators), from the first node that executed a change.
        self.schedule: list[tuple[int, tuple[str, ...]]] = [(0, self.genesis_validators)]
        self.join_tick = self.rng.randint(1, max(1, config.safety_ticks // 3)) if config.reconfig else None
        self.replica_config = self._build_replica_config()
        self.nodes = [SimNode(index, signer, self._make_replica) for index, signer in enumerate(signers)]
        self.node_by_id = {node.node_id: node for node in self.nodes}
        self.byzantine = self._build_byzantine()

        self.checker = SafetyChecker(self.workload.submitted, sha256_hex, self._verify_block)
        self._restart_tick: dict[str, int] = {}
        self._heal_tick: int | None = None
        self._decoded: dict[bytes, Any] = {}
        self.crashes = 0
        self.rejections: dict[str, int] = {}

    def _build_replica_config(self) -> ReplicaConfig:
        config = self.config
        return ReplicaConfig(
            chain_id=CHAIN_ID,
            validators=self.genesis_validators,
            checkpoint_interval=config.checkpoint_interval,
            window_size=2 * config.checkpoint_interval,
            view_timeout_ticks=config.view_timeout_ticks,
            view_timeout_max_ticks=config.view_timeout_max_ticks,
            reconfig_delay_blocks=4 * config.checkpoint_interval,
            validate_payload=self.workload.validate_payload,
        )

    def _build_byzantine(self) -> dict[str, ByzantineBehaviour]:
        outsider = Ed25519Signer(hashlib.sha256(b"xinlian-sim-outsider").digest())
        byzantine = {}
        for index, behaviours in sorted(self.plan.byzantine.items()):
            node = self.nodes[index]
            peers = [peer for peer in self.node_ids if peer != node.node_id]
            byzantine[node.node_id] = ByzantineBehaviour(self.rng, behaviours, node.signer, outsider, CHAIN_ID, peers)
        return byzantine

    # Construction and checks

    def _make_replica(self, signer: Any, store: DurableStore | None) -> Replica:
        restored = None
        if store is not None:
            restored = RestoredState(store.copy_records(), store.last_executed_seq, store.last_state_digest)
        return Replica(self.replica_config, signer, SHARED_VERIFIER, restored)

    def _verify_block(self, block: CertifiedBlock) -> str | None:
        validators = self.validators_at(block.seq)
        return verify_certified_block(block, validators, quorum_size(len(validators)), SHARED_VERIFIER, CHAIN_ID)

    def validators_at(self, seq: int) -> tuple[str, ...]:
        in_force = self.genesis_validators
        for effective_seq, validators in self.schedule:
            if effective_seq <= seq:
                in_force = validators
        return in_force

    def is_correct(self, node: SimNode) -> bool:
        return node.node_id not in self.byzantine

    # Output handling

    def handle_output(self, node: SimNode, output: Any) -> None:
        """Perform one Output in the documented order: persist, send, execute, then the rest."""
        node.store.apply(output.persist)
        for recipient, message in output.messages:
            self._send_message(node, recipient, message)
        for sender, reason in output.rejections:
            self.rejections[reason] = self.rejections.get(reason, 0) + 1
            sender_node = self.node_by_id.get(sender)
            if sender_node is None or not self.is_correct(sender_node):
                continue
            if self.is_correct(node) and self._knows_schedule(node):
                self.checker.check_rejection(node.node_id, sender, reason, self.now)
        # Blocks go through a per-node queue: block_executed may release later blocks
        # while earlier ones of this output still wait, and execution must stay in seq order.
        node.execution_queue.extend(output.committed)
        if not node.executing:
            node.executing = True
            try:
                while node.execution_queue:
                    self._execute(node, node.execution_queue.popleft())
            finally:
                node.executing = False
        if output.fetch is not None:
            peers = list(output.fetch.hint_peers) or [p for p in self.node_ids if p != node.node_id]
            for peer in peers:
                self.network.send(self.now, node.node_id, peer, CatchUpRequest(output.fetch.from_seq, output.fetch.to_seq))

    def _execute(self, node: SimNode, block: CertifiedBlock) -> None:
        if node.replica is None:
            return
        correct = self.is_correct(node)
        if correct:
            self.checker.check_commit(node.node_id, block, node.store.last_executed_seq, self.now)
        state_digest, first_runs = node.execute(block)
        if correct:
            self.checker.check_state_digest(node.node_id, block.seq, state_digest)
        validator_update = None
        if any(transaction_id.startswith(JOIN_PREFIX + "-") for transaction_id in first_runs):
            validator_update = (block.seq + self.replica_config.reconfig_delay_blocks, self.node_ids)
            if correct:
                self._record_schedule(node, *validator_update)
        self.handle_output(node, node.replica.block_executed(block.seq, state_digest, validator_update))

    def _knows_schedule(self, node: SimNode) -> bool:
        """Whether `node` executed every validator change decided so far.

        A node that has not cannot check messages signed under the new set and
        rejects them correctly.
        """
        delay = self.replica_config.reconfig_delay_blocks
        return all(node.store.last_executed_seq >= effective_seq - delay for effective_seq, _ in self.schedule[1:])

    def _record_schedule(self, node: SimNode, effective_seq: int, validators: tuple[str, ...]) -> None:
        if (effective_seq, validators) in self.schedule:
            return
        if len(self.schedule) > 1:
            raise SimulationFailure(
                f"{node.node_id[:12]} scheduled validators from seq {effective_seq}, "
                f"but another node scheduled them from seq {self.schedule[1][0]}"
            )
        self.schedule.append((effective_seq, validators))

    def _send_message(self, node: SimNode, recipient: str | None, message: Any) -> None:
        if self.is_correct(node):
            self.checker.check_emitted(node.node_id, message, self.now)
            # Broadcasts reach observers too, so a node that joins later has followed the chain.
            recipients = [recipient] if recipient is not None else [p for p in self.node_ids if p != node.node_id]
            pairs = [(peer, message) for peer in recipients]
        else:
            pairs = self.byzantine[node.node_id].rewrite(recipient, message)
        wire_by_message: dict[int, bytes] = {}
        for peer, outgoing in pairs:
            wire = wire_by_message.get(id(outgoing))
            if wire is None:
                wire = canonical_bytes(outgoing.to_wire())
                wire_by_message[id(outgoing)] = wire
            self.network.send(self.now, node.node_id, peer, wire)

    # Input delivery

    def _decode(self, wire: bytes) -> Any:
        message = self._decoded.get(wire)
        if message is None:
            message = decode_message(json.loads(wire))
            if len(self._decoded) >= DECODE_CACHE_ENTRIES_MAX:
                self._decoded.clear()
            self._decoded[wire] = message
        return message

    def _deliver(self, source: str, destination: str, payload: Any) -> None:
        node = self.node_by_id[destination]
        if node.replica is None:
            return
        if isinstance(payload, CatchUpRequest):
            self._serve_catch_up(node, source, payload)
        elif isinstance(payload, CatchUpResponse):
            self._receive_catch_up(node, source, payload)
        else:
            try:
                message = self._decode(payload)
            except ConsensusDecodeError as exc:
                raise SimulationFailure(f"{destination[:12]} could not decode a message from {source[:12]}: {exc}")
            if node.node_id in self.byzantine:
                self.byzantine[node.node_id].observe_received(message)
            self.handle_output(node, node.replica.step(message))

    def _serve_catch_up(self, node: SimNode, requester: str, request: CatchUpRequest) -> None:
        blocks = node.store.blocks_from(request.from_seq, request.to_seq, CATCH_UP_BLOCKS_MAX)
        if node.node_id in self.byzantine:
            blocks = self.byzantine[node.node_id].rewrite_fetched(blocks)
        if blocks:
            wire = tuple(canonical_bytes(block.to_wire()) for block in blocks)
            self.network.send(self.now, node.node_id, requester, CatchUpResponse(wire))

    def _receive_catch_up(self, node: SimNode, source: str, response: CatchUpResponse) -> None:
        blocks = [CertifiedBlock.from_wire(json.loads(wire)) for wire in response.blocks]
        fresh = [block for block in blocks if block.seq > node.store.last_executed_seq]
        if not fresh:
            return
        executed_before = node.store.last_executed_seq
        self.handle_output(node, node.replica.deliver_fetched(fresh))
        # Ask the same peer for more only when these blocks were used, or the two would loop.
        progressed = node.store.last_executed_seq > executed_before
        if len(blocks) == CATCH_UP_BLOCKS_MAX and progressed and node.replica is not None:
            next_seq = node.store.last_executed_seq + 1
            self.network.send(self.now, node.node_id, source, CatchUpRequest(next_seq, next_seq + 10**6))

    def request_catch_up(self, node: SimNode) -> None:
        from_seq = node.store.last_executed_seq + 1
        for peer in self.node_ids:
            if peer != node.node_id:
                self.network.send(self.now, node.node_id, peer, CatchUpRequest(from_seq, from_seq + 10**6))

    # Faults

    def _inject_faults(self) -> None:
        plan = self.plan
        if self._heal_tick is not None and self.now >= self._heal_tick:
            self.network.heal()
            self._heal_tick = None
        elif self._heal_tick is None and self.rng.random() < plan.partition_probability:
            self._start_partition()
        for node in self.nodes:
            restart_tick = self._restart_tick.get(node.node_id)
            if restart_tick is not None and self.now >= restart_tick:
                self.restart(node)
        if self.rng.random() < plan.crash_probability:
            candidates = [node for node in self.nodes if node.is_up and self.is_correct(node)]
            if candidates:
                node = self.rng.choice(candidates)
                self.crash(node)
                self._restart_tick[node.node_id] = self.now + self.rng.randint(1, plan.down_ticks_max)

    def _start_partition(self) -> None:
        ids = list(self.node_ids)
        self.rng.shuffle(ids)
        if self.rng.random() < 0.5:
            self.network.isolate(ids[0])
        else:
            cut = self.rng.randint(1, len(ids) - 1)
            self.network.partition([ids[:cut], ids[cut:]])
        self._heal_tick = self.now + self.rng.randint(5, self.plan.partition_ticks_max)
        logger.debug("tick %d: partition until tick %d", self.now, self._heal_tick)

    def crash(self, node: SimNode) -> None:
        # The node crashes before this tick's work, so the messages of its last tick may
        # have been persisted but not yet sent when the process died.
        if self.rng.random() < 0.5:
            self.network.drop_sent_by(node.node_id, self.now - 1)
        self.network.drop_to(node.node_id)
        node.crash(self.now)
        self.crashes += 1
        logger.debug("tick %d: node %d crashed", self.now, node.index)

    def restart(self, node: SimNode) -> None:
        self._restart_tick.pop(node.node_id, None)
        node.restart()
        logger.debug("tick %d: node %d restarted in view %d", self.now, node.index, node.replica.view)
        if self.is_correct(node):
            self.checker.check_view(node.node_id, node.replica.view, self.now)
        # The client retries every transaction it has not seen committed everywhere.
        for transaction_id in self.workload.submitted:
            node.receive_transaction(transaction_id)
        self.request_catch_up(node)

    # The clock

    def run_tick(self, faults_on: bool) -> None:
        self.now += 1
        if faults_on:
            self._inject_faults()
            submitted = [self.workload.maybe_submit(self.now)]
            if self.now == self.join_tick:
                submitted.append(self.workload.submit(self.now, prefix=JOIN_PREFIX))
            for transaction_id in submitted:
                if transaction_id is not None:
                    self.submit_to_nodes(transaction_id)
        for envelope in self.network.pop_due(self.now):
            self._deliver(envelope.source, envelope.destination, envelope.payload)
        for node in self.nodes:
            if node.replica is not None:
                self.handle_output(node, node.replica.tick(node.has_pending_work))
            if node.replica is not None and self.is_correct(node):
                self.checker.check_view(node.node_id, node.replica.view, self.now)
        for node in self.nodes:
            self._propose(node)
            self._inject_byzantine(node)
            if node.replica is not None and node.has_pending_work and self.now % CATCH_UP_INTERVAL_TICKS == node.index:
                self.request_catch_up(node)

    def submit_to_nodes(self, transaction_id: str) -> None:
        for node in self.nodes:
            if node.is_up:
                node.receive_transaction(transaction_id)

    def _propose(self, node: SimNode) -> None:
        for _ in range(PROPOSALS_PER_TICK_MAX):
            replica = node.replica
            if replica is None or not replica.is_primary or not replica.can_propose():
                return
            payload = node.next_payload()
            if payload is None:
                return
            self.handle_output(node, replica.propose(payload))

    def _inject_byzantine(self, node: SimNode) -> None:
        behaviour = self.byzantine.get(node.node_id)
        if behaviour is None or node.replica is None:
            return
        for peer, message in behaviour.inject(node.replica.view, node.store.last_executed_seq):
            self.network.send(self.now, node.node_id, peer, canonical_bytes(message.to_wire()))

    # Phases

    def run_safety_phase(self) -> None:
        for _ in range(self.config.safety_ticks):
            self.run_tick(faults_on=True)

    def start_liveness_phase(self) -> None:
        """Heal the network, restart every crashed replica and silence every Byzantine one."""
        self.network.heal()
        self._heal_tick = None
        self.network.set_config(HEALTHY_NETWORK)
        for behaviour in self.byzantine.values():
            behaviour.silent = True
        for node in self.nodes:
            if not node.is_up:
                self.restart(node)

    def run_liveness_phase(self) -> int:
        """Run until every submitted transaction is executed on every correct replica; return the ticks used."""
        self.start_liveness_phase()
        start = self.now
        while self.now - start < self.config.liveness_ticks:
            self.run_tick(faults_on=False)
            if (self.now - start) % LIVENESS_CHECK_INTERVAL_TICKS == 0 and not self.missing_transactions():
                return self.now - start
        raise SimulationFailure(self._liveness_failure_message())

    def missing_transactions(self) -> dict[str, int]:
        """Count of submitted transactions not yet executed, per correct node id."""
        missing = {}
        for node in self.nodes:
            if self.is_correct(node):
                count = sum(1 for tx in self.workload.submitted if tx not in node.executed_transactions)
                if count:
                    missing[node.node_id] = count
        return missing

    def _liveness_failure_message(self) -> str:
        lines = [
            f"liveness: {len(self.workload.submitted)} transactions not all executed on every correct replica "
            f"within {self.config.liveness_ticks} ticks after healing"
        ]
        missing = self.missing_transactions()
        for node in self.nodes:
            replica = node.replica
            role = "byzantine" if not self.is_correct(node) else "correct"
            lines.append(
                f"  node {node.index} {node.node_id[:12]} ({role}): view {replica.view} "
                f"in_view_change {replica.in_view_change} committed {replica.last_committed_seq} "
                f"executed {node.store.last_executed_seq} low_watermark {replica.low_watermark} "
                f"mempool {len(node.mempool)} missing {missing.get(node.node_id, 0)}"
            )
        return "\n".join(lines)

    def checker_highest_seq(self) -> int:
        return max(self.checker.first_commit, default=0)

    def report(self, liveness_ticks_used: int) -> SimulationReport:
        return SimulationReport(
            seed=self.config.seed,
            node_count=self.config.node_count,
            byzantine={index: sorted(b) for index, b in sorted(self.plan.byzantine.items())},
            validator_count=len(self.validators_at(self.checker_highest_seq())),
            transactions=len(self.workload.submitted),
            commits_checked=self.checker.commits_checked,
            votes_checked=self.checker.votes_checked,
            highest_seq=max(node.store.last_executed_seq for node in self.nodes),
            highest_view=max((node.replica.view for node in self.nodes if node.replica is not None), default=-1),
            crashes=self.crashes,
            liveness_ticks_used=liveness_ticks_used,
            network=dict(self.network.counters),
            rejections=dict(sorted(self.rejections.items())),
        )


def run_simulation(config: SimulationConfig) -> SimulationReport:
    """Run one seed; raise SimulationFailure with the seed and the reproduce command on any violation."""
    cluster = Cluster(config)
    try:
        cluster.run_safety_phase()
        liveness_ticks_used = cluster.run_liveness_phase() if config.liveness_ticks > 0 else 0
    except SimulationFailure as failure:
        failure.seed = config.seed
        failure.reproduce_command = cluster.config.reproduce_command()
        raise
    except Exception as exc:
        failure = SimulationFailure(
            f"unexpected {type(exc).__name__} at tick {cluster.now}: {exc}\n{traceback.format_exc()}"
        )
        failure.seed = config.seed
        failure.reproduce_command = config.reproduce_command()
        raise failure from exc
    return cluster.report(liveness_ticks_used)
