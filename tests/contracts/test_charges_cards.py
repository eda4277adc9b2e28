"""loan.charge boundaries, and card loans classified by the time step with the card bounds."""

import pytest

from node.contracts.queries import get_loan
from tests.contracts.harness import Chain, ms_at, register_loan, setup_subject

T0 = ms_at("2024-01-31")


def charge(charge_id: str, number: int = 1, amount: int = 500, kind: str = "penalty") -> dict:
    return {"loan_id": "L1", "charge_id": charge_id, "number": number, "kind": kind, "amount": amount, "reason": "late_payment"}


def new_loan(**extra) -> Chain:
    chain = Chain()
    setup_subject(chain, T0)
    register_loan(chain, T0, **extra)
    return chain


def test_charge_adds_costs_to_instalment():
    chain = new_loan()
    receipt = chain.ok(T0, "bank-a", "loan.charge", charge("f1", number=3, amount=700, kind="cost"))
    assert receipt.events[-1].type == "loan.charged"
    loan = get_loan(chain.state, "L1", "2024-01-31")
    assert loan["instalments"][2]["costs"] == 700
    assert loan["outstanding"] == 303_000 + 700
    assert loan["charges"] == [{"charge_id": "f1", "number": 3, "kind": "cost", "amount": 700, "charged_on": "2024-01-31"}]


def test_charge_instalment_number_boundary():
    chain = new_loan()  # three instalments
    chain.ok(T0, "bank-a", "loan.charge", charge("f3", number=3))
    assert chain.error(T0, "bank-a", "loan.charge", charge("f4", number=4)) == "not_found"
    assert chain.error(T0, "bank-a", "loan.charge", charge("f0", number=0)) == "invalid_payload"


def test_charge_amount_and_kind_checked():
    chain = new_loan()
    assert chain.error(T0, "bank-a", "loan.charge", charge("f1", amount=0)) == "invalid_payload"
    assert chain.error(T0, "bank-a", "loan.charge", charge("f1", kind="interest")) == "invalid_payload"
    chain.ok(T0, "bank-a", "loan.charge", charge("f1", amount=1))
    assert chain.error(T0, "bank-a", "loan.charge", charge("f1")) == "duplicate_id"


def test_charge_only_by_creditor_on_open_loan():
    chain = new_loan()
    assert chain.error(T0, "bank-b", "loan.charge", charge("f1")) == "not_creditor"
    assert chain.error(T0, "collector-1", "loan.charge", charge("f1")) == "role_not_allowed"
    chain.ok(T0, "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 303_000, "paid_on": "2024-01-31"})
    assert chain.error(T0, "bank-a", "loan.charge", charge("f1")) == "loan_closed"


def test_unpaid_charge_alone_is_not_overdue():
    # DPD counts unpaid principal and interest only (L2): a late fee left unpaid does not make the loan overdue.
    chain = new_loan()
    chain.ok(ms_at("2024-02-20"), "bank-a", "loan.charge", charge("f1", number=1, amount=500))
    chain.ok(ms_at("2024-02-29"), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p1", "amount": 101_000, "paid_on": "2024-02-29"})
    chain.block(ms_at("2024-03-01"))
    loan = get_loan(chain.state, "L1", "2024-03-01")
    assert loan["instalments"][0]["paid_costs"] == 500
    assert loan["dpd"] == 1  # the fee took 500 first, so 500 of instalment 1 stays unpaid
    chain.ok(ms_at("2024-03-01"), "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": "p2", "amount": 500, "paid_on": "2024-03-01"})
    chain.ok(ms_at("2024-03-01"), "bank-a", "loan.charge", charge("f2", number=1, amount=300))
    assert get_loan(chain.state, "L1", "2024-03-02")["dpd"] == 0


CARD_DUE = "2024-02-29"  # the first instalment's due date


@pytest.mark.parametrize(
    "product, dpd, grade",
    [
        ("card", 90, "special_mention"), ("card", 91, "substandard"), ("card", 120, "substandard"),
        ("card", 121, "doubtful"), ("card", 180, "doubtful"), ("card", 181, "loss"),
        ("loan", 121, "substandard"), ("loan", 181, "substandard"),
    ],
)
def test_card_grade_by_time_step(product, dpd, grade):
    from node.contracts.dates import add_days

    chain = new_loan(terms={"product": product})
    chain.block(ms_at(add_days(CARD_DUE, dpd)))
    stored = chain.state.get("loan/L1")
    assert stored["grade"] == grade
    assert get_loan(chain.state, "L1", add_days(CARD_DUE, dpd))["classification"] == grade


def test_card_grade_changes_on_each_bound():
    from node.contracts.dates import add_days

    chain = new_loan(terms={"product": "card"})
    chain.block(ms_at("2024-03-01"))
    for dpd in (91, 121, 181):
        assert chain.state.get("loan/L1")["next_event_on"] == add_days(CARD_DUE, dpd)
        chain.block(ms_at(add_days(CARD_DUE, dpd)))
    changes = [(event.data["from"], event.data["to"], event.data["dpd"]) for event in chain.events_of("loan.classified")]
    assert changes == [
        ("normal", "special_mention", 1),
        ("special_mention", "substandard", 91),
        ("substandard", "doubtful", 121),
        ("doubtful", "loss", 181),
    ]
    assert chain.state.get("loan/L1")["next_event_on"] is None
