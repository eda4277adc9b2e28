"""Read-side queries over contract state, for the HTTP API and the privacy layer.

Every function takes a State (or anything with get and scan) and returns plain
JSON-compatible values, or None when the record does not exist.
"""

from __future__ import annotations

from typing import Any

from node.contracts.collection import collector_mandate_active as _collector_mandate_active
from node.contracts.consent import consent_status
from node.contracts.credit import is_negative
from node.contracts.dates import add_years
from node.contracts.erasure import erasure_marker
from node.contracts.delinquency import GRADE_NAMES_ZH, loan_grade
from node.contracts.loans import days_past_due, outstanding
from node.contracts.params import load_params
from node.contracts.scorecard import behavioural_score


def get_member(state: Any, member_id: str) -> dict[str, Any] | None:
    return state.get(f"member/{member_id}")


def list_members(state: Any) -> list[dict[str, Any]]:
    return [record for _, record in state.scan("member/")]


def member_by_key(state: Any, public_key: str) -> dict[str, Any] | None:
    """Return the member owning a client or node key, or None."""
    owner = state.get(f"member_key/{public_key}")
    return None if owner is None else state.get(f"member/{owner['member_id']}")


def subject_by_key(state: Any, public_key: str) -> str | None:
    return state.get(f"subject_key/{public_key}")


def get_params(state: Any) -> dict[str, Any]:
    return load_params(state)


def get_validators(state: Any) -> dict[str, Any]:
    return {"current": state.get("validators"), "pending": state.get("validators_pending")}


def loan_view(loan: dict[str, Any], as_of_date: str, params: dict[str, Any]) -> dict[str, Any]:
    dpd = days_past_due(loan, as_of_date)
    grade = loan_grade(loan, dpd, params)
    view = dict(loan)
    view.update(
        {
            "as_of_date": as_of_date,
            "outstanding": outstanding(loan) if loan["status"] == "open" else 0,
            "dpd": dpd,
            "max_dpd": max(loan["max_dpd"], dpd),
            "classification": grade,
            "classification_zh": GRADE_NAMES_ZH[grade],
        }
    )
    return view


def get_loan(state: Any, loan_id: str, as_of_date: str) -> dict[str, Any] | None:
    """Return the loan with its schedule, payments and status (DPD, classification) on `as_of_date`."""
    loan = state.get(f"loan/{loan_id}")
    if loan is None:
        return None
    view = loan_view(loan, as_of_date, load_params(state))
    view["payments"] = [payment for _, payment in state.scan(f"payment/{loan_id}/")]
    view["notices"] = [notice for _, notice in state.scan(f"notice/{loan_id}/")]
    return view


def get_case(state: Any, case_id: str) -> dict[str, Any] | None:
    """Return the case with its full action history, in order."""
    case = state.get(f"case/{case_id}")
    if case is None:
        return None
    case["history"] = [action for _, action in state.scan(f"case_action/{case_id}/")]
    return case


def get_mandate(state: Any, mandate_id: str) -> dict[str, Any] | None:
    mandate = state.get(f"mandate/{mandate_id}")
    if mandate is None:
        return None
    mandate["commission"] = [state.get(f"commission/{agency}/{mandate_id}") for agency in mandate["agencies"] if state.get(f"commission/{agency}/{mandate_id}")]
    return mandate


def get_dispute(state: Any, dispute_id: str) -> dict[str, Any] | None:
    return state.get(f"dispute/{dispute_id}")


def get_complaint(state: Any, complaint_id: str) -> dict[str, Any] | None:
    return state.get(f"complaint/{complaint_id}")


def get_proposal(state: Any, proposal_id: str) -> dict[str, Any] | None:
    return state.get(f"proposal/{proposal_id}")


def get_consent(state: Any, consent_id: str) -> dict[str, Any] | None:
    return state.get(f"consent/{consent_id}")


def consent_active(state: Any, subject_id: str, grantee: str, purpose: str, date: str) -> bool:
    """Check whether an unrevoked, unexpired consent names `grantee` for `purpose` on `date`."""
    return consent_status(state, subject_id, grantee, purpose, date) == "active"


def consent_state(state: Any, subject_id: str, grantee: str, purpose: str, date: str) -> str:
    """"active", "expired", "revoked" or "none": why a consent check passed or failed."""
    return consent_status(state, subject_id, grantee, purpose, date)


