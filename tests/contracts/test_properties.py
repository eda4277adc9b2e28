import json

from hypothesis import given, settings, strategies as st

from node.contracts.loans import COMPONENTS, outstanding
from tests.contracts.harness import Chain, ms_at, register_loan, setup_subject, tx

T0 = ms_at("2024-01-31")

payments = st.lists(st.tuples(st.integers(min_value=1, max_value=200_000), st.integers(min_value=0, max_value=120)), min_size=1, max_size=6)


def fresh_loan(chain):
    setup_subject(chain, T0)
    register_loan(chain, T0)


@settings(max_examples=40, deadline=None)
@given(payments, st.integers(min_value=0, max_value=5))
def test_allocation_conserves_money(plan, reverse_index):
    chain = Chain()
    fresh_loan(chain)
    total_due = outstanding(chain.state.get("loan/L1"))
    for number, (amount, day) in enumerate(plan):
        at = T0 + day * 86_400_000
        receipt = chain.run(at + number, "bank-a", "repayment.record", {"loan_id": "L1", "payment_id": f"p{number}", "amount": amount, "paid_on": _date(at)})
        assert receipt.ok, receipt.error_code
        payment = chain.state.get(f"payment/L1/p{number}")
        assert sum(part["amount"] for part in payment["allocation"]) + payment["credit"] == amount
    if reverse_index < len(plan):
        chain.ok(T0 + 200 * 86_400_000, "bank-a", "repayment.reverse", {"loan_id": "L1", "payment_id": f"p{reverse_index}", "reason": "other"})
    loan = chain.state.get("loan/L1")
    live = [chain.state.get(f"payment/L1/p{n}") for n in range(len(plan))]
    paid = sum(p["amount"] for p in live if p["reversed_on"] is None)
    for item in loan["instalments"]:
        for component in COMPONENTS:
            assert 0 <= item[f"paid_{component}"] <= item[component]
    assert loan["credit_balance"] >= 0
    assert total_due - outstanding(loan) + loan["credit_balance"] == paid


def _date(time_ms):
    from node.contracts.dates import local_date

    return local_date(time_ms, 480)


def _scenario_txs(order_seed):
    """One fixed list of transactions, with payload dicts built in a key order chosen by the seed."""
    def shuffled(payload):
        keys = sorted(payload)
        if order_seed % 2:
            keys.reverse()
        return {key: payload[key] for key in keys}

    return [
        ("bank-a", "repayment.record", shuffled({"loan_id": "L1", "payment_id": "p1", "amount": 50_000, "paid_on": "2024-03-05"})),
        ("bank-a", "mandate.grant", shuffled({"mandate_id": "m1", "agencies": ["collector-2", "collector-1"], "start_dpd": 1, "valid_from": "2024-01-01", "valid_until": "2025-01-01", "commission_rate_bp": 1000})),
        ("bank-a", "mandate.evaluate", shuffled({"mandate_id": "m1", "agency": "collector-1", "evaluated_on": "2024-03-01", "rating": 3})),
        ("bank-a", "mandate.evaluate", shuffled({"mandate_id": "m1", "agency": "collector-2", "evaluated_on": "2024-03-01", "rating": 5})),
    ]


def _run(order_seed):
    chain = Chain()
    fresh_loan(chain)
    for signer, tx_type, payload in _scenario_txs(order_seed):
        chain.block(ms_at("2024-03-05"), [tx(signer, tx_type, payload)])
    for day in range(6, 30):
        chain.block(ms_at(f"2024-03-{day:02d}"))
    return json.dumps(chain.state.snapshot(), sort_keys=True)


@settings(max_examples=6, deadline=None)
@given(st.integers(min_value=0, max_value=1000))
def test_same_transactions_same_state(order_seed):
    assert _run(order_seed) == _run(0)


def test_replay_gives_same_state():
    first = _run(1)
    second = _run(1)
    assert first == second
    assert '"case/case-' in first
