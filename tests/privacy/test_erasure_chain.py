"""Erasure across nodes: a committed subject.erase reaches the off-chain store of every node that applies its event."""

from pathlib import Path

import nacl.exceptions
import nacl.secret
import pytest

from node.privacy.access import check_access
from node.privacy.erasure import apply_erasure_event, reconcile_erasures
from node.privacy.errors import PrivacyError
from node.privacy.offchain import OffchainStore
from node.privacy.read_auth import Reader
from node.privacy.sharing import build_details_request, handle_details_request
from tests.privacy.chain import new_chain, time_of

SUBJECT = "3c" * 32
TODAY = "2026-04-01"
NOW_MS = time_of(TODAY)
MASTER_KEYS = {"bank-1": bytes(range(32)), "bank-2": bytes(range(100, 132))}
RECORDS = {
    "bank-1": {"name": "司马删除", "phones": ["13655512345"], "address": "广州市天河区删除路 7 号 Erasure Road"},
    "bank-2": {"name": "司马删除", "phones": ["13655512345", "020 8888 1234"], "details": {"employer": "Shredding Works Ltd"}},
}
PLAINTEXT_MARKERS = ["司马删除", "13655512345", "020 8888 1234", "天河区删除路", "Erasure Road", "Shredding Works Ltd"]


@pytest.fixture
def chain():
    chain = new_chain()
    chain.register_subject(SUBJECT, "2026-03-02")
    return chain


@pytest.fixture
def stores(tmp_path):
    """Two nodes' off-chain stores in separate LevelDB directories, each holding its own copy of the subject."""
    opened = {}
    for member_id, master_key in MASTER_KEYS.items():
        store = OffchainStore(tmp_path / member_id / "privacy" / "store", master_key)
        store.put(SUBJECT, RECORDS[member_id], NOW_MS - 86_400_000)
        opened[member_id] = store
    yield opened
    for store in opened.values():
        store.close()


def erase(chain, sender_key, mode="erase", erasure_id="e1", date=TODAY, **extra):
    payload = {"erasure_id": erasure_id, "subject_id": SUBJECT, "mode": mode, "reason": "subject_request", **extra}
    return chain.deliver(sender_key, "subject.erase", payload, date)


def freeze(chain, erasure_id="f1", retain_until="2031-06-30"):
    payload = {"erasure_id": erasure_id, "subject_id": SUBJECT, "mode": "freeze", "reason": "retention_hold", "retain_until": retain_until}
    return chain.member("bank-1", "subject.erase", payload, TODAY)


def key_file(store: OffchainStore) -> Path:
    return store.directory / "keys" / SUBJECT[:2] / f"{SUBJECT}.key"


def error_code(call) -> str:
    with pytest.raises(PrivacyError) as raised:
        call()
    return raised.value.code


def assert_no_trace(directory: Path, master_key: bytes, wrapped_key: bytes) -> None:
    """Check every file under `directory`: no plaintext, no wrapped key, no window that decrypts to the subject's key."""
    master_box = nacl.secret.SecretBox(master_key)
    window = len(wrapped_key)
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        content = path.read_bytes()
        for marker in PLAINTEXT_MARKERS:
            assert marker.encode("utf-8") not in content, f"{marker} in {path}"
        assert wrapped_key not in content, f"wrapped data key still in {path}"
        for offset in range(0, max(0, len(content) - window) + 1):
            try:
                plain = master_box.decrypt(content[offset : offset + window])
            except nacl.exceptions.CryptoError:
                continue
            assert plain[:32] != bytes.fromhex(SUBJECT), f"erased subject's key decrypts from {path} at {offset}"


def test_erase_reaches_both_nodes(chain, stores):
    wrapped_keys = {member_id: key_file(store).read_bytes() for member_id, store in stores.items()}
    receipt = erase(chain, chain.subject_keys[SUBJECT])
    [event] = receipt.events
    assert event.type == "subject.erased"
    assert event.members == ()

    for member_id, store in stores.items():
        assert apply_erasure_event(event, store) == "erased", member_id
        assert error_code(lambda: store.get(SUBJECT)) == "erased"
        assert store.status(SUBJECT)["erasure_id"] == "e1"
        assert not key_file(store).exists()
        store.close()

    for member_id, store in stores.items():
        assert_no_trace(store.directory, MASTER_KEYS[member_id], wrapped_keys[member_id])


def test_erasure_survives_reopen(chain, stores, tmp_path):
    [event] = erase(chain, chain.subject_keys[SUBJECT]).events
    apply_erasure_event(event, stores["bank-2"])
    stores["bank-2"].close()
    reopened = OffchainStore(tmp_path / "bank-2" / "privacy" / "store", MASTER_KEYS["bank-2"])
    try:
        assert reopened.state(SUBJECT) == "erased"
        assert apply_erasure_event(event, reopened) == "unchanged"
    finally:
        reopened.close()


def test_apply_is_idempotent(chain, stores):
    [event] = erase(chain, chain.subject_keys[SUBJECT]).events
    store = stores["bank-1"]
    assert apply_erasure_event(event, store) == "erased"
    status = store.status(SUBJECT)
    assert apply_erasure_event(event, store) == "unchanged"
    assert apply_erasure_event(event, store) == "unchanged"
    assert store.status(SUBJECT) == status


def test_node_holding_nothing_applies_safely(chain, tmp_path):
    empty = OffchainStore(tmp_path / "collector-1" / "store", bytes(range(50, 82)))
    try:
        [event] = erase(chain, chain.subject_keys[SUBJECT]).events
        assert apply_erasure_event(event, empty) == "erased"
        assert empty.state(SUBJECT) == "erased"
        assert error_code(lambda: empty.get(SUBJECT)) == "erased"
        assert apply_erasure_event(event, empty) == "unchanged"
    finally:
        empty.close()


