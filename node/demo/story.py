"""Scenes the demo plays beside the replay: rule breaks refused on chain, a dispute, a complaint, credit assessments.

`run_story` picks one open case of the collection agency and, over a few chain
days, sends:

- three lawful voice calls that reach the debtor, then a fourth on the same day
  (refused: `voice_limit`, rule C4);
- a visit by one collector (refused: `visit_needs_two`, C8), then one by two;
- a call at 22:30 (refused: `contact_hours`, C3);
- the debtor's complaint about the agency, answered by the regulator (C14);
- the debtor's dispute of the loan record, signed with the debtor's own key. A
  call while it is open is refused with `dispute_open` (C13). The creditor
  then confirms the record and collection resumes.

`run_assessments` has the credit agency record scorecard assessments with the
subject's consent (D1, D12) on a few dates.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import nacl.signing

from node.contracts.dates import add_days
from node.contracts.scorecard import behavioural_score
from node.demo.chainio import ChainIO, Submitted
from node.demo.collector import CALL_MARGIN_MINUTES, COLLECTOR_IDS, MINUTE_MS, CaseInfo, CollectionAgency, ContactHours, call_time_ms, wait_contact_time

logger = logging.getLogger("xinlian.demo.story")

RECEIPT_TIMEOUT_S = 30.0
# The case chosen for the story has no repayment in this many days from the story's first day.
QUIET_DAYS = 12
EXPECTED_REFUSALS = {"fourth_call": "voice_limit", "lone_visit": "visit_needs_two", "late_call": "contact_hours", "call_in_dispute": "dispute_open"}


def subject_signing_key(subject_id: str) -> nacl.signing.SigningKey:
    """Derive the stand-in debtor's own key from its subject id (demo subjects hold no real keys)."""
    return nacl.signing.SigningKey(hashlib.sha256(f"xinlian/demo/subject-key/{subject_id}".encode()).digest())


def demo_hash(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


@dataclass
class StoryLog:
    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, step: str, record: Submitted, date: str) -> None:
        receipt = record.receipt or {}
        self.steps.append({"step": step, "date": date, "type": record.tx_type, "ok": bool(receipt.get("ok")), "error_code": receipt.get("error_code"), "height": record.height})


@dataclass
class StoryContext:
    io: ChainIO
    agency: CollectionAgency
    loans: dict[str, dict[str, Any]]  # loan id -> {"subject_id", "creditor", "payment_dates"}
    regulator: str
    hours: ContactHours
    log: StoryLog = field(default_factory=StoryLog)


def _quiet_case(context: StoryContext, date: str) -> CaseInfo | None:
    """Find an accepted open case whose loan has no repayment from `date` for QUIET_DAYS days."""
    end = add_days(date, QUIET_DAYS)
    for info in context.agency.open_accepted_cases():
        dates = context.loans[info.loan_id]["payment_dates"]
        if not any(date <= paid_on <= end for paid_on in dates):
            return info
    return None


async def _send(context: StoryContext, step: str, member_id: str, tx_type: str, payload: dict[str, Any], date: str) -> Submitted:
    record = await context.io.submit_as_member(member_id, tx_type, payload, "story")
    await context.io.wait_all([record], RECEIPT_TIMEOUT_S)
    context.log.add(step, record, date)
    return record


async def _send_as_subject(context: StoryContext, step: str, subject_id: str, node_member: str, tx_type: str, payload: dict[str, Any], date: str) -> Submitted:
    key = subject_signing_key(subject_id)
    record = (await context.io.submit(node_member, [(key, "subject", tx_type, payload, None)], "story"))[0]
    await context.io.wait_all([record], RECEIPT_TIMEOUT_S)
    context.log.add(step, record, date)
    return record


def _minutes_before(now_ms: int, minutes: int) -> int:
    at_ms = now_ms - minutes * MINUTE_MS
    return at_ms - at_ms % MINUTE_MS


