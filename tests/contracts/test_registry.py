import pytest

from node.contracts import XinlianExecutor
from node.contracts.params import CN_DEFAULTS, US_OVERRIDES
from node.execution import ContractError
from tests.contracts.harness import Chain, key_of, make_genesis, ms_at, tx
from tests.contracts.memstate import MemoryState

T0 = ms_at("2024-03-01")


def test_genesis_stores_members_and_keys():
    chain = Chain()
    member = chain.state.get("member/bank-a")
    assert member["role"] == "bank"
    assert member["status"] == "active"
    assert chain.state.get(f"member_key/{key_of('client:bank-a')}") == {"member_id": "bank-a", "kind": "client"}
    assert chain.state.get(f"member_key/{key_of('node:bank-a')}") == {"member_id": "bank-a", "kind": "node"}
    validators = chain.state.get("validators")
    assert validators["members"] == ["bank-a", "agency-x", "collector-1", "regulator"]
    assert validators["node_keys"][0] == key_of("node:bank-a")


def test_genesis_params_merge_profile_and_overrides():
    chain = Chain(make_genesis(params={"dials_per_number_per_day_max": 5}))
    params = chain.state.get("params")
    assert params["dials_per_number_per_day_max"] == 5
    assert params["contact_end_minute"] == CN_DEFAULTS["contact_end_minute"]
    us = Chain(make_genesis(profile="US")).state.get("params")
    for name, value in US_OVERRIDES.items():
        assert us[name] == value


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"no_such_param": 1}},
        {"params": {"dials_per_number_per_day_max": -1}},
        {"params": {"contact_start_minute": 1400, "contact_end_minute": 1300}},
        {"validators": ["nobody"]},
        {"members": []},
    ],
)
def test_genesis_rejects_invalid(change):
    genesis = make_genesis()
    genesis.update(change)
    with pytest.raises(ContractError):
        XinlianExecutor().init_genesis(MemoryState(), genesis)


def test_genesis_requires_regulator():
    genesis = make_genesis()
    genesis["members"] = [m for m in genesis["members"] if m["role"] != "regulator"]
    genesis["validators"] = ["bank-a"]
    with pytest.raises(ContractError) as info:
        XinlianExecutor().init_genesis(MemoryState(), genesis)
    assert info.value.code == "invalid_genesis"


def test_genesis_accepts_validator_node_keys():
    genesis = make_genesis()
    genesis["validators"] = [key_of("node:bank-b"), "regulator"]
    state = MemoryState()
    XinlianExecutor().init_genesis(state, genesis)
    assert state.get("validators")["members"] == ["bank-b", "regulator"]


SUBJECT = "ab" * 32


@pytest.mark.parametrize(
    "signer, tx_type, expected",
    [
        ("bank-a", "subject.register", None),
        ("agency-x", "subject.register", None),
        ("collector-1", "subject.register", "role_not_allowed"),
        ("regulator", "subject.register", "role_not_allowed"),
        ("key:" + "cd" * 32, "subject.register", "unknown_sender"),
        ("bank-a", "no.such.type", "unknown_tx_type"),
    ],
)
def test_check_tx_roles(signer, tx_type, expected):
    chain = Chain()
    payload = {"subject_id": SUBJECT, "commitment": "01" * 32}
    try:
        chain.executor.check_tx(chain.state, tx(signer, tx_type, payload), T0)
        code = None
    except ContractError as exc:
        code = exc.code
    assert code == expected


def test_check_tx_node_key_is_a_sender():
    chain = Chain()
    payload = {"subject_id": SUBJECT, "commitment": "01" * 32}
    chain.executor.check_tx(chain.state, tx("key:" + key_of("node:bank-a"), "subject.register", payload), T0)


def test_check_tx_rejects_bad_payload():
    chain = Chain()
    bad = [
        {"subject_id": SUBJECT},
        {"subject_id": SUBJECT, "commitment": "01" * 32, "name": "Zhang San"},
        {"subject_id": "XY", "commitment": "01" * 32},
        {"subject_id": SUBJECT, "commitment": 5},
    ]
    for payload in bad:
        with pytest.raises(ContractError) as info:
            chain.executor.check_tx(chain.state, tx("bank-a", "subject.register", payload), T0)
        assert info.value.code == "invalid_payload"


def test_subject_key_can_send_subject_types():
    chain = Chain()
    subject_key = "ef" * 32
    chain.ok(T0, "bank-a", "subject.register", {"subject_id": SUBJECT, "commitment": "01" * 32, "subject_key": subject_key})
    assert chain.error(T0, "key:" + subject_key, "subject.register", {"subject_id": "cd" * 32, "commitment": "01" * 32}) == "role_not_allowed"
    assert chain.error(T0, "bank-b", "subject.register", {"subject_id": "cd" * 32, "commitment": "01" * 32, "subject_key": subject_key}) == "subject_key_in_use"
    assert chain.error(T0, "bank-b", "subject.register", {"subject_id": SUBJECT, "commitment": "01" * 32}) == "duplicate_id"


def test_suspend_and_reinstate():
    chain = Chain()
    payload = {"subject_id": SUBJECT, "commitment": "01" * 32}
    assert chain.error(T0, "bank-a", "member.suspend", {"member_id": "bank-b", "reason": "other"}) == "role_not_allowed"
    chain.ok(T0, "regulator", "member.suspend", {"member_id": "bank-b", "reason": "audit_finding"})
    assert chain.state.get("member/bank-b")["status"] == "suspended"
    with pytest.raises(ContractError) as info:
        chain.executor.check_tx(chain.state, tx("bank-b", "subject.register", payload), T0)
    assert info.value.code == "sender_suspended"
    assert chain.error(T0, "bank-b", "subject.register", payload) == "sender_suspended"
    assert chain.error(T0, "regulator", "member.suspend", {"member_id": "bank-b", "reason": "other"}) == "member_already_suspended"
    chain.ok(T0, "regulator", "member.reinstate", {"member_id": "bank-b", "reason": "issue_resolved"})
    chain.ok(T0, "bank-b", "subject.register", payload)
    assert chain.error(T0, "regulator", "member.reinstate", {"member_id": "bank-b", "reason": "other"}) == "member_not_suspended"


def test_suspend_needs_reason_and_known_member():
    chain = Chain()
    assert chain.error(T0, "regulator", "member.suspend", {"member_id": "bank-b"}) == "invalid_payload"
    assert chain.error(T0, "regulator", "member.suspend", {"member_id": "bank-b", "reason": ""}) == "invalid_payload"
    assert chain.error(T0, "regulator", "member.suspend", {"member_id": "ghost", "reason": "other"}) == "unknown_member"
    assert chain.error(T0, "regulator", "member.suspend", {"member_id": "regulator", "reason": "other"}) == "cannot_suspend_regulator"


def test_rejected_tx_leaves_state_unchanged():
    chain = Chain()
    before = chain.state.snapshot()
    assert chain.error(T0, "regulator", "member.suspend", {"member_id": "ghost", "reason": "other"}) == "unknown_member"
    assert chain.state.snapshot() == before