def test_freeze_on_node_holding_nothing(chain, tmp_path):
    empty = OffchainStore(tmp_path / "collector-1" / "store", bytes(range(50, 82)))
    try:
        [event] = freeze(chain).events
        assert apply_erasure_event(event, empty) == "frozen"
        assert error_code(lambda: empty.get(SUBJECT)) == "frozen"
        # Nothing new is stored for the subject while the freeze lasts.
        assert error_code(lambda: empty.put(SUBJECT, {"name": "new copy"}, NOW_MS)) == "frozen"
    finally:
        empty.close()


def test_freeze_keeps_data_refuses_reads(chain, stores):
    [event] = freeze(chain).events
    assert event.type == "subject.frozen"
    for member_id, store in stores.items():
        assert apply_erasure_event(event, store) == "frozen", member_id
        assert apply_erasure_event(event, store) == "unchanged", member_id
        assert error_code(lambda: store.get(SUBJECT)) == "frozen"
        assert key_file(store).exists()
        # The record is kept and still decrypts. Only serving it is refused.
        assert store._decrypt(SUBJECT).record == RECORDS[member_id]
        assert store.status(SUBJECT)["retain_until"] == "2031-06-30"


def test_freeze_ends_with_chain_deadline(chain, stores):
    [frozen] = freeze(chain, retain_until="2026-05-31").events
    for store in stores.values():
        apply_erasure_event(frozen, store)
    assert chain.begin_block("2026-05-31") == []
    events = [event for event in chain.begin_block("2026-06-01") if event.type == "subject.erased"]
    assert len(events) == 1
    assert events[0].data["reason"] == "retention_ended"
    for store in stores.values():
        assert apply_erasure_event(events[0], store) == "erased"
        assert not key_file(store).exists()
        assert error_code(lambda: store.get(SUBJECT)) == "erased"


def test_freeze_after_local_erasure_keeps_erased(chain, stores):
    store = stores["bank-1"]
    store.erase(SUBJECT, NOW_MS, reason="local request")
    [event] = freeze(chain).events
    assert apply_erasure_event(event, store) == "unchanged"
    assert store.state(SUBJECT) == "erased"


def details_request(chain, requester="bank-2"):
    return build_details_request(chain.client_keys[requester], requester, SUBJECT, "credit_query", NOW_MS)


@pytest.mark.parametrize("mode, expected", [("erase", "erased"), ("freeze", "frozen")])
def test_details_refused_before_event_applied(chain, stores, mode, expected):
    chain.grant("c-query", SUBJECT, "bank-2", "credit_query", "2026-12-31", "2026-03-10")
    chain.grant("c-share", SUBJECT, "bank-2", "data_sharing", "2026-12-31", "2026-03-10")
    store = stores["bank-1"]
    served = handle_details_request(details_request(chain), chain.state, store, TODAY, NOW_MS, holder="bank-1")
    assert served["ok"] is True

    if mode == "erase":
        erase(chain, chain.subject_keys[SUBJECT])
    else:
        freeze(chain)
    assert store.state(SUBJECT) == "active"  # this node has not applied the event yet
    for requester in ("bank-2", "regulator-1"):
        response = handle_details_request(details_request(chain, requester), chain.state, store, TODAY, NOW_MS, holder="bank-1")
        assert response["ok"] is False
        assert response["error"]["code"] == expected
    subject_reader = Reader(public_key=chain.subject_keys[SUBJECT].verify_key.encode().hex(), subject_id=SUBJECT)
    assert error_code(lambda: check_access(chain.state, subject_reader, SUBJECT, "credit_query", TODAY, kind="details")) == expected


def test_reports_not_refused_by_chain_marker(chain):
    erase(chain, chain.subject_keys[SUBJECT])
    regulator = Reader(public_key=chain.client_keys["regulator-1"].verify_key.encode().hex(), member_id="regulator-1", role="regulator")
    assert check_access(chain.state, regulator, SUBJECT, "credit_query", TODAY, kind="report").basis == "regulator"


def test_reconcile_applies_missed_events(chain, stores):
    erase(chain, chain.subject_keys[SUBJECT])
    store = stores["bank-2"]
    assert store.state(SUBJECT) == "active"  # the node crashed before applying the event
    assert reconcile_erasures(chain.state, store) == {SUBJECT: "erased"}
    assert not key_file(store).exists()
    assert reconcile_erasures(chain.state, store) == {SUBJECT: "unchanged"}


def test_apply_ignores_other_events(stores):
    event = {"type": "consent.granted", "data": {"subject_id": SUBJECT}}
    assert apply_erasure_event(event, stores["bank-1"]) == "ignored"
    assert stores["bank-1"].state(SUBJECT) == "active"


@pytest.mark.parametrize(
    "event_type, data",
    [
        ("subject.erased", None),
        ("subject.erased", {"erasure_id": "e1", "subject_id": "XYZ", "at_ms": NOW_MS}),
        ("subject.erased", {"erasure_id": "e 1", "subject_id": SUBJECT, "at_ms": NOW_MS}),
        ("subject.erased", {"erasure_id": "e1", "subject_id": SUBJECT, "at_ms": 1.5}),
        ("subject.frozen", {"erasure_id": "f1", "subject_id": SUBJECT, "at_ms": NOW_MS, "retain_until": None}),
    ],
)
def test_apply_rejects_malformed_event(stores, event_type, data):
    with pytest.raises(ValueError):
        apply_erasure_event({"type": event_type, "data": data}, stores["bank-1"])
    assert stores["bank-1"].state(SUBJECT) == "active"
