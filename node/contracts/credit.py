"""Credit data: notices before negative records (D5), statements (D7), assessments (D3, D4, D12, D14),
report queries (D2, D8), data access between members (D10) and human review requests (D12).

State keys:
  notice/<loan_id>/<notice_id>               a notice to the subject before negative reporting
  statement/<subject_id>/<statement_id>      the subject's statement on a negative record
  assessment/<assessment_id>                 a credit assessment with the points of every input
  assessment_by_subject/<subject_id>/<id>    1
  query_log/<subject_id>/<query_id>          every report query: member, date, purpose
  self_reports/<subject_id>/<year>           own reports taken this year
  access_log/<subject_id>/<access_id>        every access to off-chain personal data
  review/<review_id>                         a request for human review of an assessment
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from node.contracts.consent import Purpose, check_subject_or_evidence, require_consent
from node.contracts.context import TxContext, TxRoute, route
from node.contracts.erasure import require_not_erased
from node.contracts.errors import fail
from node.contracts.models import DateText, Hex64, Payload, RecordId, ReasonCode
from node.contracts.registry import get_member_or_fail, get_subject_or_fail
from node.execution import Event

# D3: categories that may never be collected, matched as words of an input name.
FORBIDDEN_WORDS = ("religion", "religious", "gene", "genes", "genetic", "fingerprint", "fingerprints", "blood", "disease", "diseases", "medical", "health")
# D4: categories that need explicit written consent.
WRITTEN_CONSENT_WORDS = ("income", "salary", "deposit", "deposits", "property", "assets", "real_estate")
INPUT_NAME = r"^[a-z][a-z0-9_]{0,63}$"
MEMBER_ROLES = ("bank", "credit_agency", "collector", "regulator")


class NoticePayload(Payload):
    notice_id: RecordId
    loan_id: RecordId
    notice_hash: Hex64
    sent_on: DateText


class StatementPayload(Payload):
    statement_id: RecordId
    subject_id: Hex64
    loan_id: RecordId
    statement_hash: Hex64
    evidence: Hex64 | None = None


class AssessmentPayload(Payload):
    assessment_id: RecordId
    subject_id: Hex64
    score: int = Field(ge=-100_000, le=100_000)
    grade: RecordId
    model_id: RecordId
    base_points: int = Field(ge=-100_000, le=100_000)
    points: dict[str, int] = Field(min_length=1, max_length=64)
    valid_until: DateText


class ReportQueryPayload(Payload):
    query_id: RecordId
    subject_id: Hex64
    purpose: Purpose = "credit_query"
    paid: bool = False


class DataAccessPayload(Payload):
    access_id: RecordId
    subject_id: Hex64
    holder: RecordId
    purpose: Purpose
    record_hash: Hex64 | None = None


class ReviewPayload(Payload):
    review_id: RecordId
    assessment_id: RecordId
    reason: ReasonCode
    note_hash: Hex64 | None = None


def _words(name: str) -> set[str]:
    parts = name.split("_")
    return set(parts) | {"_".join(parts[i:i + 2]) for i in range(len(parts) - 1)}


def notice_sent(state: Any, loan_id: str, today: str) -> bool:
    """Check whether a notice to the subject about the loan was sent on or before `today` (D5)."""
    return any(notice["sent_on"] <= today for _, notice in state.scan(f"notice/{loan_id}/"))


def require_notice(state: Any, loan: dict[str, Any], today: str) -> None:
    """D5: a negative record needs a notice to the subject sent on or before today."""
    if not notice_sent(state, loan["loan_id"], today):
        fail("notice_required", loan_id=loan["loan_id"])


def is_negative(loan: dict[str, Any]) -> bool:
    """Check whether the loan is a negative record, so reports show its delinquency (D5, D6)."""
    return loan["negative_on"] is not None


def mark_overdue_negative(state: Any, loan: dict[str, Any], today: str, dpd: int, events: list[Event]) -> None:
    """Make an overdue loan a negative record if the subject was notified, else ask the creditor for the notice (D5).

    Without a notice the loan stays out of reports as a negative record, and
    `negative_pending_on` keeps the day it first became overdue. The
    `notice.required` event goes to the creditor once; `notice.record` then
    makes the record negative.
    """
    if loan["negative_on"] is not None:
        return
    if notice_sent(state, loan["loan_id"], today):
        loan["negative_on"] = today
        return
    if loan.get("negative_pending_on") is None:
        loan["negative_pending_on"] = today
        data = {"loan_id": loan["loan_id"], "subject_id": loan["subject_id"], "dpd": dpd, "overdue_on": today}
        events.append(Event("notice.required", data, (loan["creditor"],)))


def record_notice(tc: TxContext, payload: NoticePayload) -> None:
    from node.contracts.loans import creditor_loan

    loan = creditor_loan(tc, payload.loan_id)
    key = f"notice/{payload.loan_id}/{payload.notice_id}"
    if tc.state.get(key) is not None:
        fail("duplicate_id", notice_id=payload.notice_id)
    if payload.sent_on > tc.today:
        fail("invalid_date", sent_on=payload.sent_on, reason="notice date is in the future")
    tc.state.put(key, {"notice_id": payload.notice_id, "loan_id": payload.loan_id, "subject_id": loan["subject_id"], "notice_hash": payload.notice_hash, "sent_on": payload.sent_on, "recorded_on": tc.today})
    pending_on = loan.get("negative_pending_on")
    if loan["negative_on"] is None and pending_on is not None:
        # The record turns negative from the later of the overdue day and the notice day.
        loan["negative_on"] = max(pending_on, payload.sent_on)
        tc.state.put(f"loan/{payload.loan_id}", loan)
    tc.emit("notice.recorded", {"loan_id": payload.loan_id, "notice_id": payload.notice_id, "negative_on": loan["negative_on"]}, (tc.sender.member_id,))


def add_statement(tc: TxContext, payload: StatementPayload) -> None:
    check_subject_or_evidence(tc, payload.subject_id, payload.evidence)
    loan = tc.state.get(f"loan/{payload.loan_id}")
    if loan is None or loan["subject_id"] != payload.subject_id:
        fail("not_found", loan_id=payload.loan_id)
    if not is_negative(loan):
        fail("not_negative_record", loan_id=payload.loan_id)
    key = f"statement/{payload.subject_id}/{payload.statement_id}"
    if tc.state.get(key) is not None:
        fail("duplicate_id", statement_id=payload.statement_id)
    tc.state.put(key, {"statement_id": payload.statement_id, "loan_id": payload.loan_id, "statement_hash": payload.statement_hash, "added_on": tc.today})
    tc.emit("statement.added", {"loan_id": payload.loan_id, "statement_id": payload.statement_id}, (loan["creditor"],))


def _check_input_names(state: Any, payload: AssessmentPayload, agency: str, today: str) -> None:
    needs_written = False
    for name in sorted(payload.points):
        if not re.match(INPUT_NAME, name):
            fail("invalid_payload", errors=[{"loc": f"points.{name}", "type": "pattern", "msg": "input names are lower_snake_case"}])
        words = _words(name)
        if words & set(FORBIDDEN_WORDS):
            fail("forbidden_field", field=name)
        if words & set(WRITTEN_CONSENT_WORDS):
            needs_written = True
    require_consent(state, payload.subject_id, agency, "assessment", today, written=needs_written)


def record_assessment(tc: TxContext, payload: AssessmentPayload) -> None:
    agency = get_member_or_fail(tc.state, tc.sender.member_id)
    if not agency["licensed"]:
        fail("agency_not_licensed", agency=agency["member_id"])
    if tc.state.get(f"assessment/{payload.assessment_id}") is not None:
        fail("duplicate_id", assessment_id=payload.assessment_id)
    get_subject_or_fail(tc.state, payload.subject_id)
    require_not_erased(tc.state, payload.subject_id)
    _check_input_names(tc.state, payload, agency["member_id"], tc.today)
    total = payload.base_points + sum(payload.points[name] for name in sorted(payload.points))
    if total != payload.score:
        fail("points_mismatch", score=payload.score, base_points=payload.base_points, points_total=total - payload.base_points)
    record = payload.model_dump()
    record.update({"agency": agency["member_id"], "recorded_on": tc.today, "review": None})
    tc.state.put(f"assessment/{payload.assessment_id}", record)
    tc.state.put(f"assessment_by_subject/{payload.subject_id}/{payload.assessment_id}", 1)
    tc.emit("assessment.recorded", {"assessment_id": payload.assessment_id, "subject_id": payload.subject_id}, (agency["member_id"],))


def query_report(tc: TxContext, payload: ReportQueryPayload) -> None:
    """D2: a member needs consent naming it for the purpose; the subject itself gets N free reports a year (D8)."""
    get_subject_or_fail(tc.state, payload.subject_id)
    key = f"query_log/{payload.subject_id}/{payload.query_id}"
    if tc.state.get(key) is not None:
        fail("duplicate_id", query_id=payload.query_id)
    if tc.sender.is_member:
        if tc.sender.role != "regulator":
            require_consent(tc.state, payload.subject_id, tc.sender.member_id, payload.purpose, tc.today)
        querier = tc.sender.member_id
    else:
        if tc.sender.subject_id != payload.subject_id:
            fail("not_authorized", subject_id=payload.subject_id)
        year_key = f"self_reports/{payload.subject_id}/{tc.today[:4]}"
        taken = tc.state.get(year_key) or 0
        if taken >= tc.params["free_self_reports_per_year"] and not payload.paid:
            fail("free_reports_used", taken=taken, free=tc.params["free_self_reports_per_year"])
        tc.state.put(year_key, taken + 1)
        querier = "subject"
    tc.state.put(key, {"query_id": payload.query_id, "querier": querier, "purpose": payload.purpose, "on": tc.today, "at": tc.block.time_ms, "paid": payload.paid})
    tc.emit("report.queried", {"subject_id": payload.subject_id, "query_id": payload.query_id, "querier": querier}, ())


def record_access(tc: TxContext, payload: DataAccessPayload) -> None:
    """D10: a member reading another member's off-chain record needs consent naming it; every access is logged."""
    get_subject_or_fail(tc.state, payload.subject_id)
    get_member_or_fail(tc.state, payload.holder)
    # D13: erased or frozen off-chain data is served to nobody, the regulator included.
    require_not_erased(tc.state, payload.subject_id)
    key = f"access_log/{payload.subject_id}/{payload.access_id}"
    if tc.state.get(key) is not None:
        fail("duplicate_id", access_id=payload.access_id)
    if tc.sender.role != "regulator":
        from node.contracts.collection import collector_mandate_active

        collecting = payload.purpose == "collection" and collector_mandate_active(tc.state, tc.sender.member_id, payload.subject_id, tc.today)
        if not collecting:
            require_consent(tc.state, payload.subject_id, tc.sender.member_id, payload.purpose, tc.today)
    tc.state.put(key, {"access_id": payload.access_id, "reader": tc.sender.member_id, "holder": payload.holder, "purpose": payload.purpose, "record_hash": payload.record_hash, "on": tc.today, "at": tc.block.time_ms})
    tc.emit("data.accessed", {"subject_id": payload.subject_id, "access_id": payload.access_id, "reader": tc.sender.member_id}, (payload.holder,))


