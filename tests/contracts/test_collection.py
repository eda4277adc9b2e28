import pytest

from node.contracts.queries import collector_mandate_active, get_case
from tests.contracts.harness import SUBJECT, Chain, make_genesis, ms_at, register_loan, setup_subject

T0 = ms_at("2024-01-31")
NUMBER = "aa" * 32


def mandate(chain, at, creditor="bank-a", agencies=("collector-1",), mandate_id="m1", evaluated_on="2024-01-31", **extra):
    payload = {"mandate_id": mandate_id, "agencies": list(agencies), "start_dpd": 1, "valid_from": "2024-01-01",
               "valid_until": "2025-12-31", "commission_rate_bp": 1_250}
    payload.update(extra)
    chain.ok(at, creditor, "mandate.grant", payload)
    for agency in agencies:
        if evaluated_on:
            chain.ok(at, creditor, "mandate.evaluate", {"mandate_id": mandate_id, "agency": agency, "evaluated_on": evaluated_on, "rating": 4})


def overdue_case(profile="CN", agencies=("collector-1",)):
    """A loan 1 day past due with an accepted outsourced case."""
    chain = Chain(make_genesis(profile=profile))
    setup_subject(chain, T0)
    register_loan(chain, T0, guarantors=[])
    mandate(chain, T0, agencies=agencies)
    chain.block(ms_at("2024-03-01", 9))
    case_id = chain.state.get("loan/L1")["case_id"]
    agency = chain.state.get(f"case/{case_id}")["agency"]
    chain.ok(ms_at("2024-03-01", 9), agency, "case.accept", {"case_id": case_id})
    return chain, case_id, agency


def contact(chain, agency, case_id, contact_id, at, channel="voice", outcome="reached", number=NUMBER, **extra):
    payload = {"case_id": case_id, "contact_id": contact_id, "at": at, "channel": channel, "target": "debtor",
               "number_hash": number, "collectors": ["staff-1"], "outcome": outcome}
    payload.update(extra)
    return chain.run(at, agency, "case.contact", payload).error_code


def test_case_opens_automatically_and_assigns():
    chain, case_id, agency = overdue_case(agencies=("collector-1", "collector-2"))
    case = get_case(chain.state, case_id)
    assert case["stage"] == "outsourced"
    assert agency in ("collector-1", "collector-2")
    assert [a["type"] for a in case["history"]] == ["opened", "stage", "accepted"]
    opened = chain.events_of("case.opened")
    assert opened[0].members == tuple(sorted(("bank-a", agency)))
    assert collector_mandate_active(chain.state, agency, SUBJECT, "2024-03-01")


def test_no_case_without_evaluation_stays_in_house():
    chain = Chain()
    setup_subject(chain, T0)
    register_loan(chain, T0)
    mandate(chain, T0, evaluated_on=None)
    chain.block(ms_at("2024-03-01"))
    case = chain.state.get(f"case/{chain.state.get('loan/L1')['case_id']}")
    assert case["stage"] == "in_house"
    assert case["agency"] is None


@pytest.mark.parametrize("evaluated_on, stage", [("2023-03-02", "outsourced"), ("2023-03-01", "in_house")])
def test_evaluation_365_days(evaluated_on, stage):
    chain = Chain()
    setup_subject(chain, T0)
    register_loan(chain, T0)
    mandate(chain, T0, evaluated_on=evaluated_on)
    chain.block(ms_at("2024-03-01"))  # 2023-03-02 is 365 days before, 2023-03-01 is 366
    assert chain.state.get(f"case/{chain.state.get('loan/L1')['case_id']}")["stage"] == stage


@pytest.mark.parametrize("hour, minute, code", [(7, 59, "contact_hours"), (8, 0, None), (21, 59, None), (22, 0, "contact_hours")])
def test_contact_hours(hour, minute, code):
    chain, case_id, agency = overdue_case()
    at = ms_at("2024-03-02", hour, minute)
    assert contact(chain, agency, case_id, "k1", at, channel="sms", outcome="delivered") == code


