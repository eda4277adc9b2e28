"""A small real chain state for the privacy tests: genesis members and transactions run through the contracts."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import nacl.signing

from node.contracts.dates import MS_PER_DAY
from node.contracts.executor import XinlianExecutor
from node.execution import BlockContext, Receipt, Transaction
from node.state import StateStore, WorkingState
from node.storage import MemoryStore

UTC_OFFSET_MINUTES = 480
# 2026-03-01 00:00 at +08:00
GENESIS_TIME_MS = 1_772_294_400_000
MEMBER_ROLES = {"bank-1": "bank", "agency-1": "credit_agency", "collector-1": "collector", "regulator-1": "regulator", "bank-2": "bank"}


def time_of(date: str) -> int:
    """Unix ms of 12:00 local time on `date` (YYYY-MM-DD)."""
    import datetime

    days = (datetime.date.fromisoformat(date) - datetime.date(1970, 1, 1)).days
    return days * MS_PER_DAY - UTC_OFFSET_MINUTES * 60_000 + 12 * 3_600_000


@dataclass
class Chain:
    state: WorkingState
    executor: XinlianExecutor
    client_keys: dict[str, nacl.signing.SigningKey]
    subject_keys: dict[str, nacl.signing.SigningKey] = field(default_factory=dict)
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    def deliver(self, sender: nacl.signing.SigningKey, tx_type: str, payload: dict[str, Any], date: str) -> Receipt:
        number = next(self._counter)
        time_ms = time_of(date)
        tx = Transaction(
            tx_id=f"{number:064x}",
            type=tx_type,
            sender=sender.verify_key.encode().hex(),
            nonce=f"n{number}",
            expires_at=time_ms + 60_000,
            payload=payload,
        )
        ctx = BlockContext(chain_id="xinlian-test", height=number, time_ms=time_ms, proposer="bank-1", utc_offset_minutes=UTC_OFFSET_MINUTES)
        receipt = self.executor.deliver_tx(self.state, ctx, tx)
        assert receipt.ok, f"{tx_type} rejected: {receipt.error_code} {receipt.error_details}"
        return receipt

    def begin_block(self, date: str) -> list:
        """Run the time-driven step of a block at noon on `date` (overdue detection, case opening)."""
        number = next(self._counter)
        ctx = BlockContext(chain_id="xinlian-test", height=number, time_ms=time_of(date), proposer="bank-1", utc_offset_minutes=UTC_OFFSET_MINUTES)
        return self.executor.begin_block(self.state, ctx)

    def member(self, member_id: str, tx_type: str, payload: dict[str, Any], date: str) -> Receipt:
        return self.deliver(self.client_keys[member_id], tx_type, payload, date)

    def register_subject(self, subject_id: str, date: str) -> nacl.signing.SigningKey:
        subject_key = nacl.signing.SigningKey.generate()
        self.subject_keys[subject_id] = subject_key
        payload = {"subject_id": subject_id, "commitment": "00" * 32, "subject_key": subject_key.verify_key.encode().hex()}
        self.member("bank-1", "subject.register", payload, date)
        return subject_key

    def grant(self, consent_id: str, subject_id: str, grantee: str, purpose: str, expires_on: str, date: str) -> None:
        payload = {"consent_id": consent_id, "subject_id": subject_id, "grantee": grantee, "purpose": purpose, "expires_on": expires_on}
        self.deliver(self.subject_keys[subject_id], "consent.grant", payload, date)

    def revoke(self, consent_id: str, subject_id: str, date: str) -> None:
        self.deliver(self.subject_keys[subject_id], "consent.revoke", {"consent_id": consent_id, "subject_id": subject_id}, date)


def new_chain() -> Chain:
    client_keys = {member_id: nacl.signing.SigningKey.generate() for member_id in MEMBER_ROLES}
    members = [
        {
            "member_id": member_id,
            "role": role,
            "node_key": nacl.signing.SigningKey.generate().verify_key.encode().hex(),
            "client_keys": [client_keys[member_id].verify_key.encode().hex()],
            "licensed": True,
        }
        for member_id, role in MEMBER_ROLES.items()
    ]
    genesis = {
        "chain_id": "xinlian-test",
        "genesis_time_ms": GENESIS_TIME_MS,
        "utc_offset_minutes": UTC_OFFSET_MINUTES,
        "members": members,
        "validators": ["bank-1", "agency-1", "collector-1", "regulator-1"],
    }
    state = WorkingState(StateStore(MemoryStore()))
    executor = XinlianExecutor()
    executor.init_genesis(state, genesis)
    return Chain(state=state, executor=executor, client_keys=client_keys)