def request_review(tc: TxContext, payload: ReviewPayload) -> None:
    assessment = tc.state.get(f"assessment/{payload.assessment_id}")
    if assessment is None or tc.sender.subject_id != assessment["subject_id"]:
        fail("not_found", assessment_id=payload.assessment_id)
    if tc.state.get(f"review/{payload.review_id}") is not None:
        fail("duplicate_id", review_id=payload.review_id)
    tc.state.put(f"review/{payload.review_id}", {"review_id": payload.review_id, "assessment_id": payload.assessment_id, "reason": payload.reason, "note_hash": payload.note_hash, "requested_on": tc.today, "status": "requested"})
    assessment["review"] = payload.review_id
    tc.state.put(f"assessment/{payload.assessment_id}", assessment)
    tc.emit("review.requested", {"assessment_id": payload.assessment_id, "review_id": payload.review_id}, (assessment["agency"],))


ROUTES: dict[str, TxRoute] = {
    "notice.record": route(NoticePayload, record_notice, ("bank",)),
    "statement.add": route(StatementPayload, add_statement, MEMBER_ROLES, subject_allowed=True),
    "assessment.record": route(AssessmentPayload, record_assessment, ("credit_agency",)),
    "report.query": route(ReportQueryPayload, query_report, MEMBER_ROLES, subject_allowed=True),
    "data.access": route(DataAccessPayload, record_access, MEMBER_ROLES),
    "review.request": route(ReviewPayload, request_review, (), subject_allowed=True),
}
