import pytest

from tests.contracts.harness import SUBJECT, SUBJECT_KEY, Chain, ms_at, register_loan, setup_subject

T0 = ms_at("2024-03-01")
T1 = ms_at("2024-03-02")
OTHER_SUBJECT = "8d" * 32
OTHER_SUBJECT_KEY = "9e" * 32
SUBJECT_SIGNER = "key:" + SUBJECT_KEY


def erase_payload(erasure_id="e1", mode="erase", reason="subject_request", subject_id=SUBJECT, **extra):
    payload = {"erasure_id": erasure_id, "subject_id": subject_id, "mode": mode, "reason": reason}
    payload.update(extra)
    return payload


def freeze_payload(erasure_id="f1", retain_until="2031-06-30", **extra):
    return erase_payload(erasure_id, mode="freeze", reason="retention_hold", retain_until=retain_until, **extra)


@pytest.fixture
def chain():
    chain = Chain()
    setup_subject(chain, T0)
    setup_subject(chain, T0, subject_id=OTHER_SUBJECT, subject_key=OTHER_SUBJECT_KEY, creditor="bank-b")
    return chain


@pytest.mark.parametrize(
    "signer, expected",
    [
        (SUBJECT_SIGNER, None),
        ("key:" + OTHER_SUBJECT_KEY, "not_authorized"),
        ("regulator", None),
        ("bank-a", None),  # registered the subject
        ("bank-b", "not_authorized"),  # neither registered it nor holds a loan with it
        ("agency-x", "not_authorized"),
        ("collector-1", "not_authorized"),
        ("key:" + "cd" * 32, "unknown_sender"),
    ],
)
def test_erase_sender_rules(chain, signer, expected):
    assert chain.error(T1, signer, "subject.erase", erase_payload()) == expected


def test_erase_by_creditor_of_closed_loan(chain):
    chain.ok(T0, "bank-a", "consent.grant", {
        "consent_id": "c-b", "subject_id": SUBJECT, "grantee": "bank-b", "purpose": "data_sharing",
        "expires_on": "2099-12-31", "evidence": "02" * 32,
    })
    register_loan(chain, T0, loan_id="LB", creditor="bank-b", principal=100, interest=0, months=1)
    assert chain.error(T1, "bank-b", "subject.erase", erase_payload()) == "retention_applies"
    chain.ok(T1, "bank-b", "repayment.record", {"loan_id": "LB", "payment_id": "p1", "amount": 100, "paid_on": "2024-03-02"})
    assert chain.state.get("loan/LB")["status"] == "repaid"
    assert chain.error(T1, "bank-b", "subject.erase", erase_payload()) is None


def test_erase_records_marker_and_event(chain):
    receipt = chain.ok(T1, SUBJECT_SIGNER, "subject.erase", erase_payload())
    record = chain.state.get("erasure/e1")
    assert record == {
        "erasure_id": "e1", "subject_id": SUBJECT, "mode": "erase", "retain_until": None,
        "reason": "subject_request", "requested_by": "subject", "recorded_on": "2024-03-02", "at": T1,
    }
    marker = chain.state.get(f"subject_erasure/{SUBJECT}")
    assert marker["state"] == "erased"
    assert marker["erasure_id"] == "e1"
    [event] = receipt.events
    assert event.type == "subject.erased"
    assert event.members == ()  # every member
    assert event.data == {"erasure_id": "e1", "subject_id": SUBJECT, "retain_until": None, "reason": "subject_request", "at_ms": T1}
    assert chain.state.get(f"subject_erasure/{OTHER_SUBJECT}") is None


def test_reason_must_be_a_code(chain):
    assert chain.error(T1, SUBJECT_SIGNER, "subject.erase", erase_payload(reason="Zhang San asked by phone 139...")) == "invalid_payload"


def test_erase_unknown_subject(chain):
    assert chain.error(T1, "regulator", "subject.erase", erase_payload(subject_id="ef" * 32)) == "unknown_subject"


def test_erasure_id_unique(chain):
    chain.ok(T1, SUBJECT_SIGNER, "subject.erase", erase_payload())
    assert chain.error(T1, "regulator", "subject.erase", erase_payload(subject_id=OTHER_SUBJECT)) == "duplicate_id"


def test_second_erase_rejected(chain):
    chain.ok(T1, SUBJECT_SIGNER, "subject.erase", erase_payload())
    assert chain.error(T1, "regulator", "subject.erase", erase_payload("e2")) == "subject_erased"
    assert chain.error(T1, "regulator", "subject.erase", freeze_payload()) == "subject_erased"


def consent_grant(consent_id="c-new", grantee="agency-x", purpose="assessment"):
    return {"consent_id": consent_id, "subject_id": SUBJECT, "grantee": grantee, "purpose": purpose, "expires_on": "2099-12-31"}


def test_erased_subject_rejects_new_processing(chain):
    chain.ok(T0, SUBJECT_SIGNER, "consent.grant", consent_grant("c-acc", grantee="bank-b", purpose="credit_query"))
    chain.ok(T1, SUBJECT_SIGNER, "subject.erase", erase_payload())
    assert chain.error(T1, SUBJECT_SIGNER, "consent.grant", consent_grant()) == "subject_erased"
    access = {"access_id": "a1", "subject_id": SUBJECT, "holder": "bank-a", "purpose": "credit_query"}
    assert chain.error(T1, "bank-b", "data.access", access) == "subject_erased"
    assert chain.error(T1, "regulator", "data.access", access) == "subject_erased"
    assert chain.error(T1, "bank-a", "loan.register", {
        "loan_id": "L9", "subject_id": SUBJECT, "principal": 100, "currency": "CNY", "annual_rate_bp": 0,
        "start_date": "2024-03-02", "schedule": [{"number": 1, "due_date": "2024-04-02", "principal": 100, "interest": 0}],
    }) == "subject_erased"
    assert chain.error(T1, "agency-x", "assessment.record", {
        "assessment_id": "as1", "subject_id": SUBJECT, "score": 610, "grade": "B", "model_id": "m1",
        "base_points": 600, "points": {"age_band": 10}, "valid_until": "2025-01-01",
    }) == "subject_erased"
    # Credit records on chain stay under their retention rule, so report queries still work.
    assert chain.error(T1, "regulator", "report.query", {"query_id": "q1", "subject_id": SUBJECT}) is None


