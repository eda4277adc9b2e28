"""Rule decisions about a known sender are committed with ok: false; malformed input is rejected at admission."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node.client import XinlianApiError, XinlianClient
from node.config import NodeConfig
from node.daemon import Node
from node.keys import load_key_file
from tests.node.test_daemon import client_for, subject


def regulator_client(network: tuple[Path, NodeConfig], node: Node) -> XinlianClient:
    seed = load_key_file(network[0] / "clients" / "regulator-2.json").seed
    return XinlianClient(f"http://127.0.0.1:{node.config.api_port}", seed, chain_id="xinlian-local", language="en", timeout_seconds=10)


async def test_wrong_role_committed_not_ok(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with client_for(network, node) as bank:
        record = await bank.submit_and_wait("member.suspend", {"member_id": "regulator-2", "reason": "other"})

    assert record["status"] == "committed"
    assert record["receipt"]["ok"] is False
    assert record["receipt"]["error_code"] == "role_not_allowed"


async def test_suspended_sender_committed_not_ok(network: tuple[Path, NodeConfig], node: Node) -> None:
    async with regulator_client(network, node) as regulator, client_for(network, node) as bank:
        suspension = await regulator.submit_and_wait("member.suspend", {"member_id": "bank-1", "reason": "other"})
        record = await bank.submit_and_wait("subject.register", subject())
        members = {member["member_id"]: member for member in await bank.members()}

    assert suspension["receipt"]["ok"] is True
    assert members["bank-1"]["status"] == "suspended"
    assert record["receipt"]["ok"] is False
    assert record["receipt"]["error_code"] == "sender_suspended"


async def test_unknown_sender_rejected_at_admission(network: tuple[Path, NodeConfig], node: Node) -> None:
    stranger = XinlianClient(f"http://127.0.0.1:{node.config.api_port}", os.urandom(32), chain_id="xinlian-local", language="en")
    async with stranger:
        with pytest.raises(XinlianApiError) as rejected:
            await stranger.submit(stranger.build_transaction("subject.register", subject()))

    assert rejected.value.status == 422
    assert rejected.value.code == "unknown_sender"
    assert len(node.mempool) == 0
