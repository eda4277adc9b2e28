import pytest

from node.privacy.access import check_access, reader_for_key
from node.privacy.errors import PrivacyError
from node.privacy.read_auth import Reader
from tests.privacy.chain import new_chain

SUBJECT = "3c" * 32
OTHER_SUBJECT = "9e" * 32


@pytest.fixture
def chain():
    chain = new_chain()
    chain.register_subject(SUBJECT, "2026-03-02")
    chain.register_subject(OTHER_SUBJECT, "2026-03-02")
    return chain


def member_reader(chain, member_id: str) -> Reader:
    key = chain.client_keys[member_id].verify_key.encode().hex()
    reader = reader_for_key(chain.state, key)
    assert reader is not None
    return reader


def refusal(chain, reader, purpose="credit_query", date="2026-04-01", kind="report", store_state=None, subject=SUBJECT) -> str:
    with pytest.raises(PrivacyError) as raised:
        check_access(chain.state, reader, subject, purpose, date, kind=kind, store_state=store_state)
    return raised.value.code


def test_reader_for_client_and_subject_keys(chain):
    reader = member_reader(chain, "agency-1")
    assert (reader.member_id, reader.role) == ("agency-1", "credit_agency")
    subject_key = chain.subject_keys[SUBJECT].verify_key.encode().hex()
    assert reader_for_key(chain.state, subject_key) == Reader(public_key=subject_key, subject_id=SUBJECT)
    assert reader_for_key(chain.state, "11" * 32) is None


def test_node_key_is_not_a_reader(chain):
    node_key = chain.state.get("member/agency-1")["node_key"]
    assert reader_for_key(chain.state, node_key) is None


def test_read_without_consent_refused(chain):
    assert refusal(chain, member_reader(chain, "agency-1")) == "no_consent"


def test_read_with_consent_allowed(chain):
    chain.grant("c-1", SUBJECT, "agency-1", "credit_query", "2026-06-30", "2026-03-10")
    decision = check_access(chain.state, member_reader(chain, "agency-1"), SUBJECT, "credit_query", "2026-04-01")
    assert decision.basis == "consent"
    assert decision.member_id == "agency-1"
    assert not decision.audit


def test_consent_names_member_and_purpose(chain):
    chain.grant("c-1", SUBJECT, "agency-1", "credit_query", "2026-06-30", "2026-03-10")
    assert refusal(chain, member_reader(chain, "bank-2")) == "no_consent"
    assert refusal(chain, member_reader(chain, "agency-1"), purpose="assessment") == "no_consent"
    assert refusal(chain, member_reader(chain, "agency-1"), subject=OTHER_SUBJECT) == "no_consent"


def test_expired_consent_refused(chain):
    chain.grant("c-1", SUBJECT, "agency-1", "credit_query", "2026-06-30", "2026-03-10")
    reader = member_reader(chain, "agency-1")
    assert check_access(chain.state, reader, SUBJECT, "credit_query", "2026-06-30").basis == "consent"
    assert refusal(chain, reader, date="2026-07-01") == "consent_expired"


def test_revoked_consent_refused(chain):
    chain.grant("c-1", SUBJECT, "agency-1", "credit_query", "2026-12-31", "2026-03-10")
    chain.revoke("c-1", SUBJECT, "2026-04-15")
    reader = member_reader(chain, "agency-1")
    assert refusal(chain, reader, date="2026-04-15") == "consent_revoked"
    assert refusal(chain, reader, date="2026-05-01") == "consent_revoked"


def test_details_need_sharing_consent(chain):
    chain.grant("c-1", SUBJECT, "agency-1", "credit_query", "2026-12-31", "2026-03-10")
    reader = member_reader(chain, "agency-1")
    assert refusal(chain, reader, kind="details", store_state="active") == "no_consent"
    chain.grant("c-2", SUBJECT, "agency-1", "data_sharing", "2026-12-31", "2026-03-11")
    decision = check_access(chain.state, reader, SUBJECT, "credit_query", "2026-04-01", kind="details", store_state="active")
    assert decision.basis == "consent"


def test_regulator_always_reads_audited(chain):
    decision = check_access(chain.state, member_reader(chain, "regulator-1"), SUBJECT, "credit_query", "2026-04-01", kind="details")
    assert decision.basis == "regulator"
    assert decision.audit


