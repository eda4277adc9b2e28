"""The replica's validator schedule follows validator changes committed on chain, also across a restart."""

from __future__ import annotations

from pathlib import Path


from consensus.records import VALIDATORS_KEY
from node.client import XinlianClient
from node.config import NodeConfig
from node.daemon import Node
from node.keys import load_key_file


def member_client(directory: Path, node: Node, member_id: str) -> XinlianClient:
    seed = load_key_file(directory / "clients" / f"{member_id}.json").seed
    return XinlianClient(f"http://127.0.0.1:{node.config.api_port}", seed, chain_id="xinlian-local", language="en", timeout_seconds=10)


async def approve_second_validator(directory: Path, node: Node) -> int:
    """Commit a governance decision adding regulator-2 to the validators, and return the height where it takes effect."""
    action = {"kind": "set_validators", "validators": ["bank-1", "regulator-2"]}
    async with member_client(directory, node, "bank-1") as bank, member_client(directory, node, "regulator-2") as regulator:
        proposed = await bank.submit_and_wait("governance.propose", {"proposal_id": "p-validators", "action": action})
        voted = await regulator.submit_and_wait("governance.vote", {"proposal_id": "p-validators", "approve": True})
    assert proposed["receipt"]["ok"], proposed["receipt"]
    assert voted["receipt"]["ok"], voted["receipt"]
    pending = node.chain.state().get("validators_pending")
    assert pending is not None, "the proposal was not approved"
    return pending["effective_height"]


async def test_schedule_follows_chain_and_restart(network: tuple[Path, NodeConfig]) -> None:
    directory, config = network
    node = Node(config)
    await node.start()
    try:
        effective = await approve_second_validator(directory, node)
        before_change = node.replica.validators_at(effective - 1)
        after_change = node.replica.validators_at(effective)
        both_keys = tuple(node.chain.state().get("validators_pending")["node_keys"])
    finally:
        await node.stop()

    restarted = Node(config)
    await restarted.start()
    try:
        after_restart = restarted.replica.validators_at(effective)
    finally:
        await restarted.stop()

    assert before_change == (node.key.public_key,)
    assert after_change == both_keys
    assert len(both_keys) == 2
    assert after_restart == both_keys


async def test_schedule_rebuilt_from_chain_state(network: tuple[Path, NodeConfig]) -> None:
    directory, config = network
    node = Node(config)
    await node.start()
    try:
        effective = await approve_second_validator(directory, node)
        both_keys = tuple(node.chain.state().get("validators_pending")["node_keys"])
        # Drop the replica's record, as if the change had come in by catch-up, which bypasses the replica.
        node.chain.save_consensus([(VALIDATORS_KEY, None)])
    finally:
        await node.stop()

    restarted = Node(config)
    await restarted.start()
    try:
        rebuilt = restarted.replica.validators_at(effective)
        before_change = restarted.replica.validators_at(effective - 1)
        regulator_allowed = restarted.peer_allowed(both_keys[1])
    finally:
        await restarted.stop()

    assert rebuilt == both_keys
    assert before_change == (restarted.key.public_key,)
    assert regulator_allowed