def test_fourth_voice_call_across_two_agencies():
    chain, case_id, agency = overdue_case()
    chain.ok(T0, "bank-b", "consent.grant", {"consent_id": "cb", "subject_id": SUBJECT, "grantee": "bank-b", "purpose": "data_sharing", "expires_on": "2099-12-31", "evidence": "02" * 32})
    register_loan(chain, T0, loan_id="L2", creditor="bank-b")
    mandate(chain, T0, creditor="bank-b", agencies=("collector-2",), mandate_id="m2")
    chain.block(ms_at("2024-03-02", 9))
    case_2 = chain.state.get("loan/L2")["case_id"]
    chain.ok(ms_at("2024-03-02", 9), "collector-2", "case.accept", {"case_id": case_2})
    assert contact(chain, agency, case_id, "v1", ms_at("2024-03-02", 9)) is None
    assert contact(chain, "collector-2", case_2, "v2", ms_at("2024-03-02", 10), number="bb" * 32) is None
    assert contact(chain, agency, case_id, "v3", ms_at("2024-03-02", 11)) is None
    assert contact(chain, "collector-2", case_2, "v4", ms_at("2024-03-02", 12), number="bb" * 32) == "voice_limit"
    assert contact(chain, "collector-2", case_2, "v5", ms_at("2024-03-02", 12), number="bb" * 32, outcome="no_answer") is None
    assert contact(chain, "collector-2", case_2, "v6", ms_at("2024-03-03", 9), number="bb" * 32) is None


def test_seventh_dial_of_a_number():
    chain, case_id, agency = overdue_case()
    for n in range(6):
        assert contact(chain, agency, case_id, f"d{n}", ms_at("2024-03-02", 9 + n), outcome="no_answer") is None
    assert contact(chain, agency, case_id, "d6", ms_at("2024-03-02", 16), outcome="no_answer") == "dial_limit"


def test_contact_person_rules():
    chain, case_id, agency = overdue_case()
    person = {"target": "contact_person", "number_hash": "cc" * 32}
    assert contact(chain, agency, case_id, "p1", ms_at("2024-03-02", 9), **person) == "target_not_allowed"
    assert contact(chain, agency, case_id, "d1", ms_at("2024-03-02", 9), outcome="no_answer") is None
    assert contact(chain, agency, case_id, "p2", ms_at("2024-03-02", 10), debt_disclosed=True, **person) == "contact_person_debt_data"
    assert contact(chain, agency, case_id, "p3", ms_at("2024-03-02", 10), outcome="refused", **person) is None
    assert contact(chain, agency, case_id, "p4", ms_at("2024-03-03", 10), **person) == "contact_blocked"
    assert contact(chain, agency, case_id, "g1", ms_at("2024-03-03", 10), target="guarantor", guarantor_id="7c" * 32) == "target_not_allowed"


@pytest.mark.parametrize("collectors, code", [(["s1"], "visit_needs_two"), (["s1", "s1"], "visit_needs_two"), (["s1", "s2"], None)])
def test_visit_needs_two_collectors(collectors, code):
    chain, case_id, agency = overdue_case()
    assert contact(chain, agency, case_id, "v", ms_at("2024-03-02", 10), channel="visit", number=None, collectors=collectors) == code


def test_dispute_pauses_collection_and_escalates():
    chain, case_id, agency = overdue_case()
    chain.ok(ms_at("2024-03-02", 9), "key:" + "6b" * 32, "dispute.open", {"dispute_id": "d1", "loan_id": "L1", "reason": "not_my_loan"})
    assert chain.events_of("dispute.opened")[0].members == tuple(sorted(("bank-a", agency)))
    assert contact(chain, agency, case_id, "c1", ms_at("2024-03-02", 10)) == "dispute_open"
    chain.block(ms_at("2024-03-22"))  # day 20 after opening: still open
    assert chain.state.get("dispute/d1")["status"] == "open"
    chain.block(ms_at("2024-03-23"))
    assert chain.state.get("dispute/d1")["status"] == "escalated"
    assert chain.error(ms_at("2024-03-23"), "bank-a", "dispute.resolve", {"dispute_id": "d1", "resolution": "confirmed"}) == "not_authorized"
    chain.ok(ms_at("2024-03-23"), "regulator", "dispute.resolve", {"dispute_id": "d1", "resolution": "confirmed"})
    assert contact(chain, agency, case_id, "c2", ms_at("2024-03-23", 10)) is None


def test_us_profile_written_dispute_and_weekly_calls():
    chain, case_id, agency = overdue_case(profile="US")
    assert contact(chain, agency, case_id, "late", ms_at("2024-03-02", 21, 0), channel="sms", outcome="delivered") == "contact_hours"
    chain.ok(ms_at("2024-03-02", 9), "key:" + "6b" * 32, "dispute.open", {"dispute_id": "d1", "loan_id": "L1", "reason": "amount_wrong"})
    for day in range(7):
        at = ms_at(f"2024-03-{2 + day:02d}", 10)
        assert contact(chain, agency, case_id, f"c{day}", at) is None
    assert contact(chain, agency, case_id, "c7", ms_at("2024-03-08", 11)) == "debt_call_limit"
    assert contact(chain, agency, case_id, "c8", ms_at("2024-03-09", 11)) is None
    chain.ok(ms_at("2024-03-09", 12), "key:" + "6b" * 32, "dispute.open", {"dispute_id": "d2", "loan_id": "L1", "reason": "amount_wrong", "written": True})
    assert contact(chain, agency, case_id, "c9", ms_at("2024-03-10", 11)) == "dispute_open"


