"""A one-validator network in this process on an accelerated chain clock, with an overdue-loan scenario.

Members: bank-1 (the only validator), collector-2 and regulator-3. The bank
registers a subject, a loan due tomorrow and a mandate for collector-2 that
opens a case at 1 day past due. No transaction is needed after that for the
case to open: the primary's empty blocks run the contracts' time step.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from node.client import XinlianClient
from node.config import load_config
from node.contracts.dates import local_date
from node.daemon import Node
from node.events import CommittedEvent, Subscription
from node.keys import load_key_file
from node.localnet import InitOptions, init_network, parse_start_date, set_shared_clock_epoch

BANK = "bank-1"
COLLECTOR = "collector-2"
REGULATOR = "regulator-3"
START_DATE = "2024-03-04"
PRINCIPAL_FEN = 100_000
INTEREST_FEN = 500
COMMISSION_RATE_BP = 1_500
WAIT_S = 20.0


def start_options(speed: int, settings: dict[str, Any]) -> InitOptions:
    base = {"tick_ms": 10, "block_interval_ms": 10, "view_timeout_ticks": 50}
    return InitOptions(
        nodes=3,
        roles=("bank", "collector", "regulator"),
        accelerated=True,
        speed=speed,
        start_ms=parse_start_date(START_DATE),
        node_settings={**base, **settings},
        validator_count=1,
    )


async def start_accelerated_node(directory: Path, speed: int, settings: dict[str, Any]) -> Node:
    """Write the network, set the shared clock epoch to now (chain time starts at genesis), and start bank-1."""
    init_network(directory, start_options(speed, settings))
    set_shared_clock_epoch(directory)
    node = Node(load_config(directory / "nodes" / BANK / "config.json"))
    await node.start()
    return node


def client_for(node: Node, directory: Path, member_id: str) -> XinlianClient:
    """A client of `member_id` that sets `expires_at` from the node's chain clock."""
    seed = load_key_file(directory / "clients" / f"{member_id}.json").seed
    return XinlianClient(
        f"http://127.0.0.1:{node.config.api_port}",
        seed,
        chain_id=node.genesis.chain_id,
        language="en",
        timeout_seconds=WAIT_S,
        clock_ms=node.clock.now_ms,
        expiry_window_ms=node.genesis.limits.tx_expiry_window_ms,
    )


def chain_date(node: Node, time_ms: int) -> datetime.date:
    return datetime.date.fromisoformat(local_date(time_ms, node.genesis.utc_offset_minutes))


@dataclass(frozen=True)
class OverdueLoan:
    loan_id: str
    mandate_id: str
    due_date: datetime.date
    open_date: datetime.date  # the day after the due date: DPD 1, when the case must open
    last_tx_height: int  # height of the last setup transaction


async def register_overdue_loan(node: Node, bank: XinlianClient) -> OverdueLoan:
    """Submit the scenario's transactions; the loan falls due tomorrow (local chain date)."""
    today = chain_date(node, node.clock.now_ms())
    due_date = today + datetime.timedelta(days=1)
    year_later = (today + datetime.timedelta(days=365)).isoformat()
    subject_id = os.urandom(32).hex()
    loan_id, mandate_id = "loan-idle-1", "mandate-idle-1"
    payloads: list[tuple[str, dict[str, Any]]] = [
        ("subject.register", {"subject_id": subject_id, "commitment": os.urandom(32).hex()}),
        (
            "consent.grant",
            {
                "consent_id": "consent-idle-1",
                "subject_id": subject_id,
                "grantee": BANK,
                "purpose": "data_sharing",
                "expires_on": year_later,
                "evidence": os.urandom(32).hex(),
            },
        ),
        (
            "loan.register",
            {
                "loan_id": loan_id,
                "subject_id": subject_id,
                "principal": PRINCIPAL_FEN,
                "currency": "CNY",
                "annual_rate_bp": 600,
                "start_date": today.isoformat(),
                "schedule": [{"number": 1, "due_date": due_date.isoformat(), "principal": PRINCIPAL_FEN, "interest": INTEREST_FEN}],
            },
        ),
        (
            "mandate.grant",
            {
                "mandate_id": mandate_id,
                "agencies": [COLLECTOR],
                "start_dpd": 1,
                "valid_from": today.isoformat(),
                "valid_until": year_later,
                "commission_rate_bp": COMMISSION_RATE_BP,
            },
        ),
        ("mandate.evaluate", {"mandate_id": mandate_id, "agency": COLLECTOR, "evaluated_on": today.isoformat(), "rating": 4}),
    ]
    height = 0
    for tx_type, payload in payloads:
        record = await bank.submit_and_wait(tx_type, payload)
        assert record["receipt"]["ok"], (tx_type, record["receipt"])
        height = record["height"]
    return OverdueLoan(loan_id, mandate_id, due_date, due_date + datetime.timedelta(days=1), height)


async def next_event(subscription: Subscription, matches: Callable[[CommittedEvent], bool], timeout_s: float = WAIT_S) -> CommittedEvent:
    async def find() -> CommittedEvent:
        while True:
            event = await subscription.get()
            if matches(event):
                return event

    return await asyncio.wait_for(find(), timeout_s)


async def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)
