import os
from pathlib import Path

import nacl.exceptions
import nacl.secret
import pytest

from node.privacy.commitment import verify_commitment
from node.privacy.errors import PrivacyError
from node.privacy.key_vault import KeyVaultError, load_master_key, write_master_key
from node.privacy.offchain import OffchainStore

SUBJECT = "5d" * 32
OTHER_SUBJECT = "a7" * 32
NOW_MS = 1_780_000_000_000
RECORD = {
    "name": "欧阳测试者",
    "phones": ["13912345678", "+86 10 8765 4321"],
    "address": "北京市海淀区测试路 88 号 Zhongguancun Test Street",
    "details": {"employer": "Example Trading Co", "contact_person": {"name": "李联系人", "relation": "sibling"}},
}
PLAINTEXT_MARKERS = ["欧阳测试者", "13912345678", "8765 4321", "海淀区测试路", "Zhongguancun Test Street", "Example Trading Co", "李联系人"]


@pytest.fixture
def master_key() -> bytes:
    return bytes(range(32))


@pytest.fixture
def store(tmp_path, master_key):
    opened = OffchainStore(tmp_path / "offchain", master_key)
    yield opened
    opened.close()


def all_file_bytes(directory: Path) -> list[tuple[Path, bytes]]:
    return [(path, path.read_bytes()) for path in sorted(directory.rglob("*")) if path.is_file()]


def test_put_get_round_trip(store):
    stored = store.put(SUBJECT, RECORD, NOW_MS)
    read = store.get(SUBJECT)
    assert read.record == RECORD
    assert read.commitment == stored.commitment
    assert verify_commitment(read.commitment, RECORD, read.salt)
    assert read.stored_at_ms == NOW_MS
    assert store.state(SUBJECT) == "active"


def test_records_survive_reopen(tmp_path, master_key):
    first = OffchainStore(tmp_path / "offchain", master_key)
    stored = first.put(SUBJECT, RECORD, NOW_MS)
    first.close()
    second = OffchainStore(tmp_path / "offchain", master_key)
    try:
        assert second.get(SUBJECT).commitment == stored.commitment
    finally:
        second.close()


def test_new_put_uses_new_salt(store):
    first = store.put(SUBJECT, RECORD, NOW_MS)
    second = store.put(SUBJECT, RECORD, NOW_MS + 1)
    assert first.salt != second.salt
    assert first.commitment != second.commitment


def test_unknown_subject_not_found(store):
    with pytest.raises(PrivacyError) as raised:
        store.get(OTHER_SUBJECT)
    assert raised.value.code == "subject_not_found"


@pytest.mark.parametrize(
    "details, field",
    [
        ({"religion": "x"}, "details.religion"),
        ({"bloodType": "A"}, "details.bloodType"),
        ({"blood_group": "A"}, "details.blood_group"),
        ({"genetic_markers": "x"}, "details.genetic_markers"),
        ({"fingerprint_hash": "x"}, "details.fingerprint_hash"),
        ({"medical_history": "x"}, "details.medical_history"),
        ({"disease": "x"}, "details.disease"),
        ({"zongjiao": "x"}, "details.zongjiao"),
        ({"xuexing": "A"}, "details.xuexing"),
        ({"宗教信仰": "x"}, "details.宗教信仰"),
        ({"病史": "x"}, "details.病史"),
        ({"notes": [{"基因检测": "x"}]}, "details.notes[0].基因检测"),
    ],
)
def test_forbidden_fields_rejected(store, details, field):
    with pytest.raises(PrivacyError) as raised:
        store.put(SUBJECT, {"name": "n", "details": details}, NOW_MS, written_consent_ref="consent-1")
    assert raised.value.code == "forbidden_field"
    assert raised.value.details["field"] == field


@pytest.mark.parametrize("name", ["general_notes", "genealogy_note", "faithful_customer_since", "diseased"])
def test_similar_harmless_fields_accepted(store, name):
    # "faithful" and "diseased" are single words, not the forbidden words themselves.
    store.put(SUBJECT, {"name": "n", "details": {name: "x"}}, NOW_MS)
    assert name in store.get(SUBJECT).record["details"]


@pytest.mark.parametrize("name", ["monthly_income", "salary", "depositBalance", "savings", "property_value", "收入", "存款", "房产", "cunkuan"])
def test_income_fields_need_written_consent(store, name):
    record = {"name": "n", "details": {name: 100}}
    with pytest.raises(PrivacyError) as raised:
        store.put(SUBJECT, record, NOW_MS)
    assert raised.value.code == "written_consent_required"
    stored = store.put(SUBJECT, record, NOW_MS, written_consent_ref="consent-77")
    assert stored.written_consent_ref == "consent-77"


@pytest.mark.parametrize(
    "record",
    [
        ["not", "an", "object"],
        {"nickname": "x"},
        {"name": ""},
        {"name": 5},
        {"phones": "13900000000"},
        {"phones": ["1" * 33]},
        {"details": [1]},
        {"details": {"ratio": 0.5}},
        {"details": {"blob": "x" * 40_000}},
    ],
)
def test_invalid_record_rejected(store, record):
    with pytest.raises(PrivacyError) as raised:
        store.put(SUBJECT, record, NOW_MS)
    assert raised.value.code == "invalid_record"


def test_plaintext_never_on_disk(tmp_path, store):
    store.put(SUBJECT, RECORD, NOW_MS)
    for path, content in all_file_bytes(tmp_path):
        for marker in PLAINTEXT_MARKERS:
            assert marker.encode("utf-8") not in content, f"{marker} in {path}"