def subject_erasure(state: Any, subject_id: str) -> dict[str, Any] | None:
    """Return the subject's erasure marker {state: "erased" | "frozen", erasure_id, since, retain_until}, or None."""
    return erasure_marker(state, subject_id)


def get_erasure(state: Any, erasure_id: str) -> dict[str, Any] | None:
    return state.get(f"erasure/{erasure_id}")


def collector_mandate_active(state: Any, member_id: str, subject_id: str, date: str) -> bool:
    """Check whether the collector holds an open case on the subject under a mandate active on `date` (C10)."""
    return _collector_mandate_active(state, member_id, subject_id, date)


def _past_retention(loan: dict[str, Any], as_of_date: str, years: int) -> bool:
    """D6: negative information leaves reports `years` after the bad behaviour ended."""
    if not is_negative(loan):
        return False
    ended = loan["delinquency_ended_on"]
    if loan["status"] in ("written_off", "settled"):
        ended = max(ended or "", loan["closed_on"])
    return ended is not None and as_of_date >= add_years(ended, years)


def credit_report(state: Any, subject_id: str, as_of_date: str) -> dict[str, Any] | None:
    """Build the cross-institution credit report of a subject on `as_of_date`."""
    subject = state.get(f"subject/{subject_id}")
    if subject is None:
        return None
    params = load_params(state)
    years = params["negative_retention_years"]
    statements: dict[str, list[dict[str, Any]]] = {}
    for _, statement in state.scan(f"statement/{subject_id}/"):
        statements.setdefault(statement["loan_id"], []).append(statement)
    loans = []
    kept_raw = []
    for key, _ in state.scan(f"loan_by_subject/{subject_id}/"):
        loan = state.get(f"loan/{key.rsplit('/', 1)[1]}")
        if _past_retention(loan, as_of_date, years):
            if loan["status"] != "repaid":
                continue
            # A repaid loan stays in the report; only its old delinquency is left out.
            loan["max_dpd"] = 0
        kept_raw.append(loan)
        view = loan_view(loan, as_of_date, params)
        entry = {name: view[name] for name in ("loan_id", "creditor", "principal", "currency", "start_date", "status", "outstanding", "dpd", "max_dpd", "classification", "classification_zh", "credit_balance", "recovered", "waived", "written_off_amount", "closed_on")}
        entry["negative"] = is_negative(loan)
        if not entry["negative"]:
            _withhold_delinquency(entry)
        entry["disputes"] = _loan_disputes(state, loan["loan_id"])
        entry["statements"] = statements.get(loan["loan_id"], [])
        loans.append(entry)
    open_loans = [entry for entry in loans if entry["status"] == "open"]
    assessments = []
    for key, _ in state.scan(f"assessment_by_subject/{subject_id}/"):
        assessments.append(state.get(f"assessment/{key.rsplit('/', 1)[1]}"))
    return {
        "subject_id": subject_id,
        "as_of_date": as_of_date,
        "loans": loans,
        "summary": {
            "open_loans": len(open_loans),
            "creditors_with_open_loans": len({entry["creditor"] for entry in open_loans}),
            "outstanding": sum(entry["outstanding"] for entry in open_loans),
            "current_max_dpd": max((entry["dpd"] for entry in loans), default=0),
            "max_dpd": max((entry["max_dpd"] for entry in loans), default=0),
            "worst_classification": _worst(loans),
        },
        "assessments": assessments,
        "behavioural_score": behavioural_score(kept_raw, as_of_date, params["scorecard_base_points"]),
        "queries": [record for _, record in state.scan(f"query_log/{subject_id}/")],
        "data_access": [record for _, record in state.scan(f"access_log/{subject_id}/")],
    }


def _withhold_delinquency(entry: dict[str, Any]) -> None:
    """D5: leave out the delinquency of a loan whose subject was not notified, so no negative record is reported."""
    entry["dpd"] = 0
    entry["max_dpd"] = 0
    entry["classification"] = "normal"
    entry["classification_zh"] = GRADE_NAMES_ZH["normal"]


def _loan_disputes(state: Any, loan_id: str) -> list[dict[str, Any]]:
    disputes = []
    for key, _ in state.scan(f"dispute_by_loan/{loan_id}/"):
        disputes.append(state.get(f"dispute/{key.rsplit('/', 1)[1]}"))
    return disputes


def _worst(loans: list[dict[str, Any]]) -> str:
    from node.contracts.delinquency import GRADES

    worst = 0
    for entry in loans:
        worst = max(worst, GRADES.index(entry["classification"]))
    return GRADES[worst]