def test_other_subject_unaffected(chain):
    chain.ok(T1, SUBJECT_SIGNER, "subject.erase", erase_payload())
    grant = dict(consent_grant(), subject_id=OTHER_SUBJECT)
    assert chain.error(T1, "key:" + OTHER_SUBJECT_KEY, "consent.grant", grant) is None


def test_erase_with_open_loan_needs_freeze(chain):
    register_loan(chain, T0)
    assert chain.error(T1, SUBJECT_SIGNER, "subject.erase", erase_payload()) == "retention_applies"
    assert chain.error(T1, "bank-a", "subject.erase", erase_payload()) == "retention_applies"
    assert chain.error(T1, "bank-a", "subject.erase", freeze_payload()) is None


def test_regulator_erases_over_open_loan(chain):
    register_loan(chain, T0)
    assert chain.error(T1, "regulator", "subject.erase", erase_payload(reason="regulator_order")) is None


@pytest.mark.parametrize(
    "retain_until, expected",
    [("2024-03-02", "invalid_date"), ("2024-03-03", None), (None, "invalid_date"), ("2024-02-30", "invalid_payload")],
)
def test_freeze_date_boundary(chain, retain_until, expected):
    payload = freeze_payload()
    if retain_until is None:
        del payload["retain_until"]
    else:
        payload["retain_until"] = retain_until
    assert chain.error(T1, "bank-a", "subject.erase", payload) == expected


def test_erase_with_retain_until_rejected(chain):
    assert chain.error(T1, SUBJECT_SIGNER, "subject.erase", erase_payload(retain_until="2030-01-01")) == "invalid_payload"


def test_freeze_records_marker_and_event(chain):
    receipt = chain.ok(T1, "bank-a", "subject.erase", freeze_payload())
    marker = chain.state.get(f"subject_erasure/{SUBJECT}")
    assert marker["state"] == "frozen"
    assert marker["retain_until"] == "2031-06-30"
    [event] = receipt.events
    assert event.type == "subject.frozen"
    assert event.members == ()
    assert event.data["retain_until"] == "2031-06-30"
    assert chain.state.get("deadline/2031-07-01/erasure_expire/" + SUBJECT) == 1


def test_frozen_subject_rules(chain):
    chain.ok(T1, "bank-a", "subject.erase", freeze_payload())
    assert chain.error(T1, SUBJECT_SIGNER, "consent.grant", consent_grant()) == "subject_frozen"
    assert chain.error(T1, SUBJECT_SIGNER, "subject.erase", erase_payload()) == "subject_frozen"
    assert chain.error(T1, "bank-a", "subject.erase", freeze_payload("f2", retain_until="2031-06-30")) == "subject_frozen"
    assert chain.error(T1, "bank-a", "subject.erase", freeze_payload("f3", retain_until="2031-07-01")) is None
    assert chain.state.get(f"subject_erasure/{SUBJECT}")["erasure_id"] == "f3"
    assert chain.error(T1, "regulator", "subject.erase", erase_payload("e9", reason="regulator_order")) is None
    assert chain.state.get(f"subject_erasure/{SUBJECT}")["state"] == "erased"


def test_freeze_ends_after_retain_until(chain):
    chain.ok(T1, "bank-a", "subject.erase", freeze_payload(retain_until="2024-03-10"))
    chain.block(ms_at("2024-03-10"))
    assert chain.state.get(f"subject_erasure/{SUBJECT}")["state"] == "frozen"
    assert chain.events_of("subject.erased") == []
    chain.block(ms_at("2024-03-11"))
    marker = chain.state.get(f"subject_erasure/{SUBJECT}")
    assert marker["state"] == "erased"
    assert marker["reason"] == "retention_ended"
    [event] = chain.events_of("subject.erased")
    assert event.members == ()
    assert event.data["erasure_id"] == "f1"
    assert event.data["at_ms"] == ms_at("2024-03-11")


def test_extended_freeze_outlives_first_date(chain):
    chain.ok(T1, "bank-a", "subject.erase", freeze_payload(retain_until="2024-03-10"))
    chain.ok(T1, "regulator", "subject.erase", freeze_payload("f2", retain_until="2024-03-20"))
    chain.block(ms_at("2024-03-11"))
    assert chain.state.get(f"subject_erasure/{SUBJECT}")["state"] == "frozen"
    chain.block(ms_at("2024-03-21"))
    assert chain.state.get(f"subject_erasure/{SUBJECT}")["state"] == "erased"
    assert [event.data["erasure_id"] for event in chain.events_of("subject.erased")] == ["f2"]


def test_freeze_extended_by_one_day_keeps_last_day(chain):
    chain.ok(T1, "bank-a", "subject.erase", freeze_payload(retain_until="2024-03-10"))
    chain.ok(T1, "bank-a", "subject.erase", freeze_payload("f2", retain_until="2024-03-11"))
    chain.block(ms_at("2024-03-11"))  # the first freeze's deadline fires on its last extended day
    assert chain.state.get(f"subject_erasure/{SUBJECT}")["state"] == "frozen"
    chain.block(ms_at("2024-03-12"))
    assert chain.state.get(f"subject_erasure/{SUBJECT}")["state"] == "erased"
