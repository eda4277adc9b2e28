"""D5: an overdue loan becomes a negative record in reports only after a notice to the subject."""

from node.contracts.queries import credit_report, get_loan
from tests.contracts.harness import SUBJECT, SUBJECT_KEY, Chain, ms_at, register_loan, setup_subject

T0 = ms_at("2024-01-31")
FIRST_OVERDUE = "2024-03-01"  # the day after the first due date, 2024-02-29
SUBJECT_SIGNER = "key:" + SUBJECT_KEY


def notice(notice_id: str, sent_on: str, loan_id: str = "L1") -> dict:
    return {"notice_id": notice_id, "loan_id": loan_id, "notice_hash": "03" * 32, "sent_on": sent_on}


def statement(statement_id: str, loan_id: str = "L1") -> dict:
    return {"statement_id": statement_id, "subject_id": SUBJECT, "loan_id": loan_id, "statement_hash": "06" * 32}


def new_loan(**extra) -> Chain:
    chain = Chain()
    setup_subject(chain, T0)
    register_loan(chain, T0, **extra)
    return chain


def test_overdue_without_notice_requests_one():
    chain = new_loan()
    chain.block(ms_at(FIRST_OVERDUE))
    chain.block(ms_at("2024-05-30"))  # day 91: the grade changes, no second request
    requests = chain.events_of("notice.required")
    assert len(requests) == 1
    assert requests[0].members == ("bank-a",)
    assert requests[0].data == {"loan_id": "L1", "subject_id": SUBJECT, "dpd": 1, "overdue_on": FIRST_OVERDUE}
    stored = chain.state.get("loan/L1")
    assert stored["negative_on"] is None
    assert stored["negative_pending_on"] == FIRST_OVERDUE


def test_report_withholds_unnotified_delinquency():
    chain = new_loan()
    chain.block(ms_at("2024-05-30"))
    assert get_loan(chain.state, "L1", "2024-05-30")["dpd"] == 91  # the creditor's own view is complete
    report = credit_report(chain.state, SUBJECT, "2024-05-30")
    entry = report["loans"][0]
    assert entry["negative"] is False
    assert entry["dpd"] == 0
    assert entry["max_dpd"] == 0
    assert entry["classification"] == "normal"
    assert entry["outstanding"] == 303_000
    assert report["summary"]["worst_classification"] == "normal"
    assert report["behavioural_score"]["inputs"]["max_dpd_24m"] == 0


def test_notice_turns_overdue_loan_negative():
    chain = new_loan()
    chain.block(ms_at("2024-05-30"))
    at = ms_at("2024-06-03")
    assert chain.error(at, SUBJECT_SIGNER, "statement.add", statement("st0")) == "not_negative_record"
    chain.ok(at, "bank-a", "notice.record", notice("n1", "2024-06-02"))
    assert chain.state.get("loan/L1")["negative_on"] == "2024-06-02"
    assert chain.events_of("notice.recorded")[0].data["negative_on"] == "2024-06-02"
    entry = credit_report(chain.state, SUBJECT, "2024-06-03")["loans"][0]
    assert entry["negative"] is True
    assert entry["dpd"] == 95
    assert entry["classification"] == "substandard"
    chain.ok(at, SUBJECT_SIGNER, "statement.add", statement("st1"))


def test_backdated_notice_starts_at_overdue_day():
    chain = new_loan()
    chain.block(ms_at("2024-03-05"))
    chain.ok(ms_at("2024-03-06"), "bank-a", "notice.record", notice("n1", "2024-02-20"))
    assert chain.state.get("loan/L1")["negative_on"] == "2024-03-05"


def test_notice_same_day_as_overdue():
    chain = new_loan()
    chain.block(ms_at(FIRST_OVERDUE), [])
    chain.ok(ms_at(FIRST_OVERDUE, 13), "bank-a", "notice.record", notice("n1", FIRST_OVERDUE))
    assert chain.state.get("loan/L1")["negative_on"] == FIRST_OVERDUE
    assert credit_report(chain.state, SUBJECT, FIRST_OVERDUE)["loans"][0]["dpd"] == 1


def test_prior_notice_makes_overdue_negative_at_once():
    chain = new_loan()
    chain.ok(ms_at("2024-02-29"), "bank-a", "notice.record", notice("n1", "2024-02-29"))
    assert chain.state.get("loan/L1")["negative_on"] is None  # nothing overdue yet
    chain.block(ms_at(FIRST_OVERDUE))
    assert chain.events_of("notice.required") == []
    assert chain.state.get("loan/L1")["negative_on"] == FIRST_OVERDUE
    assert credit_report(chain.state, SUBJECT, FIRST_OVERDUE)["loans"][0]["negative"] is True


def test_notice_covers_only_its_loan():
    chain = new_loan()
    register_loan(chain, T0, loan_id="L2")
    chain.block(ms_at("2024-03-10"))
    chain.ok(ms_at("2024-03-10"), "bank-a", "notice.record", notice("n1", "2024-03-10", loan_id="L1"))
    entries = {entry["loan_id"]: entry for entry in credit_report(chain.state, SUBJECT, "2024-03-10")["loans"]}
    assert entries["L1"]["negative"] is True
    assert entries["L1"]["dpd"] == 10
    assert entries["L2"]["negative"] is False
    assert entries["L2"]["dpd"] == 0
    assert len(chain.events_of("notice.required")) == 2


def test_cured_unnotified_loan_leaves_no_record():
    chain = new_loan()
    chain.block(ms_at("2024-03-10"))
    chain.ok(ms_at("2024-03-11"), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 303_000, "paid_on": "2024-03-11"})
    entry = credit_report(chain.state, SUBJECT, "2024-03-12")["loans"][0]
    assert entry["status"] == "repaid"
    assert entry["negative"] is False
    assert entry["max_dpd"] == 0
    assert chain.state.get("loan/L1")["max_dpd"] == 11
