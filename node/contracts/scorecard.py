"""A behavioural scorecard computed from on-chain loan history, in integer points per band (D12).

The score is the base points (a parameter) plus the points of each input; the
result lists every input's value and points so a subject can see why.
"""

from __future__ import annotations

from typing import Any

# (upper bound inclusive, points) per input; the first band whose bound is >= the value applies.
BANDS: dict[str, tuple[tuple[int, int], ...]] = {
    "max_dpd_24m": ((0, 40), (30, 0), (90, -60), (180, -120), (10**9, -200)),
    "open_creditors": ((0, 0), (2, 20), (4, -20), (10**9, -60)),
    "written_off_loans": ((0, 30), (1, -150), (10**9, -250)),
    "repaid_loans": ((0, 0), (2, 15), (5, 30), (10**9, 45)),
}


def band_points(name: str, value: int) -> int:
    for bound, points in BANDS[name]:
        if value <= bound:
            return points
    raise AssertionError("the last band is unbounded")


def score_inputs(loans: list[dict[str, Any]], as_of_date: str) -> dict[str, int]:
    """Measure the scorecard inputs from the subject's loans (already filtered for retention)."""
    from node.contracts.dates import add_months
    from node.contracts.loans import days_past_due

    window_start = add_months(as_of_date, -24)
    max_dpd = 0
    for loan in loans:
        if loan["negative_on"] is None:
            continue  # D5: delinquency the subject was not notified of is not reported
        current = days_past_due(loan, as_of_date)
        recent = loan["delinquency_ended_on"] is None or loan["delinquency_ended_on"] >= window_start
        if recent:
            max_dpd = max(max_dpd, loan["max_dpd"], current)
    return {
        "max_dpd_24m": max_dpd,
        "open_creditors": len({loan["creditor"] for loan in loans if loan["status"] == "open"}),
        "written_off_loans": sum(1 for loan in loans if loan["status"] == "written_off"),
        "repaid_loans": sum(1 for loan in loans if loan["status"] == "repaid"),
    }


def behavioural_score(loans: list[dict[str, Any]], as_of_date: str, base_points: int) -> dict[str, Any]:
    inputs = score_inputs(loans, as_of_date)
    points = {name: band_points(name, inputs[name]) for name in sorted(inputs)}
    return {"base_points": base_points, "inputs": inputs, "points": points, "score": base_points + sum(points.values())}
