"""Collection mandates (委外授权): grant, evaluation (C9), end, and commission on recoveries (C16).

State keys:
  mandate/<mandate_id>                         the mandate with its evaluations
  mandate_by_creditor/<creditor>/<mandate_id>  1
  evaluation/<creditor>/<agency>               latest evaluation of the agency by the creditor
  commission/<agency>/<mandate_id>             {recovered, commission, payments}: accrued for settlement
  deadline/<date>/mandate_start/<mandate_id>   cases may open from valid_from
  deadline/<date>/mandate_expire/<mandate_id>  cases close the day after valid_until
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from node.contracts.context import TxContext, TxRoute, route
from node.contracts.dates import add_days, days_between
from node.contracts.errors import fail
from node.contracts.models import BasisPoints, DateText, Payload, RecordId, ReasonCode, Hex64
from node.contracts.registry import get_member_or_fail, is_active


class MandateGrantPayload(Payload):
    mandate_id: RecordId
    agencies: list[RecordId] = Field(min_length=1, max_length=20)
    start_dpd: int | None = Field(default=None, ge=1, le=10_000)
    valid_from: DateText
    valid_until: DateText
    commission_rate_bp: BasisPoints = 0
    loan_ids: list[RecordId] | None = Field(default=None, max_length=1000)


class MandateEvaluatePayload(Payload):
    mandate_id: RecordId
    agency: RecordId
    evaluated_on: DateText
    rating: int = Field(ge=1, le=5)
    note_hash: Hex64 | None = None


class MandateEndPayload(Payload):
    mandate_id: RecordId
    reason: ReasonCode
    note_hash: Hex64 | None = None


def half_up_div(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def mandate_active(mandate: dict[str, Any], date: str) -> bool:
    return mandate["status"] == "active" and mandate["valid_from"] <= date <= mandate["valid_until"]


def covers_loan(mandate: dict[str, Any], loan: dict[str, Any]) -> bool:
    if mandate["creditor"] != loan["creditor"] or mandate["mandate_id"] in loan.get("ended_mandates", []):
        return False
    return mandate["loan_ids"] is None or loan["loan_id"] in mandate["loan_ids"]


def creditor_mandates(state: Any, creditor: str) -> list[dict[str, Any]]:
    prefix = f"mandate_by_creditor/{creditor}/"
    return [state.get(f"mandate/{key[len(prefix):]}") for key, _ in state.scan(prefix)]


def evaluation_valid(state: Any, mandate: dict[str, Any], agency: str, today: str, valid_days: int) -> bool:
    """C9: an evaluation by the creditor within the last `valid_days` days and not after the mandate ends."""
    evaluation = state.get(f"evaluation/{mandate['creditor']}/{agency}")
    if evaluation is None:
        return False
    on = evaluation["evaluated_on"]
    return on <= mandate["valid_until"] and 0 <= days_between(on, today) <= valid_days


def eligible_agencies(state: Any, mandate: dict[str, Any], today: str, params: dict[str, Any]) -> list[str]:
    """Agencies of the mandate that may receive a new case today, sorted by member id."""
    return [
        agency
        for agency in mandate["agencies"]
        if is_active(state, agency) and evaluation_valid(state, mandate, agency, today, params["evaluation_valid_days"])
    ]


def _own_mandate(tc: TxContext, mandate_id: str) -> dict[str, Any]:
    mandate = tc.state.get(f"mandate/{mandate_id}")
    if mandate is None:
        fail("not_found", mandate_id=mandate_id)
    if mandate["creditor"] != tc.sender.member_id:
        fail("not_creditor", mandate_id=mandate_id)
    return mandate


def grant_mandate(tc: TxContext, payload: MandateGrantPayload) -> None:
    from node.contracts.collection import open_cases_for_creditor

    if tc.state.get(f"mandate/{payload.mandate_id}") is not None:
        fail("duplicate_id", mandate_id=payload.mandate_id)
    for agency in payload.agencies:
        if get_member_or_fail(tc.state, agency)["role"] != "collector":
            fail("invalid_action", reason="a mandate names collection agencies only", agency=agency)
    if payload.valid_until < payload.valid_from or payload.valid_until < tc.today:
        fail("invalid_date", valid_from=payload.valid_from, valid_until=payload.valid_until)
    mandate = payload.model_dump()
    mandate.update(
        {
            "agencies": sorted(set(payload.agencies)),
            "start_dpd": payload.start_dpd or tc.params["case_start_dpd_default"],
            "creditor": tc.sender.member_id,
            "status": "active",
            "granted_on": tc.today,
            "ended_on": None,
            "end_reason": None,
            "evaluations": [],
        }
    )
    tc.state.put(f"mandate/{payload.mandate_id}", mandate)
    tc.state.put(f"mandate_by_creditor/{tc.sender.member_id}/{payload.mandate_id}", 1)
    tc.state.put(f"deadline/{add_days(payload.valid_until, 1)}/mandate_expire/{payload.mandate_id}", 1)
    tc.emit("mandate.granted", {"mandate_id": payload.mandate_id, "creditor": tc.sender.member_id}, [tc.sender.member_id, *mandate["agencies"]])
    if payload.valid_from > tc.today:
        tc.state.put(f"deadline/{payload.valid_from}/mandate_start/{payload.mandate_id}", 1)
    else:
        open_cases_for_creditor(tc.state, tc.sender.member_id, tc.today, tc.params, tc.events)


def evaluate_agency(tc: TxContext, payload: MandateEvaluatePayload) -> None:
    mandate = _own_mandate(tc, payload.mandate_id)
    if payload.agency not in mandate["agencies"]:
        fail("invalid_action", reason="the agency is not named in the mandate", agency=payload.agency)
    if payload.evaluated_on > tc.today:
        fail("invalid_date", evaluated_on=payload.evaluated_on, reason="evaluation date is in the future")
    evaluation = {"agency": payload.agency, "evaluated_on": payload.evaluated_on, "rating": payload.rating, "note_hash": payload.note_hash, "mandate_id": payload.mandate_id}
    mandate["evaluations"].append(evaluation)
    tc.state.put(f"mandate/{payload.mandate_id}", mandate)
    key = f"evaluation/{mandate['creditor']}/{payload.agency}"
    latest = tc.state.get(key)
    if latest is None or latest["evaluated_on"] <= payload.evaluated_on:
        tc.state.put(key, evaluation)
    tc.emit("mandate.evaluated", {"mandate_id": payload.mandate_id, "agency": payload.agency, "rating": payload.rating}, (payload.agency, mandate["creditor"]))


def end_mandate(tc: TxContext, payload: MandateEndPayload) -> None:
    from node.contracts.collection import close_cases_of_mandate

    mandate = _own_mandate(tc, payload.mandate_id)
    if mandate["status"] != "active":
        fail("mandate_inactive", mandate_id=payload.mandate_id, status=mandate["status"])
    mandate["status"] = "ended"
    mandate["ended_on"] = tc.today
    mandate["end_reason"] = payload.reason
    mandate["end_note_hash"] = payload.note_hash
    tc.state.put(f"mandate/{payload.mandate_id}", mandate)
    close_cases_of_mandate(tc.state, mandate, tc.today, tc.events)
    tc.emit("mandate.ended", {"mandate_id": payload.mandate_id, "reason": payload.reason}, [mandate["creditor"], *mandate["agencies"]])


def accrue_commission(state: Any, agency: str, mandate: dict[str, Any], amount: int, payment_id: str) -> dict[str, Any]:
    """C16: recovered amount x the mandate's rate in basis points, rounded half-up to fen."""
    commission = half_up_div(amount * mandate["commission_rate_bp"], 10_000)
    key = f"commission/{agency}/{mandate['mandate_id']}"
    total = state.get(key) or {"agency": agency, "mandate_id": mandate["mandate_id"], "recovered": 0, "commission": 0, "payments": 0}
    total["recovered"] += amount
    total["commission"] += commission
    total["payments"] += 1
    state.put(key, total)
    return {"agency": agency, "mandate_id": mandate["mandate_id"], "amount": amount, "commission": commission, "payment_id": payment_id}


def reverse_commission(state: Any, entry: dict[str, Any]) -> None:
    key = f"commission/{entry['agency']}/{entry['mandate_id']}"
    total = state.get(key)
    total["recovered"] -= entry["amount"]
    total["commission"] -= entry["commission"]
    total["payments"] -= 1
    state.put(key, total)


ROUTES: dict[str, TxRoute] = {
    "mandate.grant": route(MandateGrantPayload, grant_mandate, ("bank",)),
    "mandate.evaluate": route(MandateEvaluatePayload, evaluate_agency, ("bank",)),
    "mandate.end": route(MandateEndPayload, end_mandate, ("bank",)),
}
