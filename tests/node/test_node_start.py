"""One node (a one-validator network): erasures missed before a stop are applied on start, and a
transaction admitted through the API is never verified again when its block commits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node import block_commit
from node.client import XinlianClient
from node.config import NodeConfig
from node.daemon import Node
from node.keys import load_key_file


def bank_client(directory: Path, node: Node) -> XinlianClient:
    seed = load_key_file(directory / "clients" / "bank-1.json").seed
    return XinlianClient(f"http://127.0.0.1:{node.config.api_port}", seed, chain_id="xinlian-local", language="en", timeout_seconds=10)


async def test_missed_erasure_applied_on_start(network: tuple[Path, NodeConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    directory, config = network
    subject_id = os.urandom(32).hex()
    # The first run loses every erasure event, as a crash between the block commit and its application would.
    monkeypatch.setattr(block_commit, "apply_erasure_event", lambda event, store: "ignored")
    first = Node(config)
    await first.start()
    try:
        stored = first.privacy.store.put(subject_id, {"name": "李四", "phones": [], "address": "", "details": {}}, first.clock.now_ms())
        async with bank_client(directory, first) as bank:
            await bank.submit_and_wait("subject.register", {"subject_id": subject_id, "commitment": stored.commitment})
            erase = await bank.submit_and_wait("subject.erase", {"erasure_id": "e-start", "subject_id": subject_id, "mode": "erase", "reason": "subject_request"})
        state_before_restart = first.privacy.store.state(subject_id)
    finally:
        await first.stop()
    monkeypatch.undo()

    second = Node(config)
    await second.start()
    try:
        state_after_restart = second.privacy.store.state(subject_id)
        status = second.privacy.store.status(subject_id)
    finally:
        await second.stop()

    assert erase["receipt"]["ok"], erase["receipt"]
    assert state_before_restart == "active"
    assert state_after_restart == "erased"
    assert status["erasure_id"] == "e-start"


async def test_admitted_tx_not_verified_again(network: tuple[Path, NodeConfig]) -> None:
    directory, config = network
    node = Node(config)
    await node.start()
    try:
        async with bank_client(directory, node) as bank:
            envelope = bank.build_transaction("subject.register", {"subject_id": os.urandom(32).hex(), "commitment": os.urandom(32).hex()})
            checks_before = node.tx_verifier.signature_checks
            tx_id = await bank.submit(envelope)
            checks_after_admission = node.tx_verifier.signature_checks
            record = await bank.wait_for_receipt(tx_id)
        checks_after_commit = node.tx_verifier.signature_checks
    finally:
        await node.stop()

    assert record["receipt"]["ok"]
    assert checks_after_admission == checks_before + 1
    # check_proposal and Chain.commit found the signature in the cache.
    assert checks_after_commit == checks_after_admission
