import ast
import pathlib

from node.contracts.errors import CATALOGUE, message_for
from node.contracts.queries import consent_active, consent_state, credit_report
from tests.contracts.harness import SUBJECT, SUBJECT_KEY, Chain, key_of, member, ms_at, register_loan, setup_subject

T0 = ms_at("2024-01-31")
SUBJECT_SIGNER = "key:" + SUBJECT_KEY


def grant(chain, at, consent_id, grantee, purpose, expires_on="2024-06-30", signer=SUBJECT_SIGNER, **extra):
    payload = {"consent_id": consent_id, "subject_id": SUBJECT, "grantee": grantee, "purpose": purpose, "expires_on": expires_on}
    payload.update(extra)
    return chain.run(at, signer, "consent.grant", payload).error_code


def assessment(points, score=None, assessment_id="a1"):
    return {"assessment_id": assessment_id, "subject_id": SUBJECT, "score": score if score is not None else 600 + sum(points.values()),
            "grade": "B", "model_id": "m-2024", "base_points": 600, "points": points, "valid_until": "2024-12-31"}


def test_consent_expiry_and_withdrawal():
    chain = Chain()
    setup_subject(chain, T0)
    assert grant(chain, T0, "q1", "bank-b", "credit_query", signer="bank-b") == "evidence_required"
    assert grant(chain, T0, "q1", "bank-b", "credit_query") is None
    assert consent_active(chain.state, SUBJECT, "bank-b", "credit_query", "2024-06-30")
    assert consent_state(chain.state, SUBJECT, "bank-b", "credit_query", "2024-07-01") == "expired"
    chain.ok(ms_at("2024-03-01"), "bank-b", "report.query", {"query_id": "r1", "subject_id": SUBJECT})
    assert chain.error(ms_at("2024-03-01"), "bank-b", "report.query", {"query_id": "r2", "subject_id": SUBJECT, "purpose": "collection"}) == "consent_required"
    chain.ok(ms_at("2024-03-02"), SUBJECT_SIGNER, "consent.revoke", {"consent_id": "q1", "subject_id": SUBJECT})
    assert consent_state(chain.state, SUBJECT, "bank-b", "credit_query", "2024-03-02") == "revoked"
    assert consent_active(chain.state, SUBJECT, "bank-b", "credit_query", "2024-03-01")  # D11: the past stays lawful
    assert chain.error(ms_at("2024-03-02"), "bank-b", "report.query", {"query_id": "r3", "subject_id": SUBJECT}) == "consent_required"
    chain.block(ms_at("2024-07-01"))
    assert chain.events_of("consent.expired") == []  # revoked before it expired
    report = credit_report(chain.state, SUBJECT, "2024-03-02")
    assert [q["query_id"] for q in report["queries"]] == ["r1"]


def test_assessment_rules():
    chain = Chain()
    setup_subject(chain, T0)
    assert grant(chain, T0, "as", "agency-x", "assessment") is None
    assert grant(chain, T0, "au", "agency-u", "assessment") is None
    assert chain.error(T0, "agency-u", "assessment.record", assessment({"repayment_history": 40})) == "agency_not_licensed"
    assert chain.error(T0, "agency-x", "assessment.record", assessment({"repayment_history": 40}, score=700)) == "points_mismatch"
    assert chain.error(T0, "agency-x", "assessment.record", assessment({"blood_type": 1})) == "forbidden_field"
    assert chain.error(T0, "agency-x", "assessment.record", assessment({"medical_history": 1})) == "forbidden_field"
    assert chain.error(T0, "agency-x", "assessment.record", assessment({"monthly_income": 30})) == "written_consent_required"
    assert grant(chain, T0, "aw", "agency-x", "assessment", written=True) is None
    chain.ok(T0, "agency-x", "assessment.record", assessment({"monthly_income": 30, "repayment_history": 40}))
    report = credit_report(chain.state, SUBJECT, "2024-02-01")
    assert report["assessments"][0]["points"] == {"monthly_income": 30, "repayment_history": 40}


def test_self_reports_two_free_per_year():
    chain = Chain()
    setup_subject(chain, T0)
    for n in range(2):
        chain.ok(T0, SUBJECT_SIGNER, "report.query", {"query_id": f"s{n}", "subject_id": SUBJECT})
    assert chain.error(T0, SUBJECT_SIGNER, "report.query", {"query_id": "s2", "subject_id": SUBJECT}) == "free_reports_used"
    chain.ok(T0, SUBJECT_SIGNER, "report.query", {"query_id": "s3", "subject_id": SUBJECT, "paid": True})
    chain.ok(ms_at("2025-01-01"), SUBJECT_SIGNER, "report.query", {"query_id": "s4", "subject_id": SUBJECT})


