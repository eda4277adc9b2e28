"""Realistic transaction payloads shared by the ceiling benchmark, the bulk loader and the network load generator.

The mix is what banks send most: subject registrations, data_sharing consents,
loan registrations with 12-36 monthly instalments and repayments. Amounts are
integer fen, rates basis points.

NOTE: collection contacts (`case.contact`) are not in the mix yet, because they
need cases, which open only after loans fall overdue under a mandate.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from common import REPO_ROOT  # noqa: F401  (puts the repository on sys.path)
from node.contracts.loans import equal_principal_schedule

INSTALMENTS_MIN = 12
INSTALMENTS_MAX = 36


def hex_id(*parts: Any) -> str:
    """Return a deterministic 64-hex-character id (subject ids, commitments) from `parts`."""
    return hashlib.sha256("/".join(str(part) for part in parts).encode("utf-8")).hexdigest()


def subject_register_payload(index: int) -> dict[str, Any]:
    return {"subject_id": hex_id("subject", index), "commitment": hex_id("commitment", index)}


def consent_grant_payload(index: int, grantee: str, expires_on: str) -> dict[str, Any]:
    return {
        "consent_id": f"consent-{index}",
        "subject_id": hex_id("subject", index),
        "grantee": grantee,
        "purpose": "data_sharing",
        "expires_on": expires_on,
        "evidence": hex_id("evidence", index),
    }


def loan_register_payload(loan_index: int, subject_index: int, start_date: str, rng: random.Random) -> dict[str, Any]:
    """Build a `loan.register` payload with a 12-36 month equal-principal schedule."""
    months = rng.randint(INSTALMENTS_MIN, INSTALMENTS_MAX)
    principal = rng.randint(1_000, 500_000) * 100  # 1,000 to 500,000 yuan in fen
    annual_rate_bp = rng.choice((360, 435, 480, 720, 1_200, 1_800))
    schedule = equal_principal_schedule(principal, annual_rate_bp, start_date, months)
    return {
        "loan_id": f"loan-{loan_index}",
        "subject_id": hex_id("subject", subject_index),
        "principal": principal,
        "currency": "CNY",
        "annual_rate_bp": annual_rate_bp,
        "start_date": start_date,
        "schedule": schedule,
    }


def repayment_payload(loan_index: int, payment_index: int, amount: int, paid_on: str) -> dict[str, Any]:
    return {"loan_id": f"loan-{loan_index}", "payment_id": f"pay-{loan_index}-{payment_index}", "amount": amount, "paid_on": paid_on}


def sample_loan_register_body(chain_id: str, sender_hex: str, now_ms: int) -> dict[str, Any]:
    """Build an unsigned `loan.register` body with 24 instalments, for per-transaction ceilings."""
    rng = random.Random(24)
    payload = loan_register_payload(1, 1, "2026-01-15", rng)
    payload["schedule"] = equal_principal_schedule(payload["principal"], payload["annual_rate_bp"], "2026-01-15", 24)
    return {
        "chain_id": chain_id,
        "type": "loan.register",
        "sender": sender_hex,
        "nonce": "bench-1",
        "expires_at": now_ms + 30 * 60 * 1000,
        "payload": payload,
    }