async def _calls_day(context: StoryContext, info: CaseInfo, date: str) -> str:
    """Three lawful calls, a fourth one, a lone visit and a visit in pair in the hour before noon; a call at 22:30.

    Plays on `date`, or on the first day when chain time is before 20:00 if
    chain time has passed that. Returns the day played.
    """
    io = context.io
    agency = context.agency.member_id
    now_ms = io.now_ms()
    if io.local_date(now_ms) > date:
        date = io.local_date(now_ms)
        if io.local_minute(now_ms) >= 20 * 60:
            date = add_days(date, 1)
    day_start = io.day_start_ms(date)
    now_ms = await io.wait_chain_time(day_start + 12 * 60 * MINUTE_MS)
    key = io.keys[agency]
    scenes = [
        ("lawful_call_1", context.agency.contact_payload(info, _minutes_before(now_ms, 60), "voice", "reached", COLLECTOR_IDS[:1])),
        ("lawful_call_2", context.agency.contact_payload(info, _minutes_before(now_ms, 50), "voice", "reached", COLLECTOR_IDS[:1])),
        ("lawful_call_3", context.agency.contact_payload(info, _minutes_before(now_ms, 40), "voice", "reached", COLLECTOR_IDS[:1])),
        ("fourth_call", context.agency.contact_payload(info, _minutes_before(now_ms, 30), "voice", "reached", COLLECTOR_IDS[:1])),
        ("lone_visit", context.agency.contact_payload(info, _minutes_before(now_ms, 20), "visit", "reached", COLLECTOR_IDS[:1])),
        ("visit_in_pair", context.agency.contact_payload(info, _minutes_before(now_ms, 10), "visit", "reached", COLLECTOR_IDS)),
    ]
    records = await io.submit(agency, [(key, agency, "case.contact", payload, None) for _, payload in scenes], "story")
    await io.wait_all(records, RECEIPT_TIMEOUT_S)
    for (step, _), record in zip(scenes, records, strict=True):
        context.log.add(step, record, date)

    # 22:30 is outside the contact hours of both parameter profiles (they end at 22:00 or 21:00).
    late_ms = day_start + (22 * 60 + 30) * MINUTE_MS
    await io.wait_chain_time(late_ms + CALL_MARGIN_MINUTES * MINUTE_MS)
    late = context.agency.contact_payload(info, late_ms, "voice", "reached", COLLECTOR_IDS[:1])
    await _send(context, "late_call", agency, "case.contact", late, date)
    return date


async def _lawful_call(context: StoryContext, step: str, info: CaseInfo, date: str) -> None:
    """Place a call that keeps every contact rule, a few chain minutes before the chain time, once the hours open on `date`."""
    io = context.io
    now_ms = await wait_contact_time(io, context.hours, io.day_start_ms(date))
    payload = context.agency.contact_payload(info, call_time_ms(now_ms), "voice", "no_answer", COLLECTOR_IDS[:1])
    await _send(context, step, context.agency.member_id, "case.contact", payload, date)