def test_report_retention_and_statement():
    chain = Chain()
    setup_subject(chain, T0)
    register_loan(chain, T0)
    at = ms_at("2024-06-01")
    chain.ok(at, "bank-a", "notice.record", {"notice_id": "n1", "loan_id": "L1", "notice_hash": "03" * 32, "sent_on": "2024-05-30"})
    chain.ok(at, "bank-a", "loan.write_off", {"loan_id": "L1", "amount": 303_000, "reason": "uncollectable"})
    chain.ok(at, SUBJECT_SIGNER, "statement.add", {"statement_id": "st1", "subject_id": SUBJECT, "loan_id": "L1", "statement_hash": "06" * 32})
    report = credit_report(chain.state, SUBJECT, "2029-05-31")
    assert report["loans"][0]["status"] == "written_off"
    assert report["loans"][0]["statements"][0]["statement_id"] == "st1"
    assert report["summary"]["worst_classification"] == "loss"
    assert report["behavioural_score"]["points"]["written_off_loans"] == -150
    assert credit_report(chain.state, SUBJECT, "2029-06-01")["loans"] == []


def propose(chain, at, proposer, proposal_id, action):
    return chain.run(at, proposer, "governance.propose", {"proposal_id": proposal_id, "action": action}).error_code


def vote(chain, at, voter, proposal_id, approve=True):
    return chain.run(at, voter, "governance.vote", {"proposal_id": proposal_id, "approve": approve}).error_code


def test_governance_needs_more_than_two_thirds():
    chain = Chain()  # 7 voting members: more than 2/3 means 5 approvals
    at = ms_at("2024-02-01")
    assert propose(chain, at, "bank-a", "p1", {"kind": "set_params", "params": {"scorecard_base_points": 500}}) is None
    for voter in ("bank-b", "agency-x", "agency-u"):
        assert vote(chain, at, voter, "p1") is None
    assert chain.state.get("proposal/p1")["status"] == "open"  # 4 of 7
    assert vote(chain, at, "bank-b", "p1") == "already_voted"
    assert vote(chain, at, "collector-1", "p1") is None
    assert chain.state.get("proposal/p1")["status"] == "approved"
    assert chain.state.get("params")["scorecard_base_points"] == 500
    assert vote(chain, at, "collector-2", "p1") == "proposal_closed"


def test_compliance_param_needs_regulator():
    chain = Chain()
    at = ms_at("2024-02-01")
    assert propose(chain, at, "bank-a", "p2", {"kind": "set_params", "params": {"contact_end_minute": 1260}}) is None
    for voter in ("bank-b", "agency-x", "agency-u", "collector-1", "collector-2"):
        vote(chain, at, voter, "p2")
    assert chain.state.get("proposal/p2")["status"] == "open"
    assert vote(chain, at, "regulator", "p2") is None
    assert chain.state.get("params")["contact_end_minute"] == 1260


def test_validator_change_at_fixed_height():
    chain = Chain()
    at = ms_at("2024-02-01")
    propose(chain, at, "bank-a", "p3", {"kind": "set_validators", "validators": ["bank-a", "bank-b", "agency-x", "regulator"]})
    for voter in ("bank-b", "agency-x", "agency-u", "collector-1"):
        vote(chain, at, voter, "p3")
    decided_height = chain.height
    update = chain.validator_updates[0]
    assert update.effective_height == decided_height + 64
    assert update.validators[1] == key_of("node:bank-b")
    assert chain.state.get("validators")["members"][1] == "agency-x"
    while chain.height < decided_height + 63:
        chain.block(at)
    assert chain.state.get("validators")["members"][1] == "agency-x"
    chain.block(at)
    assert chain.state.get("validators")["members"][1] == "bank-b"


def test_admit_member_and_proposal_rejection():
    chain = Chain()
    at = ms_at("2024-02-01")
    assert propose(chain, at, "bank-a", "p4", {"kind": "admit_member", "member": member("bank-c", "bank")}) is None
    for voter in ("bank-b", "agency-x"):
        vote(chain, at, voter, "p4", approve=False)
    assert chain.state.get("proposal/p4")["status"] == "open"
    vote(chain, at, "agency-u", "p4", approve=False)  # 4 + 3 undecided can no longer reach 5
    assert chain.state.get("proposal/p4")["status"] == "rejected"
    assert propose(chain, at, "bank-a", "p5", {"kind": "admit_member", "member": member("bank-c", "bank")}) is None
    for voter in ("bank-b", "agency-x", "agency-u", "collector-1"):
        vote(chain, at, voter, "p5")
    assert chain.state.get("member/bank-c")["role"] == "bank"
    assert propose(chain, at, "bank-a", "p6", {"kind": "remove_member", "member_id": "regulator"}) == "invalid_action"


def _raised_codes():
    root = pathlib.Path(__file__).resolve().parents[2] / "node" / "contracts"
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("fail", "ContractError") and node.args:
                if isinstance(node.args[0], ast.Constant):
                    yield path.name, node.args[0].value


def test_every_raised_code_is_catalogued():
    codes = list(_raised_codes())
    assert len(codes) > 50
    for filename, code in codes:
        assert code in CATALOGUE, (filename, code)
    assert message_for("contact_hours", "en").endswith("(C3)")
    assert "C3" in message_for("contact_hours", "zh-CN")
