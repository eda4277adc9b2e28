"""Personal numbers never reach the chain: reason codes instead of free text, and a detector on every string."""

from __future__ import annotations

import unicodedata
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.contracts import personal_data
from node.contracts.errors import message_for
from node.contracts.personal_data import (
    BANK_CARD_NUMBER,
    ID_NUMBER,
    MOBILE_NUMBER,
    classify_digit_run,
    classify_text,
    find_in_transaction,
    luhn_valid,
)
from node.execution import ContractError
from node.privacy.subject_id import check_character
from tests.contracts.harness import Chain, ms_at, tx

T0 = ms_at("2024-03-01")
NOTE_HASH = "3c" * 32


def valid_id(first_17: str) -> str:
    """Complete 17 digits with their check character, computed by the subject-id code."""
    return first_17 + check_character(first_17)


def with_luhn_digit(partial: str) -> str:
    """Append the digit that makes `partial` pass the Luhn check."""
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return partial + digit
    raise AssertionError("no Luhn digit found")


def wrong_last_digit(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


ID_WITH_X = "11010119900307803X"
ID_DIGITS = valid_id("44030519851023123")
CARD_16 = with_luhn_digit("622202020011223")
CARD_19 = with_luhn_digit("622202020011223344")
CARD_20 = with_luhn_digit("6222020200112233445")


def test_fixture_numbers_are_what_they_claim():
    assert check_character(ID_WITH_X[:17]) == "X"
    assert ID_DIGITS[-1] != "X"
    assert ID_DIGITS[:17] + "7" == "440305198510231237"
    assert ID_DIGITS[-1] != "7"
    assert not luhn_valid("440305198510231237")
    assert CARD_16.startswith("622202020011223")
    assert len(CARD_16) == 16
    assert len(CARD_19) == 19
    assert len(CARD_20) == 20


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (ID_WITH_X, ID_NUMBER),
        (ID_WITH_X.lower(), ID_NUMBER),
        (ID_DIGITS, ID_NUMBER),
        ("id:" + ID_WITH_X, ID_NUMBER),
        ("110101900307803", ID_NUMBER),  # 15 digits, born 1990-03-07
        ("13800138000", MOBILE_NUMBER),
        ("19912345678", MOBILE_NUMBER),
        ("8613800138000", MOBILE_NUMBER),
        ("case-13800138000", MOBILE_NUMBER),
        ("１３８００１３８０００", MOBILE_NUMBER),  # full-width digits
        (CARD_16, BANK_CARD_NUMBER),
        (CARD_19, BANK_CARD_NUMBER),
        ("pay." + CARD_16 + ".x", BANK_CARD_NUMBER),
        ("abc13800138000", MOBILE_NUMBER),  # too short to be an opaque hex token
    ],
)
def test_detector_flags(text, kind):
    assert classify_text(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        "12800138000",  # 1 then 2: no mainland mobile prefix
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "8612800138000",
        "110101901307803",  # 15 digits with month 13
        "440305198510231237",  # 18 digits with a wrong check digit, and not a Luhn number either
        wrong_last_digit(CARD_16),  # fails Luhn
        CARD_20,  # 20 digits: longer than any card number
        "622202020011223",  # 15 digits: too short for a card, and 0200-11-22 is no 19YY birth date
        "1380013800-0",  # maximal runs only: 10 digits, then 1
        "2026-01-01",
        "loan-2024-000001",
        "1767225600000",  # unix milliseconds
        "mandate.evaluate:m-1:2026-03-01",
        "ab" * 32,
        "a" + "13800138000" * 5 + "b" * 8,  # 64 hex characters: a hash, not a number
        "0123456789abcdef",  # 16 hex characters with a letter: an opaque token
    ],
)
def test_detector_passes(text):
    assert classify_text(text) is None, text


def test_detector_15_digit_boundary():
    assert classify_digit_run("110101900229803") is None  # 1990-02-29 does not exist
    assert classify_digit_run("110101960229803") == ID_NUMBER  # 1996-02-29 does


def test_detector_17_digits_then_x_needs_x_check():
    first_17 = "44030519851023123"
    assert check_character(first_17) != "X"
    assert classify_text(first_17 + "X") is None


def test_finding_names_field_not_value():
    finding = find_in_transaction("n1", {"points": {"repayment_history": 10, "13800138000": 5}})
    assert finding is not None
    assert finding.field == "payload.points"
    assert finding.in_key
    assert "13800138000" not in repr(finding)

    finding = find_in_transaction("n-" + CARD_16, {"loan_id": "L1"})
    assert finding is not None
    assert (finding.field, finding.kind) == ("nonce", BANK_CARD_NUMBER)

    finding = find_in_transaction("n1", {"schedule": [{"note": "ok"}, {"ref": ID_WITH_X}]})
    assert finding is not None
    assert finding.field == "payload.schedule.1.ref"


