"""Consortium parameters: the China profile defaults, the US profile, and validation.

Parameters live in state under the key `params` and change only by governance.
Each value is an integer, a boolean, a string or a list of integers, so the
canonical encoding of the state stays exact. Minutes of day are local minutes
after midnight in the consortium's fixed UTC offset.
"""

from __future__ import annotations

from typing import Any

from node.contracts.errors import fail

PARAMS_KEY = "params"

CN_DEFAULTS: dict[str, Any] = {
    # C3: contact attempts are allowed from start (inclusive) to end (exclusive).
    "contact_start_minute": 8 * 60,
    "contact_end_minute": 22 * 60,
    # C4: effective voice interactions per debtor per local day, across all agencies and creditors.
    "voice_per_debtor_per_day_max": 3,
    # C15 (US profile): calls per debt within a rolling window of days; 0 disables the check.
    "calls_per_debt_window_max": 0,
    "calls_per_debt_window_days": 7,
    # C5: dials to one number per local day.
    "dials_per_number_per_day_max": 6,
    # C8: distinct collector ids on a field visit.
    "visit_collectors_min": 2,
    # C9: an agency needs an evaluation this recent to receive new cases.
    "evaluation_valid_days": 365,
    # C1: default DPD at which a case opens, when a mandate gives none.
    "case_start_dpd_default": 1,
    # C13 / C15: "any" dispute pauses collection, or only a "written" one.
    "dispute_pause_mode": "any",
    # C14: days the regulator has to answer a complaint.
    "complaint_answer_days": 30,
    # D9: days to resolve a dispute before it escalates to the regulator.
    "dispute_resolve_days": 20,
    # D6: years after the bad behaviour ended that a negative record stays in reports.
    "negative_retention_years": 5,
    # D8: free own reports per subject per calendar year.
    "free_self_reports_per_year": 2,
    # L10: longest hardship plan.
    "hardship_months_max": 60,
    # L11: DPD upper bounds of 关注 / 次级 / 可疑; above the last one is 损失.
    "classification_dpd_bounds": [90, 270, 360],
    "card_classification_dpd_bounds": [90, 120, 180],
    # G1: approvals must exceed numerator/denominator of the voting members.
    "governance_approval_numerator": 2,
    "governance_approval_denominator": 3,
    "proposal_open_days": 30,
    # G2: a validator-set change takes effect this many blocks after the deciding block.
    "validator_change_delay_blocks": 64,
    # Scorecard (D12): base points before the input points are added.
    "scorecard_base_points": 600,
    "tx_size_max_bytes": 65536,
}

US_OVERRIDES: dict[str, Any] = {
    "contact_end_minute": 21 * 60,
    "voice_per_debtor_per_day_max": 0,
    "calls_per_debt_window_max": 7,
    "calls_per_debt_window_days": 7,
    "dispute_pause_mode": "written",
}

PROFILES = {"CN": {}, "US": US_OVERRIDES}

# Parameters that change compliance duties need the regulator's approval (G1).
COMPLIANCE_PARAMS = frozenset(
    {
        "contact_start_minute",
        "contact_end_minute",
        "voice_per_debtor_per_day_max",
        "calls_per_debt_window_max",
        "calls_per_debt_window_days",
        "dials_per_number_per_day_max",
        "visit_collectors_min",
        "evaluation_valid_days",
        "dispute_pause_mode",
        "complaint_answer_days",
        "dispute_resolve_days",
        "negative_retention_years",
        "free_self_reports_per_year",
        "hardship_months_max",
        "classification_dpd_bounds",
        "card_classification_dpd_bounds",
    }
)

_CHOICES = {"dispute_pause_mode": ("any", "written")}


def _validate_value(name: str, value: Any) -> None:
    default = CN_DEFAULTS[name]
    if isinstance(default, bool) or isinstance(default, str):
        if type(value) is not type(default):
            fail("invalid_param", param=name, expected=type(default).__name__)
        if name in _CHOICES and value not in _CHOICES[name]:
            fail("invalid_param", param=name, allowed=list(_CHOICES[name]))
        return
    if isinstance(default, int):
        if type(value) is not int or value < 0:
            fail("invalid_param", param=name, expected="non-negative integer")
        return
    if type(value) is not list or len(value) != len(default) or any(type(v) is not int or v < 0 for v in value):
        fail("invalid_param", param=name, expected=f"list of {len(default)} non-negative integers")
    if value != sorted(value):
        fail("invalid_param", param=name, expected="ascending bounds")


def _validate_combination(params: dict[str, Any]) -> None:
    if not 0 <= params["contact_start_minute"] < params["contact_end_minute"] <= 24 * 60:
        fail("invalid_param", param="contact_end_minute", expected="0 <= start < end <= 1440")
    numerator = params["governance_approval_numerator"]
    denominator = params["governance_approval_denominator"]
    if denominator == 0 or numerator >= denominator:
        fail("invalid_param", param="governance_approval_numerator", expected="0 <= numerator < denominator")
    if params["calls_per_debt_window_days"] < 1:
        fail("invalid_param", param="calls_per_debt_window_days", expected="at least 1")


def resolve_params(profile: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge the profile defaults with genesis or governance overrides, validating every value."""
    if profile not in PROFILES:
        fail("invalid_param", param="profile", allowed=sorted(PROFILES))
    params = dict(CN_DEFAULTS)
    params.update(PROFILES[profile])
    apply_changes(params, overrides)
    return params


def apply_changes(params: dict[str, Any], changes: dict[str, Any]) -> None:
    """Validate `changes` and apply them to `params` in place."""
    for name in sorted(changes):
        if name not in CN_DEFAULTS:
            fail("unknown_param", param=name)
        _validate_value(name, changes[name])
    merged = dict(params)
    merged.update(changes)
    _validate_combination(merged)
    params.update(changes)


def load_params(state: Any) -> dict[str, Any]:
    params = state.get(PARAMS_KEY)
    if params is None:
        raise RuntimeError("state has no params: init_genesis has not run")
    return params