def test_suspended_agency_stops_at_once():
    chain, case_id, agency = overdue_case()
    chain.ok(ms_at("2024-03-02", 9), "regulator", "complaint.file", {"complaint_id": "q1", "agency": agency, "category": "harassment", "statement_hash": "04" * 32})
    chain.ok(ms_at("2024-03-02", 9), "regulator", "member.suspend", {"member_id": agency, "reason": "complaint_upheld"})
    assert contact(chain, agency, case_id, "c1", ms_at("2024-03-02", 10)) == "sender_suspended"
    assert not collector_mandate_active(chain.state, "nobody", SUBJECT, "2024-03-02")


@pytest.mark.parametrize("answer_date, late", [("2024-04-01", False), ("2024-04-02", True)])
def test_complaint_30_days(answer_date, late):
    chain, _, agency = overdue_case()
    chain.ok(ms_at("2024-03-02"), "key:" + "6b" * 32, "complaint.file", {"complaint_id": "q1", "agency": agency, "category": "harassment", "statement_hash": "04" * 32})
    chain.ok(ms_at(answer_date), "regulator", "complaint.answer", {"complaint_id": "q1", "finding": "upheld", "answer_hash": "05" * 32})
    complaint = chain.state.get("complaint/q1")
    assert complaint["late"] is late
    assert bool(chain.events_of("complaint.overdue")) is late


def test_recovery_commission_and_close_on_repayment():
    chain, case_id, agency = overdue_case()
    chain.ok(ms_at("2024-03-02", 10), agency, "case.recovery", {"case_id": case_id, "recovery_id": "r1", "amount": 101_001, "recovered_on": "2024-03-02"})
    chain.ok(ms_at("2024-03-02", 11), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 101_001, "paid_on": "2024-03-02", "case_id": case_id, "recovery_id": "r1"})
    commission = chain.state.get(f"commission/{agency}/m1")
    assert commission["commission"] == 12_625  # 101001 * 12.5% = 12625.125
    chain.ok(ms_at("2024-03-03", 11), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p2", "amount": 201_999, "paid_on": "2024-03-03", "case_id": case_id})
    case = get_case(chain.state, case_id)
    assert case["status"] == "closed"
    assert case["outcome"] == "repaid"
    assert case["recovered"] == 303_000
    assert not collector_mandate_active(chain.state, agency, SUBJECT, "2024-03-03")


def test_promise_kept_only_in_full():
    chain, case_id, agency = overdue_case()
    chain.ok(ms_at("2024-03-02", 10), agency, "case.promise", {"case_id": case_id, "promise_id": "pr1", "amount": 50_000, "due_on": "2024-03-05"})
    chain.ok(ms_at("2024-03-05", 10), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 49_999, "paid_on": "2024-03-05"})
    chain.block(ms_at("2024-03-06"))
    assert chain.state.get(f"case/{case_id}")["promises"]["pr1"]["status"] == "broken"


def test_mandate_end_closes_cases_and_stages_move_forward():
    chain, case_id, agency = overdue_case()
    assert chain.error(ms_at("2024-03-02"), "bank-a", "case.advance", {"case_id": case_id, "stage": "outsourced", "reason": "other"}) == "invalid_stage"
    chain.ok(ms_at("2024-03-02"), "bank-a", "case.advance", {"case_id": case_id, "stage": "legal", "reason": "legal_action"})
    assert chain.error(ms_at("2024-03-02"), agency, "case.contact", {"case_id": case_id, "contact_id": "x", "at": ms_at("2024-03-02", 10), "channel": "sms", "target": "debtor", "number_hash": NUMBER, "collectors": ["s"], "outcome": "delivered"}) == "not_assigned"
    chain.ok(ms_at("2024-03-03"), "bank-a", "mandate.end", {"mandate_id": "m1", "reason": "contract_ended"})
    chain2, case_2, agency_2 = overdue_case()
    chain2.ok(ms_at("2024-03-03"), "bank-a", "mandate.end", {"mandate_id": "m1", "reason": "contract_ended"})
    assert chain2.state.get(f"case/{case_2}")["outcome"] == "mandate_ended"
    assert chain2.state.get("loan/L1")["case_id"] is None
    chain2.block(ms_at("2024-03-10"))
    assert chain2.state.get("loan/L1")["case_id"] is None