def test_suspend_takes_reason_code_only():
    chain = Chain()
    free_text = "张三 身份证11010119900307803X 电话13800138000 北京市朝阳区建国路88号"
    assert chain.error(T0, "regulator", "member.suspend", {"member_id": "bank-b", "reason": "complaint upheld"}) == "invalid_payload"
    assert chain.error(T0, "regulator", "member.suspend", {"member_id": "bank-b", "reason": "李四"}) == "invalid_payload"
    receipt = chain.run(T0, "regulator", "member.suspend", {"member_id": "bank-b", "reason": free_text})
    assert receipt.error_code == "personal_data_in_payload"
    assert receipt.error_details == {"field": "payload.reason", "kind": ID_NUMBER}
    assert chain.state.get("member/bank-b")["status"] == "active"

    chain.ok(T0, "regulator", "member.suspend", {"member_id": "bank-b", "reason": "complaint_upheld", "note_hash": NOTE_HASH})
    record = chain.state.get("member/bank-b")
    assert record["status_reason"] == "complaint_upheld"
    assert record["status_note_hash"] == NOTE_HASH
    bad_hash = {"member_id": "bank-b", "reason": "issue_resolved", "note_hash": "not a hash"}
    assert chain.error(T0, "regulator", "member.reinstate", bad_hash) == "invalid_payload"


def test_free_text_notes_removed():
    chain = Chain()
    assert chain.error(T0, "regulator", "governance.propose", {"proposal_id": "p1", "action": {"kind": "set_params", "params": {}}, "reason": "张三 asked"}) == "invalid_payload"
    payload = {"mandate_id": "m1", "agency": "agency-a", "evaluated_on": "2024-03-01", "rating": 4, "note": "called 13800138000"}
    assert chain.error(T0, "bank-a", "mandate.evaluate", payload) == "personal_data_in_payload"
    payload["note"] = "good work"
    assert chain.error(T0, "bank-a", "mandate.evaluate", payload) == "invalid_payload"


@pytest.mark.parametrize(
    ("tx_type", "payload", "field"),
    [
        ("subject.register", {"subject_id": "5a" * 32, "commitment": "01" * 32, "label": "13800138000"}, "payload.label"),
        ("mandate.end", {"mandate_id": "m-" + ID_WITH_X, "reason": "contract_ended"}, "payload.mandate_id"),
        ("loan.write_off", {"loan_id": CARD_16, "amount": 1, "reason": "uncollectable"}, "payload.loan_id"),
    ],
)
def test_personal_number_in_any_field_rejected(tx_type, payload, field):
    chain = Chain()
    receipt = chain.run(T0, "bank-a", tx_type, payload)
    assert receipt.error_code == "personal_data_in_payload"
    assert receipt.error_details["field"] == field
    assert not any(str(value) in str(receipt.error_details) for value in payload.values() if isinstance(value, str) and len(value) > 8)


def test_nonce_checked_at_admission_and_delivery():
    chain = Chain()
    payload = {"subject_id": "5a" * 32, "commitment": "01" * 32}
    bad = replace(tx("bank-a", "subject.register", payload), nonce="n-13912345678")
    with pytest.raises(ContractError) as info:
        chain.executor.check_tx(chain.state, bad, T0)
    assert info.value.code == "personal_data_in_payload"
    assert info.value.details == {"field": "nonce", "kind": MOBILE_NUMBER}
    [receipt] = chain.block(T0, [bad])
    assert receipt.error_code == "personal_data_in_payload"
    assert chain.state.get("subject/" + "5a" * 32) is None

    good = replace(tx("bank-a", "subject.register", payload), nonce="n-1391234567")
    [receipt] = chain.block(T0, [good])
    assert receipt.ok


def test_ids_and_hashes_still_accepted():
    chain = Chain()
    subject = "a13800138000" + "b" * 52
    chain.ok(T0, "bank-a", "subject.register", {"subject_id": subject, "commitment": "1" * 63 + "a"})
    assert chain.state.get(f"subject/{subject}") is not None


def test_error_message_both_languages():
    english = message_for("personal_data_in_payload", "en")
    chinese = message_for("personal_data_in_payload", "zh-CN")
    assert "personal data never goes on chain" in english
    assert "个人信息不得上链" in chinese


def reference_kind(text: str) -> str | None:
    """Classify `text` by walking every character, the reference the regex-based detector must match."""
    if personal_data._OPAQUE_TOKEN.fullmatch(text):
        return None
    run: list[str] = []
    for character in text + "\x00":
        if character.isdecimal():
            run.append(str(unicodedata.decimal(character)))
            continue
        if run:
            kind = classify_digit_run("".join(run), character)
            if kind is not None:
                return kind
            run = []
    return None


digit_texts = st.text(alphabet=st.sampled_from("0123456789١٢٣０１２３Xx-a "), max_size=40)


@settings(max_examples=300, deadline=None)
@given(digit_texts)
def test_classify_text_matches_reference(text: str) -> None:
    assert classify_text(text) == reference_kind(text)


@pytest.mark.parametrize("text", ["call 13800138000", "id 11010119900307803X", "card 6222021234567890128", "١٣٨٠٠١٣٨٠٠٠", "11010119900307803Ｘ"])
def test_classify_text_numbers_match_reference(text: str) -> None:
    assert classify_text(text) is not None
    assert classify_text(text) == reference_kind(text)
