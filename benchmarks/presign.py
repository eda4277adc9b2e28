"""Pre-signed load for the network benchmark, signed in a process pool so the event loop keeps running.

A unit is one subject's four transactions, in the order a bank sends them:
subject.register, consent.grant (data_sharing, with evidence), loan.register
(12-36 instalments) and repayment.record. The load generator submits a unit to
one node in one batch so their order holds.

Subject `index` is sent by bank key `index % len(seeds)`. Units depend only on
their arguments, so a chunk signed in a worker equals the same chunk signed
here, and two runs with different first subjects share no subject or nonce.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import nacl.signing

from common import REPO_ROOT  # noqa: F401  (puts the repository on sys.path)
from node.tx import sign_transaction
from workload import consent_grant_payload, loan_register_payload, repayment_payload, subject_register_payload

CHINA_UTC_OFFSET = dt.timezone(dt.timedelta(hours=8))
CHUNK_SUBJECTS = 2_000
EXPIRY_MS = 50 * 60 * 1000  # a presign call's transactions are all submitted within minutes of signing


@dataclass(frozen=True)
class SigningPlan:
    """Settings shared by every unit of one presign call: chain, sender keys, dates and expiry."""

    chain_id: str
    bank_seeds: tuple[bytes, ...]
    today: str  # local date in the consortium's UTC+8 offset
    expires_at: int  # Unix ms


def plan_for(chain_id: str, bank_seeds: list[bytes]) -> SigningPlan:
    today = dt.datetime.now(CHINA_UTC_OFFSET).date().isoformat()
    return SigningPlan(chain_id, tuple(bank_seeds), today, int(time.time() * 1000) + EXPIRY_MS)


def sign_units(plan: SigningPlan, first_subject: int, subject_count: int) -> list[list[dict[str, Any]]]:
    """Sign the units of subjects first_subject .. first_subject + subject_count - 1."""
    today = dt.date.fromisoformat(plan.today)
    start_date = (today - dt.timedelta(days=10)).isoformat()
    consent_expiry = (today + dt.timedelta(days=365)).isoformat()
    rng = random.Random(first_subject)
    keys = [nacl.signing.SigningKey(seed) for seed in plan.bank_seeds]
    units = []
    for index in range(first_subject, first_subject + subject_count):
        bank = index % len(plan.bank_seeds)
        loan = loan_register_payload(index, index, start_date, rng)
        bodies = [
            ("subject.register", subject_register_payload(index)),
            ("consent.grant", consent_grant_payload(index, f"bank-{bank + 1}", consent_expiry)),
            ("loan.register", loan),
            ("repayment.record", repayment_payload(index, 1, loan["schedule"][0]["interest"] + 100, plan.today)),
        ]
        unit = []
        for number, (tx_type, payload) in enumerate(bodies):
            body = {"chain_id": plan.chain_id, "type": tx_type, "nonce": f"b{index}-{number}", "expires_at": plan.expires_at, "payload": payload}
            unit.append(sign_transaction(keys[bank], body))
        units.append(unit)
    return units


def new_pool() -> ProcessPoolExecutor:
    """Start one signing worker per core; spawned, not forked, because the parent runs threads and an event loop."""
    return ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn"))


@dataclass
class SignedLoad:
    units: list[list[dict[str, Any]]]
    seconds: float

    @property
    def transactions(self) -> int:
        return sum(len(unit) for unit in self.units)

    def figures(self) -> dict[str, float]:
        return {"transactions": self.transactions, "seconds": round(self.seconds, 2), "tx_per_s": round(self.transactions / max(self.seconds, 1e-9), 1)}


async def sign_in_pool(pool: ProcessPoolExecutor, plan: SigningPlan, first_subject: int, subject_count: int) -> SignedLoad:
    """Sign `subject_count` units in chunks spread over the pool's workers, and time it."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    chunks = [
        loop.run_in_executor(pool, sign_units, plan, start, min(CHUNK_SUBJECTS, first_subject + subject_count - start))
        for start in range(first_subject, first_subject + subject_count, CHUNK_SUBJECTS)
    ]
    units = [unit for chunk in await asyncio.gather(*chunks) for unit in chunk]
    return SignedLoad(units, time.perf_counter() - started)
