"""data.access (D10, C10) and review.request (D12) at their boundaries."""

from node.contracts.queries import credit_report
from tests.contracts.harness import SUBJECT, SUBJECT_KEY, Chain, ms_at, register_loan, setup_subject

T0 = ms_at("2024-01-31")
SUBJECT_SIGNER = "key:" + SUBJECT_KEY
OTHER_SUBJECT = "8d" * 32
OTHER_KEY = "9e" * 32


def access(access_id: str, purpose: str = "data_sharing", holder: str = "bank-a", **extra) -> dict:
    payload = {"access_id": access_id, "subject_id": SUBJECT, "holder": holder, "purpose": purpose}
    payload.update(extra)
    return payload


def grant(chain: Chain, at: int, consent_id: str, grantee: str, purpose: str, expires_on: str) -> None:
    chain.ok(at, SUBJECT_SIGNER, "consent.grant", {
        "consent_id": consent_id, "subject_id": SUBJECT, "grantee": grantee, "purpose": purpose, "expires_on": expires_on,
    })


def subject_chain() -> Chain:
    chain = Chain()
    setup_subject(chain, T0)
    return chain


def test_access_needs_consent_for_purpose():
    chain = subject_chain()
    assert chain.error(T0, "bank-b", "data.access", access("a1")) == "consent_required"
    grant(chain, T0, "c-b", "bank-b", "data_sharing", "2024-03-31")
    assert chain.error(T0, "bank-b", "data.access", access("a2", purpose="assessment")) == "consent_required"
    receipt = chain.ok(T0, "bank-b", "data.access", access("a3", record_hash="04" * 32))
    event = receipt.events[0]
    assert event.type == "data.accessed"
    assert event.members == ("bank-a",)
    assert event.data == {"subject_id": SUBJECT, "access_id": "a3", "reader": "bank-b"}
    record = chain.state.get(f"access_log/{SUBJECT}/a3")
    assert record["reader"] == "bank-b"
    assert record["record_hash"] == "04" * 32
    assert [entry["access_id"] for entry in credit_report(chain.state, SUBJECT, "2024-01-31")["data_access"]] == ["a3"]


def test_access_consent_expiry_boundary():
    chain = subject_chain()
    grant(chain, T0, "c-b", "bank-b", "data_sharing", "2024-03-31")
    chain.ok(ms_at("2024-03-31", 23, 59), "bank-b", "data.access", access("last-day"))
    assert chain.error(ms_at("2024-04-01", 0, 0), "bank-b", "data.access", access("day-after")) == "consent_required"


def test_access_consent_revoked_stops_access():
    chain = subject_chain()
    grant(chain, T0, "c-b", "bank-b", "data_sharing", "2024-12-31")
    chain.ok(ms_at("2024-02-01"), SUBJECT_SIGNER, "consent.revoke", {"consent_id": "c-b", "subject_id": SUBJECT})
    assert chain.error(ms_at("2024-02-01"), "bank-b", "data.access", access("a1")) == "consent_required"


def test_access_duplicate_and_unknown_ids():
    chain = subject_chain()
    chain.ok(T0, "regulator", "data.access", access("a1"))
    assert chain.error(T0, "regulator", "data.access", access("a1")) == "duplicate_id"
    assert chain.error(T0, "regulator", "data.access", access("a2", holder="nobody")) == "unknown_member"
    unknown_subject = dict(access("a3"), subject_id=OTHER_SUBJECT)
    assert chain.error(T0, "regulator", "data.access", unknown_subject) == "unknown_subject"
    assert chain.error(T0, SUBJECT_SIGNER, "data.access", access("a4")) == "role_not_allowed"


def test_access_regulator_needs_no_consent():
    chain = subject_chain()
    chain.ok(T0, "regulator", "data.access", access("a1", purpose="collection"))


def test_access_collector_only_while_case_mandate_active():
    chain = subject_chain()
    register_loan(chain, T0)
    chain.ok(T0, "bank-a", "mandate.grant", {
        "mandate_id": "m1", "agencies": ["collector-1"], "start_dpd": 1, "valid_from": "2024-01-01", "valid_until": "2024-03-05",
    })
    chain.ok(T0, "bank-a", "mandate.evaluate", {"mandate_id": "m1", "agency": "collector-1", "evaluated_on": "2024-01-31", "rating": 4})
    assert chain.error(T0, "collector-1", "data.access", access("before-case", purpose="collection")) == "consent_required"
    chain.block(ms_at("2024-03-01"))  # the case opens and goes to collector-1
    assert chain.error(ms_at("2024-03-01"), "collector-2", "data.access", access("other-agency", purpose="collection")) == "consent_required"
    assert chain.error(ms_at("2024-03-01"), "collector-1", "data.access", access("wrong-purpose", purpose="data_sharing")) == "consent_required"
    chain.ok(ms_at("2024-03-05"), "collector-1", "data.access", access("last-day", purpose="collection"))
    # C10: the mandate ends on 2024-03-05, and its case closes the day after.
    assert chain.error(ms_at("2024-03-06"), "collector-1", "data.access", access("day-after", purpose="collection")) == "consent_required"


def assessed_chain() -> Chain:
    chain = subject_chain()
    setup_subject(chain, T0, subject_id=OTHER_SUBJECT, subject_key=OTHER_KEY)
    grant(chain, T0, "c-x", "agency-x", "assessment", "2024-12-31")
    chain.ok(T0, "agency-x", "assessment.record", {
        "assessment_id": "as1", "subject_id": SUBJECT, "score": 640, "grade": "B", "model_id": "m-2024",
        "base_points": 600, "points": {"repayment_history": 40}, "valid_until": "2024-12-31",
    })
    return chain


def test_review_request_by_subject():
    chain = assessed_chain()
    receipt = chain.ok(T0, SUBJECT_SIGNER, "review.request", {"review_id": "r1", "assessment_id": "as1", "reason": "data_missing"})
    assert receipt.events[0].type == "review.requested"
    assert receipt.events[0].members == ("agency-x",)
    assert chain.state.get("review/r1")["status"] == "requested"
    assert chain.state.get("assessment/as1")["review"] == "r1"
    assert chain.error(T0, SUBJECT_SIGNER, "review.request", {"review_id": "r1", "assessment_id": "as1", "reason": "other"}) == "duplicate_id"


def test_review_request_rejections():
    chain = assessed_chain()
    payload = {"review_id": "r1", "assessment_id": "as1", "reason": "score_unexplained"}
    assert chain.error(T0, "key:" + OTHER_KEY, "review.request", payload) == "not_found"
    assert chain.error(T0, SUBJECT_SIGNER, "review.request", dict(payload, assessment_id="nope")) == "not_found"
    for member_id in ("agency-x", "bank-a", "regulator"):
        assert chain.error(T0, member_id, "review.request", payload) == "role_not_allowed"
    assert chain.error(T0, SUBJECT_SIGNER, "review.request", dict(payload, reason="")) == "invalid_payload"
    assert chain.state.get("review/r1") is None
