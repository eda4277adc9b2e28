"""Shared builders for the node data-layer tests: keys, genesis, signed transactions."""

from __future__ import annotations

from typing import Any

from node.genesis import Genesis, parse_genesis
from node.tx import TxVerifier, VerifiedTransaction, public_key_hex, sign_transaction

CHAIN_ID = "xinlian-test"
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01 08:00 +08:00
HOUR_MS = 3_600_000


def seed_of(number: int) -> bytes:
    return bytes([number % 256]) * 32


def make_genesis(member_count: int = 4) -> Genesis:
    roles = ["bank", "credit_agency", "collector", "regulator"]
    members = []
    for index in range(member_count):
        members.append(
            {
                "member_id": f"m{index}",
                "name": f"Member {index}",
                "role": roles[index % len(roles)],
                "node_key": public_key_hex(seed_of(100 + index)),
                "client_keys": [public_key_hex(seed_of(index + 1))],
                "licensed": roles[index % len(roles)] == "credit_agency",
            }
        )
    return parse_genesis(
        {
            "chain_id": CHAIN_ID,
            "genesis_time_ms": GENESIS_TIME_MS,
            "members": members,
            "validators": [member["member_id"] for member in members],
        }
    )


def make_envelope(
    seed_number: int = 1,
    nonce: str = "1",
    expires_at: int = GENESIS_TIME_MS + HOUR_MS,
    tx_type: str = "test.put",
    payload: dict[str, Any] | None = None,
    chain_id: str = CHAIN_ID,
) -> dict[str, Any]:
    body = {
        "chain_id": chain_id,
        "type": tx_type,
        "nonce": nonce,
        "expires_at": expires_at,
        "payload": payload if payload is not None else {"key": "k", "value": 1},
    }
    return sign_transaction(seed_of(seed_number), body)


def make_verified(verifier: TxVerifier | None = None, **kwargs: Any) -> VerifiedTransaction:
    verifier = verifier or TxVerifier(CHAIN_ID)
    return verifier.verify(make_envelope(**kwargs))
