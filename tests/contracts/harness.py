"""Test harness: a genesis with one member of each role, keys derived from names, and block helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from typing import Any

from node.contracts import XinlianExecutor
from node.execution import BlockContext, Receipt, Transaction
from tests.contracts.memstate import MemoryState

OFFSET_MINUTES = 480
_counter = itertools.count()


def key_of(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def ms_at(date_text: str, hour: int = 12, minute: int = 0, offset_minutes: int = OFFSET_MINUTES) -> int:
    """Unix ms of a local wall-clock time in the consortium offset."""
    day = dt.date.fromisoformat(date_text)
    epoch_days = day.toordinal() - dt.date(1970, 1, 1).toordinal()
    return ((epoch_days * 24 + hour) * 60 + minute - offset_minutes) * 60_000


def member(member_id: str, role: str, licensed: bool = False) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "name": member_id,
        "role": role,
        "node_key": key_of(f"node:{member_id}"),
        "client_keys": [key_of(f"client:{member_id}")],
        "licensed": licensed,
        "p2p_url": "ws://127.0.0.1:1",
        "api_url": "http://127.0.0.1:2",
    }


def make_genesis(profile: str = "CN", params: dict[str, Any] | None = None, extra_members: list[dict] | None = None) -> dict[str, Any]:
    members = [
        member("bank-a", "bank"),
        member("bank-b", "bank"),
        member("agency-x", "credit_agency", licensed=True),
        member("agency-u", "credit_agency", licensed=False),
        member("collector-1", "collector"),
        member("collector-2", "collector"),
        member("regulator", "regulator"),
    ] + (extra_members or [])
    return {
        "chain_id": "xinlian-test",
        "genesis_time_ms": ms_at("2024-01-01", 0),
        "utc_offset_minutes": OFFSET_MINUTES,
        "profile": profile,
        "params": params or {},
        "members": members,
        "validators": ["bank-a", "agency-x", "collector-1", "regulator"],
        "limits": {"tx_size_max_bytes": 65536},
    }


class Chain:
    """Drives the executor like the node does: one block per `block()` call."""

    def __init__(self, genesis: dict[str, Any] | None = None) -> None:
        self.state = MemoryState()
        self.executor = XinlianExecutor()
        self.executor.init_genesis(self.state, genesis or make_genesis())
        self.height = 0
        self.block_events: list = []  # from begin_block, receipts and end_block, in order
        self.validator_updates: list = []

    def context(self, time_ms: int) -> BlockContext:
        return BlockContext("xinlian-test", self.height, time_ms, "bank-a", OFFSET_MINUTES)

    def block(self, time_ms: int, txs: list[Transaction] = ()) -> list[Receipt]:
        self.height += 1
        ctx = self.context(time_ms)
        self.block_events.extend(self.executor.begin_block(self.state, ctx))
        receipts = [self.executor.deliver_tx(self.state, ctx, tx) for tx in txs]
        for receipt in receipts:
            self.block_events.extend(receipt.events)
        result = self.executor.end_block(self.state, ctx)
        self.block_events.extend(result.events)
        if result.validator_update is not None:
            self.validator_updates.append(result.validator_update)
        return receipts

    def run(self, time_ms: int, signer: str, tx_type: str, payload: dict[str, Any]) -> Receipt:
        """Deliver one transaction in its own block at `time_ms`."""
        return self.block(time_ms, [tx(signer, tx_type, payload)])[0]

    def ok(self, time_ms: int, signer: str, tx_type: str, payload: dict[str, Any]) -> Receipt:
        receipt = self.run(time_ms, signer, tx_type, payload)
        assert receipt.ok, (tx_type, receipt.error_code, receipt.error_details)
        return receipt

    def error(self, time_ms: int, signer: str, tx_type: str, payload: dict[str, Any]) -> str | None:
        receipt = self.run(time_ms, signer, tx_type, payload)
        return receipt.error_code

    def events_of(self, event_type: str) -> list:
        return [event for event in self.block_events if event.type == event_type]


def tx(signer: str, tx_type: str, payload: dict[str, Any]) -> Transaction:
    """A transaction signed by `signer`: a member id (its client key) or a raw key prefixed with "key:"."""
    sender = signer[4:] if signer.startswith("key:") else key_of(f"client:{signer}")
    number = next(_counter)
    return Transaction(
        tx_id=hashlib.sha256(f"{number}".encode()).hexdigest(),
        type=tx_type,
        sender=sender,
        nonce=str(number),
        expires_at=2**53,
        payload=payload,
    )


SUBJECT = "5a" * 32
SUBJECT_KEY = "6b" * 32
GUARANTOR = "7c" * 32


def setup_subject(chain: Chain, time_ms: int, subject_id: str = SUBJECT, subject_key: str | None = SUBJECT_KEY, creditor: str = "bank-a") -> None:
    payload = {"subject_id": subject_id, "commitment": "01" * 32}
    if subject_key:
        payload["subject_key"] = subject_key
    chain.ok(time_ms, creditor, "subject.register", payload)
    chain.ok(time_ms, creditor, "consent.grant", {
        "consent_id": f"c-{subject_id[:6]}-{creditor}", "subject_id": subject_id, "grantee": creditor,
        "purpose": "data_sharing", "expires_on": "2099-12-31", "evidence": "02" * 32,
    })


def monthly_schedule(start: str, months: int, principal: int, interest: int) -> list[dict[str, Any]]:
    from node.contracts.dates import add_months

    day = int(start[8:])
    base = principal // months
    schedule = []
    for number in range(1, months + 1):
        part = principal - base * (months - 1) if number == months else base
        schedule.append({"number": number, "due_date": add_months(start, number, day), "principal": part, "interest": interest})
    return schedule


def register_loan(chain: Chain, time_ms: int, loan_id: str = "L1", start: str = "2024-01-31", months: int = 3,
                  principal: int = 300_000, interest: int = 1_000, creditor: str = "bank-a", subject_id: str = SUBJECT, **extra) -> None:
    payload = {
        "loan_id": loan_id, "subject_id": subject_id, "principal": principal, "currency": "CNY",
        "annual_rate_bp": 400, "start_date": start, "schedule": monthly_schedule(start, months, principal, interest),
    }
    payload.update(extra)
    chain.ok(time_ms, creditor, "loan.register", payload)
