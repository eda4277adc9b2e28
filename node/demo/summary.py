"""The demo's figures: read from the chain after the replay, expected from the CSV files, and printed in two languages.

Chain figures come from the nodes' state through the HTTP API (loans, payments
with their allocations, cases) and from the receipts of the submitted
transactions (refusals by error code). Expected figures come from
node.demo.expected, which reads the CSV files with its own code.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from node.contracts.collection import make_case_id
from node.contracts.dates import days_between
from node.contracts.delinquency import GRADE_NAMES_ZH, GRADES, loan_grade
from node.contracts.loans import days_past_due, outstanding
from node.demo.chainio import ChainIO
from node.demo.expected import clearing_days, max_dpd, read_ledgers
from node.demo.mapping import MappedBook, date_to_day

DPD_BUCKETS = ((0, "0"), (30, "1-30"), (90, "31-90"), (180, "91-180"), (360, "181-360"), (10**9, "361+"))


def dpd_bucket(dpd: int) -> str:
    for bound, label in DPD_BUCKETS:
        if dpd <= bound:
            return label
    raise AssertionError("the last bucket is unbounded")


def expected_figures(data_dir: Path, mapped: MappedBook, threshold_days: int, as_of: str) -> dict[str, Any]:
    """Figures for the replayed loans computed straight from the CSV files, as of the date `as_of`."""
    ledgers = read_ledgers(data_dir)
    as_of_day = date_to_day(as_of, mapped.reference_date)
    late = never = reaching = 0
    instalments = payments = paid_fen = 0
    for loan in mapped.loans:
        ledger = ledgers[loan.source_loan_id]
        instalments += len(ledger.instalments)
        payments += len(ledger.payments)
        paid_fen += sum(amount for _, amount in ledger.payments)
        for instalment, cleared in zip(ledger.instalments, clearing_days(ledger), strict=True):
            if cleared is None:
                never += 1
            elif cleared - instalment.due_day > threshold_days:
                late += 1
        if max_dpd(ledger, as_of_day) > threshold_days:
            reaching += 1
    return {
        "loans": len(mapped.loans),
        "subjects": len(mapped.subjects),
        "instalments": instalments,
        "payments": payments,
        "paid_fen": paid_fen,
        "instalments_late_over_threshold": late,
        "instalments_never_fully_paid": never,
        "loans_over_threshold": reaching,
    }


def _clearing_dates(loan: dict[str, Any], payments: list[dict[str, Any]]) -> list[str | None]:
    """Replay the chain's own allocations to find the date each instalment became fully paid."""
    unpaid = [item["principal"] + item["interest"] for item in loan["instalments"]]
    cleared: list[str | None] = [None] * len(unpaid)
    for payment in sorted(payments, key=lambda item: (item["paid_on"], item["payment_id"])):
        for part in payment["allocation"]:
            if part["component"] in ("principal", "interest"):
                unpaid[part["number"] - 1] -= part["amount"]
        for index, rest in enumerate(unpaid):
            if cleared[index] is None and rest == 0:
                cleared[index] = payment["paid_on"]
    return cleared