def test_erased_data_unreadable_on_disk(tmp_path, master_key):
    directory = tmp_path / "offchain"
    store = OffchainStore(directory, master_key)
    store.put(OTHER_SUBJECT, {"name": "keep"}, NOW_MS)
    store.put(SUBJECT, RECORD, NOW_MS)
    key_file = directory / "keys" / SUBJECT[:2] / f"{SUBJECT}.key"
    wrapped_key = key_file.read_bytes()
    store.erase(SUBJECT, NOW_MS + 1, reason="subject request")
    with pytest.raises(PrivacyError) as raised:
        store.get(SUBJECT)
    assert raised.value.code == "erased"
    assert store.get(OTHER_SUBJECT).record == {"name": "keep"}
    store.close()

    assert not key_file.exists()
    master_box = nacl.secret.SecretBox(master_key)
    window = len(wrapped_key)
    for path, content in all_file_bytes(directory):
        for marker in PLAINTEXT_MARKERS:
            assert marker.encode("utf-8") not in content, f"{marker} in {path}"
        assert wrapped_key not in content, f"wrapped data key still in {path}"
        # No byte window anywhere decrypts with the master key to the erased subject's key.
        for offset in range(0, max(0, len(content) - window) + 1):
            try:
                plain = master_box.decrypt(content[offset : offset + window])
            except nacl.exceptions.CryptoError:
                continue
            assert plain[:32] != bytes.fromhex(SUBJECT), f"erased subject's key decrypts from {path} at {offset}"


def test_erasure_survives_reopen(tmp_path, master_key):
    store = OffchainStore(tmp_path / "offchain", master_key)
    store.put(SUBJECT, RECORD, NOW_MS)
    store.erase(SUBJECT, NOW_MS + 1, reason="subject request")
    store.close()
    reopened = OffchainStore(tmp_path / "offchain", master_key)
    try:
        assert reopened.state(SUBJECT) == "erased"
        with pytest.raises(PrivacyError):
            reopened.get(SUBJECT)
    finally:
        reopened.close()


def test_frozen_subject_kept_not_served(store):
    store.put(SUBJECT, RECORD, NOW_MS)
    store.freeze(SUBJECT, NOW_MS + 1, retain_until="2031-06-30", reason="retention: open litigation")
    with pytest.raises(PrivacyError) as raised:
        store.get(SUBJECT)
    assert raised.value.code == "frozen"
    with pytest.raises(PrivacyError) as raised:
        store.put(SUBJECT, RECORD, NOW_MS + 2)
    assert raised.value.code == "frozen"
    assert store.purge_expired_frozen("2031-06-30", NOW_MS + 3) == []
    assert store.state(SUBJECT) == "frozen"
    assert store.purge_expired_frozen("2031-07-01", NOW_MS + 4) == [SUBJECT]
    assert store.state(SUBJECT) == "erased"


def test_erased_subject_cannot_be_frozen(store):
    store.put(SUBJECT, RECORD, NOW_MS)
    store.erase(SUBJECT, NOW_MS + 1, reason="subject request")
    with pytest.raises(PrivacyError) as raised:
        store.freeze(SUBJECT, NOW_MS + 2, retain_until="2031-01-01", reason="late hold")
    assert raised.value.code == "erased"


def test_key_file_moved_to_other_subject_rejected(tmp_path, store):
    store.put(SUBJECT, RECORD, NOW_MS)
    store.put(OTHER_SUBJECT, {"name": "other"}, NOW_MS)
    keys = tmp_path / "offchain" / "keys"
    source = (keys / SUBJECT[:2] / f"{SUBJECT}.key").read_bytes()
    (keys / OTHER_SUBJECT[:2] / f"{OTHER_SUBJECT}.key").write_bytes(source)
    with pytest.raises(KeyVaultError):
        store.get(OTHER_SUBJECT)


def test_wrong_master_key_cannot_read(tmp_path, master_key):
    store = OffchainStore(tmp_path / "offchain", master_key)
    store.put(SUBJECT, RECORD, NOW_MS)
    store.close()
    other = OffchainStore(tmp_path / "offchain", bytes(32))
    try:
        with pytest.raises(KeyVaultError):
            other.get(SUBJECT)
    finally:
        other.close()


def test_master_key_file(tmp_path):
    path = tmp_path / "master.key"
    write_master_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert len(load_master_key(path)) == 32
    path.write_text("00" * 16)
    with pytest.raises(ValueError, match="needs 32"):
        load_master_key(path)


def test_open_node_privacy_creates_master_key(tmp_path):
    from node.privacy.setup import open_node_privacy
    from node.privacy.subject_id import write_consortium_secret

    write_consortium_secret(tmp_path / "consortium.secret")
    first = open_node_privacy(tmp_path / "data", tmp_path / "consortium.secret")
    stored = first.store.put(SUBJECT, RECORD, NOW_MS)
    subject_id = first.hasher.subject_id("11010519491231002X")
    first.close()
    master_key_path = tmp_path / "data" / "privacy" / "master.key"
    assert os.stat(master_key_path).st_mode & 0o777 == 0o600

    second = open_node_privacy(tmp_path / "data", tmp_path / "consortium.secret")
    try:
        assert second.store.get(SUBJECT).commitment == stored.commitment
        assert second.hasher.subject_id("110105491231002") == subject_id
    finally:
        second.close()