def test_subject_reads_only_itself(chain):
    key = chain.subject_keys[SUBJECT].verify_key.encode().hex()
    reader = reader_for_key(chain.state, key)
    decision = check_access(chain.state, reader, SUBJECT, "credit_query", "2026-04-01")
    assert decision.basis == "subject_self"
    assert decision.free_self_reports_per_year == 2
    assert refusal(chain, reader, subject=OTHER_SUBJECT) == "not_subject"


def test_suspended_member_refused(chain):
    chain.grant("c-1", SUBJECT, "agency-1", "credit_query", "2026-12-31", "2026-03-10")
    reader = member_reader(chain, "agency-1")
    chain.member("regulator-1", "member.suspend", {"member_id": "agency-1", "reason": "complaint_upheld"}, "2026-03-20")
    assert refusal(chain, reader) == "member_suspended"


@pytest.mark.parametrize("store_state", ["erased", "frozen"])
def test_erased_or_frozen_refused_to_all(chain, store_state):
    chain.grant("c-1", SUBJECT, "agency-1", "data_sharing", "2026-12-31", "2026-03-10")
    for member_id in ("agency-1", "regulator-1"):
        assert refusal(chain, member_reader(chain, member_id), kind="details", store_state=store_state) == store_state


def test_unknown_purpose_refused(chain):
    assert refusal(chain, member_reader(chain, "regulator-1"), purpose="marketing") == "invalid_purpose"


def test_collector_outside_collection_needs_consent(chain):
    reader = member_reader(chain, "collector-1")
    assert refusal(chain, reader, purpose="credit_query") == "no_consent"
    chain.grant("c-1", SUBJECT, "collector-1", "credit_query", "2026-12-31", "2026-03-10")
    assert check_access(chain.state, reader, SUBJECT, "credit_query", "2026-04-01").basis == "consent"


def open_collection_case(chain) -> None:
    """Mandate collector-1 for bank-1's loans and let a loan fall overdue, so a case opens for collector-1."""
    chain.grant("c-bank", SUBJECT, "bank-1", "data_sharing", "2027-12-31", "2026-03-02")
    mandate = {"mandate_id": "m-1", "agencies": ["collector-1"], "start_dpd": 1, "valid_from": "2026-03-01", "valid_until": "2026-12-31"}
    chain.member("bank-1", "mandate.grant", mandate, "2026-03-03")
    evaluation = {"mandate_id": "m-1", "agency": "collector-1", "evaluated_on": "2026-03-03", "rating": 4}
    chain.member("bank-1", "mandate.evaluate", evaluation, "2026-03-03")
    loan = {
        "loan_id": "L-1",
        "subject_id": SUBJECT,
        "principal": 100_000,
        "currency": "CNY",
        "annual_rate_bp": 0,
        "start_date": "2026-03-01",
        "schedule": [{"number": 1, "due_date": "2026-04-01", "principal": 100_000, "interest": 0}],
    }
    chain.member("bank-1", "loan.register", loan, "2026-03-03")
    chain.begin_block("2026-04-03")


def test_collector_reads_during_mandate(chain):
    open_collection_case(chain)
    reader = member_reader(chain, "collector-1")
    decision = check_access(chain.state, reader, SUBJECT, "collection", "2026-04-05", kind="details", store_state="active")
    assert decision.basis == "collector_mandate"
    assert refusal(chain, reader, purpose="collection", subject=OTHER_SUBJECT) == "mandate_ended"


def test_collector_refused_after_mandate_expiry(chain):
    open_collection_case(chain)
    reader = member_reader(chain, "collector-1")
    assert check_access(chain.state, reader, SUBJECT, "collection", "2026-12-31").basis == "collector_mandate"
    assert refusal(chain, reader, purpose="collection", date="2027-01-01") == "mandate_ended"


def test_collector_refused_after_mandate_end(chain):
    open_collection_case(chain)
    chain.member("bank-1", "mandate.end", {"mandate_id": "m-1", "reason": "contract_ended"}, "2026-04-10")
    reader = member_reader(chain, "collector-1")
    assert refusal(chain, reader, purpose="collection", date="2026-04-10", kind="details", store_state="active") == "mandate_ended"