async def run_story(context: StoryContext, earliest_date: str, last_date: str) -> StoryLog:
    """Play the scenes on the first day from `earliest_date` with a quiet accepted case; give up after `last_date`."""
    io = context.io
    date = earliest_date
    info = None
    while date <= last_date:
        await io.wait_chain_time(io.day_start_ms(date))
        info = _quiet_case(context, date)
        if info is not None:
            break
        date = add_days(date, 7)
    if info is None:
        logger.warning("no quiet open case between %s and %s: the story scenes were skipped", earliest_date, last_date)
        return context.log

    loan = context.loans[info.loan_id]
    subject_id, creditor, agency = loan["subject_id"], loan["creditor"], context.agency.member_id
    context.log.steps.append({"step": "chosen_case", "date": date, "case_id": info.case_id, "loan_id": info.loan_id})
    date = await _calls_day(context, info, date)

    day = add_days(date, 1)
    await io.wait_chain_time(io.day_start_ms(day))
    complaint = {"complaint_id": f"complaint-{info.loan_id}", "agency": agency, "category": "contact_hours", "statement_hash": demo_hash("complaint", info.case_id)}
    await _send_as_subject(context, "complaint_filed", subject_id, creditor, "complaint.file", complaint, day)

    day = add_days(date, 2)
    await io.wait_chain_time(io.day_start_ms(day))
    # The chain takes a reason code; the debtor's written statement stays off chain, only its hash is sent.
    statement_hash = demo_hash("dispute-statement", info.case_id)
    dispute = {"dispute_id": f"dispute-{info.loan_id}", "loan_id": info.loan_id, "reason": "already_paid", "note_hash": statement_hash, "written": True}
    await _send_as_subject(context, "dispute_opened", subject_id, creditor, "dispute.open", dispute, day)
    await _lawful_call(context, "call_in_dispute", info, day)

    day = add_days(date, 4)
    await io.wait_chain_time(io.day_start_ms(day))
    answer = {"complaint_id": complaint["complaint_id"], "finding": "upheld", "answer_hash": demo_hash("answer", info.case_id)}
    await _send(context, "complaint_answered", context.regulator, "complaint.answer", answer, day)

    day = add_days(date, 8)
    await io.wait_chain_time(io.day_start_ms(day))
    resolution = {"dispute_id": dispute["dispute_id"], "resolution": "confirmed", "note_hash": demo_hash("dispute-resolution", info.case_id)}
    await _send(context, "dispute_resolved", creditor, "dispute.resolve", resolution, day)
    await _lawful_call(context, "call_after_dispute", info, add_days(date, 9))
    return context.log


@dataclass
class AssessmentPlan:
    agency: str
    dates: list[str]
    subjects: dict[str, list[tuple[str, str]]]  # date -> [(subject_id, loan ids joined by ",")] registered before it
    consent_expires_on: str


async def run_assessments(io: ChainIO, plan: AssessmentPlan, base_points: int) -> list[dict[str, Any]]:
    """On each plan date, take consent (attested) where missing and record each subject's scorecard assessment."""
    consented: set[str] = set()
    results = []
    for date in plan.dates:
        await io.wait_chain_time(io.day_start_ms(date))
        consents = []
        for subject_id, _ in plan.subjects[date]:
            if subject_id in consented:
                continue
            consent_id = f"assess-{subject_id[:16]}"
            payload = {"consent_id": consent_id, "subject_id": subject_id, "grantee": plan.agency, "purpose": "assessment", "expires_on": plan.consent_expires_on, "evidence": demo_hash("assessment-consent", subject_id)}
            consents.append((io.keys[plan.agency], plan.agency, "consent.grant", payload, None))
            consented.add(subject_id)
        if consents:
            await io.wait_all(await io.submit(plan.agency, consents, "assessment"), RECEIPT_TIMEOUT_S)
        records = []
        for subject_id, loan_ids in plan.subjects[date]:
            loans = [await io.read(f"/v1/loans/{loan_id}", plan.agency) for loan_id in loan_ids.split(",")]
            scored = behavioural_score([loan for loan in loans if loan is not None], date, base_points)
            payload = {
                "assessment_id": f"score-{subject_id[:16]}-{date}",
                "subject_id": subject_id,
                "score": scored["score"],
                "grade": _grade(scored["score"]),
                "model_id": "xinlian-behavioural-v1",
                "base_points": scored["base_points"],
                "points": scored["points"],
                "valid_until": add_days(date, 365),
            }
            records.append((io.keys[plan.agency], plan.agency, "assessment.record", payload, None))
        submitted = await io.wait_all(await io.submit(plan.agency, records, "assessment"), RECEIPT_TIMEOUT_S)
        results.extend({"date": date, "ok": bool((record.receipt or {}).get("ok")), "score": record.payload["score"], "error_code": (record.receipt or {}).get("error_code")} for record in submitted)
    return results


def _grade(score: int) -> str:
    for bound, grade in ((700, "A"), (650, "B"), (600, "C"), (550, "D")):
        if score >= bound:
            return grade
    return "E"
