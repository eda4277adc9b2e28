"""Replay part of the demo timeline through the real contract executor and compare with expected.py."""

from collections import defaultdict
from dataclasses import replace

import pytest

from node.contracts.params import load_params
from node.contracts.queries import loan_view
from node.demo.expected import dpd_on_day, max_dpd, read_ledgers
from node.demo.homecredit import load_book
from node.demo.mapping import date_to_day, map_book
from node.demo.timeline import build_timeline
from node.privacy.subject_id import SubjectIdHasher
from tests.contracts.harness import Chain, make_genesis, ms_at, tx

# 80 clients include loans whose peak DPD falls on a payment day, so the max_dpd check can fail.
CLIENT_COUNT = 80
AFTER_LAST_PAYMENT = "2018-05-01"


@pytest.fixture(scope="module")
def replay():
    mapped = map_book(load_book())
    clients = {subject.client_id for subject in mapped.subjects[:CLIENT_COUNT]}
    part = replace(
        mapped,
        subjects=tuple(subject for subject in mapped.subjects if subject.client_id in clients),
        loans=tuple(loan for loan in mapped.loans if loan.client_id in clients),
    )
    timeline = build_timeline(part, SubjectIdHasher(bytes(range(32))).subject_id)

    genesis = make_genesis()
    genesis["genesis_time_ms"] = ms_at("2010-01-01", 0)
    chain = Chain(genesis)
    events_by_date = defaultdict(list)
    for event in timeline.events:
        events_by_date[event["date"]].append(event)
    rejected = []
    for date in timeline.dates:
        events = events_by_date[date]
        receipts = chain.block(ms_at(date, 12), [tx(event["sender"], event["type"], event["payload"]) for event in events])
        rejected.extend((event["type"], event["nonce"], receipt.error_code) for event, receipt in zip(events, receipts) if not receipt.ok)
    return part, timeline, chain, rejected


@pytest.fixture(scope="module")
def ledgers():
    return read_ledgers()


def test_replay_accepts_every_event(replay):
    part, timeline, _chain, rejected = replay
    assert len(part.loans) > CLIENT_COUNT
    assert len(timeline.events) > 400
    assert rejected == []


def test_replay_balances_match(replay):
    part, _timeline, chain, _rejected = replay
    params = load_params(chain.state)
    for loan in part.loans:
        stored = chain.state.get(f"loan/{loan.loan_id}")
        view = loan_view(stored, AFTER_LAST_PAYMENT, params)
        paid = sum(payment.amount for payment in loan.payments)
        due = loan.principal + loan.interest
        assert view["outstanding"] == max(0, due - paid), loan.loan_id
        assert stored["credit_balance"] == max(0, paid - due), loan.loan_id


def test_replay_final_dpd_matches_expected(replay, ledgers):
    part, _timeline, chain, _rejected = replay
    params = load_params(chain.state)
    for loan in part.loans:
        view = loan_view(chain.state.get(f"loan/{loan.loan_id}"), AFTER_LAST_PAYMENT, params)
        assert view["dpd"] == dpd_on_day(ledgers[loan.source_loan_id], date_to_day(AFTER_LAST_PAYMENT)), loan.loan_id


def test_replay_max_dpd_matches_expected(replay, ledgers):
    # expected.max_dpd is the peak DPD on any day. A payment day counts before
    # its payments are applied, and the chain must store the same peak.
    part, _timeline, chain, _rejected = replay
    params = load_params(chain.state)
    as_of_day = date_to_day(AFTER_LAST_PAYMENT)
    for loan in part.loans:
        view = loan_view(chain.state.get(f"loan/{loan.loan_id}"), AFTER_LAST_PAYMENT, params)
        assert view["max_dpd"] == max_dpd(ledgers[loan.source_loan_id], as_of_day), loan.loan_id
