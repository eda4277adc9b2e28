"""Dated deadlines run by the time step: mandate start, proposal expiry and consent expiry."""

from node.contracts.queries import consent_state
from tests.contracts.harness import SUBJECT, SUBJECT_KEY, Chain, ms_at, register_loan, setup_subject

T0 = ms_at("2024-01-31")
SUBJECT_SIGNER = "key:" + SUBJECT_KEY


def overdue_loan_with_future_mandate(valid_from: str, start_dpd: int = 1) -> Chain:
    chain = Chain()
    setup_subject(chain, T0)
    register_loan(chain, T0)  # first due date 2024-02-29
    chain.ok(T0, "bank-a", "mandate.grant", {
        "mandate_id": "m1", "agencies": ["collector-1"], "start_dpd": start_dpd, "valid_from": valid_from, "valid_until": "2024-12-31",
    })
    chain.ok(T0, "bank-a", "mandate.evaluate", {"mandate_id": "m1", "agency": "collector-1", "evaluated_on": "2024-01-31", "rating": 4})
    return chain


def test_mandate_start_opens_case_on_valid_from():
    chain = overdue_loan_with_future_mandate("2024-03-10")
    assert ("deadline/2024-03-10/mandate_start/m1", 1) in list(chain.state.scan("deadline/"))
    chain.block(ms_at("2024-03-01"))
    chain.block(ms_at("2024-03-09"))
    assert chain.state.get("loan/L1")["case_id"] is None
    assert chain.events_of("case.opened") == []
    chain.block(ms_at("2024-03-10"))
    opened = chain.events_of("case.opened")
    assert len(opened) == 1
    assert opened[0].data["dpd"] == 10
    assert opened[0].data["agency"] == "collector-1"
    assert chain.state.get("loan/L1")["case_id"] == opened[0].data["case_id"]


def test_mandate_start_waits_for_start_dpd():
    chain = overdue_loan_with_future_mandate("2024-03-10", start_dpd=15)
    chain.block(ms_at("2024-03-10"))
    assert chain.events_of("case.opened") == []
    assert chain.state.get("loan/L1")["next_event_on"] == "2024-03-15"
    chain.block(ms_at("2024-03-14"))
    assert chain.events_of("case.opened") == []
    chain.block(ms_at("2024-03-15"))
    assert [event.data["dpd"] for event in chain.events_of("case.opened")] == [15]


def test_mandate_start_skips_ended_mandate():
    chain = overdue_loan_with_future_mandate("2024-03-10")
    chain.ok(ms_at("2024-03-05"), "bank-a", "mandate.end", {"mandate_id": "m1", "reason": "contract_ended"})
    chain.block(ms_at("2024-03-10"))
    assert chain.events_of("case.opened") == []
    assert chain.state.get("loan/L1")["case_id"] is None


def propose(chain: Chain, at: int, proposal_id: str = "p1") -> None:
    chain.ok(at, "bank-a", "governance.propose", {"proposal_id": proposal_id, "action": {"kind": "set_params", "params": {"scorecard_base_points": 500}}})


def test_proposal_vote_on_last_open_day():
    chain = Chain()
    propose(chain, ms_at("2024-02-01"))
    assert chain.state.get("proposal/p1")["expires_on"] == "2024-03-02"  # 30 days open
    chain.ok(ms_at("2024-03-02", 23, 59), "bank-b", "governance.vote", {"proposal_id": "p1", "approve": True})
    assert chain.state.get("proposal/p1")["status"] == "open"


def test_proposal_expires_day_after():
    chain = Chain()
    propose(chain, ms_at("2024-02-01"))
    chain.block(ms_at("2024-03-02", 23, 59))
    assert chain.state.get("proposal/p1")["status"] == "open"
    receipt = chain.run(ms_at("2024-03-03", 0, 0), "bank-b", "governance.vote", {"proposal_id": "p1", "approve": True})
    assert receipt.error_code == "proposal_closed"
    proposal = chain.state.get("proposal/p1")
    assert proposal["status"] == "expired"
    assert proposal["decided_on"] == "2024-03-03"
    decided = chain.events_of("governance.decided")
    assert [event.data for event in decided] == [{"proposal_id": "p1", "status": "expired", "kind": "set_params"}]
    assert chain.state.get("params")["scorecard_base_points"] == 600


def test_decided_proposal_does_not_expire():
    chain = Chain()
    at = ms_at("2024-02-01")
    propose(chain, at)
    for voter in ("bank-b", "agency-x", "agency-u", "regulator"):
        chain.ok(at, voter, "governance.vote", {"proposal_id": "p1", "approve": True})
    assert chain.state.get("proposal/p1")["status"] == "approved"
    chain.block(ms_at("2024-03-03"))
    assert chain.state.get("proposal/p1")["status"] == "approved"
    assert [event.data["status"] for event in chain.events_of("governance.decided")] == ["approved"]


def grant(chain: Chain, consent_id: str, expires_on: str) -> None:
    chain.ok(T0, SUBJECT_SIGNER, "consent.grant", {
        "consent_id": consent_id, "subject_id": SUBJECT, "grantee": "bank-b", "purpose": "credit_query", "expires_on": expires_on,
    })


def test_consent_expired_event_day_after():
    chain = Chain()
    setup_subject(chain, T0)
    grant(chain, "q1", "2024-03-31")
    chain.block(ms_at("2024-03-31", 23, 59))
    assert chain.events_of("consent.expired") == []
    assert consent_state(chain.state, SUBJECT, "bank-b", "credit_query", "2024-03-31") == "active"
    chain.block(ms_at("2024-04-01", 0, 0))
    expired = chain.events_of("consent.expired")
    assert len(expired) == 1
    assert expired[0].data == {"consent_id": "q1", "subject_id": SUBJECT}
    assert expired[0].members == ("bank-b",)
    chain.block(ms_at("2024-04-02"))
    assert len(chain.events_of("consent.expired")) == 1


def test_consent_expired_after_skipped_days():
    chain = Chain()
    setup_subject(chain, T0)
    grant(chain, "q1", "2024-03-31")
    grant(chain, "q2", "2024-04-10")
    chain.block(ms_at("2024-05-01"))  # no block for a month: both deadlines passed
    assert sorted(event.data["consent_id"] for event in chain.events_of("consent.expired")) == ["q1", "q2"]