async def chain_figures(io: ChainIO, mapped: MappedBook, member_of: dict[str, str], threshold_days: int, as_of: str, params: dict[str, Any]) -> dict[str, Any]:
    """Read every replayed loan, its payments and its cases from the chain and count them."""
    loans = await asyncio.gather(*(io.read(f"/v1/loans/{loan.loan_id}") for loan in mapped.loans))
    payment_reads = [
        [io.read(f"/v1/state/payment/{loan.loan_id}/{payment.payment_id}") for payment in loan.payments] for loan in mapped.loans
    ]
    payments = [[item["value"] for item in await asyncio.gather(*reads) if item is not None] for reads in payment_reads]

    counted = ("loans", "instalments", "payments", "paid_fen", "instalments_never_fully_paid", "instalments_late_over_threshold", "loans_over_threshold", "cases_opened", "cases_outsourced", "cases_accepted", "cases_closed")
    figures: Counter = Counter({key: 0 for key in counted})
    dpd_distribution: Counter = Counter()
    grade_distribution: Counter = Counter({grade: 0 for grade in GRADES})
    booked_late: Counter = Counter()
    case_reads = []
    case_loans = []
    for loan, loan_payments in zip(loans, payments, strict=True):
        if loan is None:
            continue
        figures["loans"] += 1
        figures["instalments"] += len(loan["instalments"])
        figures["payments"] += len(loan_payments)
        figures["paid_fen"] += sum(item["amount"] for item in loan_payments)
        for payment in loan_payments:
            booked_late[days_between(payment["paid_on"], payment["booked_on"])] += 1
        for instalment, cleared in zip(loan["instalments"], _clearing_dates(loan, loan_payments), strict=True):
            if cleared is None:
                figures["instalments_never_fully_paid"] += 1
            elif days_between(instalment["due_date"], cleared) > threshold_days:
                figures["instalments_late_over_threshold"] += 1
        if loan["max_dpd"] > threshold_days or days_past_due(loan, as_of) > threshold_days:
            figures["loans_over_threshold"] += 1
        dpd = days_past_due(loan, as_of)
        dpd_distribution[dpd_bucket(dpd)] += 1
        grade_distribution[loan_grade(loan, dpd, params)] += 1
        for number in range(1, loan.get("case_count", 0) + 1):
            case_reads.append(io.read(f"/v1/cases/{make_case_id(loan['loan_id'], number)}"))
            case_loans.append(loan)

    cases = await asyncio.gather(*case_reads)
    outcomes: Counter = Counter()
    recovered_fen = 0
    open_balance_fen = 0
    for case, loan in zip(cases, case_loans, strict=True):
        if case is None:
            continue
        figures["cases_opened"] += 1
        figures["cases_outsourced"] += int(case["agency"] is not None)
        figures["cases_accepted"] += int(case["accepted"])
        recovered_fen += case["recovered"]
        if case["status"] == "closed":
            figures["cases_closed"] += 1
            outcomes[case["outcome"]] += 1
        else:
            open_balance_fen += outstanding(loan)
    figures["cases_recovered"] = outcomes.get("repaid", 0)
    return {
        **dict(figures),
        "case_outcomes": dict(sorted(outcomes.items())),
        "recovered_fen": recovered_fen,
        "recovery_rate_bp": (recovered_fen * 10_000 // (recovered_fen + open_balance_fen)) if recovered_fen + open_balance_fen else 0,
        "case_recovery_rate_bp": (figures["cases_recovered"] * 10_000 // figures["cases_opened"]) if figures["cases_opened"] else 0,
        "dpd_distribution": {label: dpd_distribution.get(label, 0) for _, label in DPD_BUCKETS},
        "grade_distribution": dict(grade_distribution),
        "payments_booked_days_after_paid_on": {str(days): count for days, count in sorted(booked_late.items())},
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and max of `values` (nearest rank), rounded to 0.1; zeros for no values."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {"p50": round(rank(0.5), 1), "p95": round(rank(0.95), 1), "max": round(ordered[-1], 1)}


def timing_figures(io: ChainIO, speed: int, deferred_events: int) -> dict[str, Any]:
    """Measure how far behind chain time the replay ran, in real ms, from the submitted transactions and the block timestamps.

    A repayment is booked on the date of the block that takes it. It is booked
    on its payment day when that block's timestamp falls before the next
    midnight, so `day_real_ms` is the budget of `payment_delay_real_ms`.
    """
    payments = [record for record in io.committed if record.tx_type == "repayment.record" and record.block_time_ms is not None]
    payment_delay = [(record.block_time_ms - io.day_start_ms(record.payload["paid_on"])) / speed for record in payments]
    booked_late = [record for record in payments if record.block_date != record.payload["paid_on"]]
    admission_to_block = [(record.block_time_ms - record.submitted_ms) / speed for record in io.committed if record.block_time_ms is not None]
    heights = sorted(io.block_times)
    block_gaps = [(io.block_times[high] - io.block_times[low]) / speed for low, high in zip(heights, heights[1:])]
    return {
        "day_real_ms": round(86_400_000 / speed, 1),
        "payment_delay_real_ms": _percentiles(payment_delay),
        "payments_booked_after_paid_on": len(booked_late),
        "booking_lag_days_max": max((days_between(record.payload["paid_on"], record.block_date) for record in booked_late), default=0),
        "admission_to_block_real_ms": _percentiles(admission_to_block),
        "block_gap_real_ms": _percentiles(block_gaps),
        "events_waiting_for_other_member": deferred_events,
    }


LABELS = {
    # key: (English, Chinese)
    "title": ("Xinlian demo: Home Credit loan book replayed on a local consortium", "信链演示：在本地联盟链上回放 Home Credit 贷款数据"),
    "window": ("replay", "回放区间"),
    "loans": ("loans registered", "登记贷款"),
    "subjects": ("data subjects", "数据主体"),
    "instalments": ("instalments", "还款期数"),
    "payments": ("payments recorded", "记录还款"),
    "paid_fen": ("amount repaid (CNY)", "还款金额（元）"),
    "instalments_late_over_threshold": ("instalments paid more than {days} days late", "逾期超过 {days} 天后还清的期数"),
    "instalments_never_fully_paid": ("instalments never fully paid", "未还清的期数"),
    "loans_over_threshold": ("loans more than {days} days past due", "逾期超过 {days} 天的贷款"),
    "cases_opened": ("collection cases opened", "催收案件立案"),
    "cases_accepted": ("cases accepted by the agency", "催收机构接案"),
    "cases_recovered": ("cases closed as repaid", "因还清结案"),
    "cases_closed": ("cases closed", "结案"),
    "recovery_rate": ("recovery rate (amount)", "回收率（金额）"),
    "case_recovery_rate": ("recovery rate (cases)", "回收率（案件）"),
    "dpd_distribution": ("DPD at the end", "期末逾期天数分布"),
    "grade_distribution": ("five-grade classification", "五级分类"),
    "refusals": ("rule refusals on chain, by error code", "链上规则拒绝（按错误码）"),
    "story": ("scenes", "演示场景"),
    "no_story": ("not played: no open case without payments for 12 days", "未演示：没有 12 天内无还款的未结案件"),
    "assessments": ("scorecard assessments recorded", "记录的评分卡评估"),
    "tps": ("transactions / blocks / tx per second", "交易数 / 区块数 / 每秒交易"),
    "wall": ("wall time", "耗时"),
    "roots": ("state roots at height {height}", "高度 {height} 的状态根"),
    "same": ("identical on all {count} nodes", "全部 {count} 个节点一致"),
    "differ": ("DIFFERENT across nodes", "各节点不一致"),
    "expected": ("expected from the CSV files", "按 CSV 文件计算的期望值"),
    "booked": ("payments booked on their payment day", "在还款当日入账的还款"),
    "delay": ("payment day start to its block, p95 / max (one chain day lasts {day} ms)", "还款日零点到入块的时间，p95 / 最大（一个链上日为 {day} 毫秒）"),
    "lag": (
        "WARNING: {count} payments were booked up to {days} days after their payment day, because the chain fell behind its clock; rerun with a lower --days-per-second",
        "警告：{count} 笔还款比还款日晚入账（最多 {days} 天），因为链跟不上加速时钟；请用更小的 --days-per-second 重新运行",
    ),
}
GRADE_NAMES_EN = {"normal": "normal", "special_mention": "special mention", "substandard": "substandard", "doubtful": "doubtful", "loss": "loss"}


def _label(key: str, chinese: bool, **values: Any) -> str:
    english, zh = LABELS[key]
    return (zh if chinese else english).format(**values)


def render(summary: dict[str, Any], language: str) -> str:
    """Format the summary as text in zh-CN or English."""
    chinese = language == "zh-CN"
    chain, expected = summary["chain"], summary["expected"]
    days = summary["case_threshold_days"]
    lines = [_label("title", chinese), f"  {_label('window', chinese)}: {summary['first_date']} .. {summary['as_of']}"]
    mark = "期望" if chinese else "expected"

    def row(key: str, value: Any, expected_value: Any = None, **values: Any) -> None:
        text = f"  {_label(key, chinese, **values)}: {value}"
        if expected_value is not None:
            text += f"  ({mark} {expected_value})"
        lines.append(text)

    for key in ("loans", "subjects", "instalments", "payments"):
        row(key, chain.get(key, 0) if key != "subjects" else summary["subjects_registered"], expected.get(key))
    row("paid_fen", f"{chain.get('paid_fen', 0) / 100:,.2f}", f"{expected['paid_fen'] / 100:,.2f}")
    row("instalments_late_over_threshold", chain.get("instalments_late_over_threshold", 0), expected["instalments_late_over_threshold"], days=days)
    row("instalments_never_fully_paid", chain.get("instalments_never_fully_paid", 0), expected["instalments_never_fully_paid"])
    row("loans_over_threshold", chain.get("loans_over_threshold", 0), expected["loans_over_threshold"], days=days)
    row("cases_opened", chain.get("cases_opened", 0), expected["loans_over_threshold"])
    row("cases_accepted", chain.get("cases_accepted", 0))
    row("cases_closed", f"{chain.get('cases_closed', 0)} {chain.get('case_outcomes', {})}")
    row("cases_recovered", chain.get("cases_recovered", 0))
    row("recovery_rate", f"{chain['recovery_rate_bp'] / 100:.2f}% ({chain['recovered_fen'] / 100:,.2f})")
    row("case_recovery_rate", f"{chain['case_recovery_rate_bp'] / 100:.2f}%")
    row("booked", f"{chain['payments_booked_days_after_paid_on'].get('0', 0)} / {chain.get('payments', 0)}  {chain['payments_booked_days_after_paid_on']}")
    timing = summary["timing"]
    delay = timing["payment_delay_real_ms"]
    row("delay", f"{delay['p95']:.0f} / {delay['max']:.0f} ms", day=f"{timing['day_real_ms']:.0f}")
    if timing["payments_booked_after_paid_on"]:
        lines.append("  " + _label("lag", chinese, count=timing["payments_booked_after_paid_on"], days=timing["booking_lag_days_max"]))
    row("dpd_distribution", "  ".join(f"{label}: {chain['dpd_distribution'].get(label, 0)}" for _, label in DPD_BUCKETS))
    names = GRADE_NAMES_ZH if chinese else GRADE_NAMES_EN
    row("grade_distribution", "  ".join(f"{names[grade]}: {chain['grade_distribution'].get(grade, 0)}" for grade in GRADES))
    row("refusals", "  ".join(f"{code}: {count}" for code, count in sorted(summary["refusals_by_code"].items())) or "0")
    scenes = "  ".join(f"{step['step']}={'ok' if step.get('ok') else step.get('error_code')}" for step in summary["story"] if "ok" in step)
    row("story", scenes if summary["story_played"] else _label("no_story", chinese))
    row("assessments", sum(1 for item in summary["assessments"] if item["ok"]))
    run = summary["run"]
    row("tps", f"{run['transactions']} / {run['blocks']} / {run['transactions_per_second']:.1f}")
    row("wall", f"{run['wall_seconds']:.1f} s")
    roots = summary["state_roots"]
    verdict = _label("same", chinese, count=len(roots["by_node"])) if roots["identical"] else _label("differ", chinese)
    row("roots", f"{verdict}  {sorted(set(roots['by_node'].values()))[0][:16]}...", height=roots["height"])
    return "\n".join(lines)
