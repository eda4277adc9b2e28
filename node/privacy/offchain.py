"""The node's encrypted off-chain store of personal data.

Layout under the store's directory:

- `records/`: LevelDB (through node.storage) with two keys per subject.
  `record/<subject_id>` is the record envelope (record, salt, commitment and
  written-consent reference) as canonical JSON, encrypted with the subject's
  data key (SecretBox). `status/<subject_id>` is the plain status
  `{"state": "active" | "frozen" | "erased", ...}`, which contains no personal data.
- `keys/`: the wrapped per-subject data keys (see key_vault).

Erasure destroys the data key first and then deletes the ciphertext, so even a
copy of the LevelDB files cannot be decrypted afterwards. Where a retention law
applies, the subject is frozen instead: data and key are kept, and every read
raises `frozen` until `purge_expired_frozen` erases it after its retention date.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret

from node.canonical import CanonicalError, canonical_bytes, parse_json
from node.privacy.commitment import commit, new_salt
from node.privacy.errors import PrivacyError
from node.privacy.field_policy import check_fields
from node.privacy.key_vault import KeyVault, check_subject_id
from node.storage import KeyValueStore, open_store

logger = logging.getLogger("xinlian.privacy.offchain")

RECORD_PREFIX = b"record/"
STATUS_PREFIX = b"status/"
RECORD_BYTES_MAX = 32 * 1024
NAME_LENGTH_MAX = 200
ADDRESS_LENGTH_MAX = 500
PHONES_MAX = 20
PHONE_LENGTH_MAX = 32
CONSENT_REF_LENGTH_MAX = 128
TOP_LEVEL_FIELDS = ("address", "details", "name", "phones")

STATE_ACTIVE = "active"
STATE_FROZEN = "frozen"
STATE_ERASED = "erased"


@dataclass(frozen=True)
class StoredRecord:
    """A decrypted record with the salt and commitment that prove it against the chain."""

    subject_id: str
    record: dict[str, Any]
    salt: bytes
    commitment: str
    written_consent_ref: str | None
    stored_at_ms: int


def _invalid(field: str, reason: str) -> PrivacyError:
    return PrivacyError("invalid_record", field=field, reason=reason)


def validate_record(record: Any, written_consent_ref: str | None) -> None:
    """Check the record's shape, sizes and field policy; raise invalid_record, forbidden_field or written_consent_required."""
    if not isinstance(record, dict):
        raise _invalid("$", "record must be a JSON object")
    check_fields(record, written_consent_ref)

    for key in sorted(record):
        if key not in TOP_LEVEL_FIELDS:
            raise _invalid(key, f"unknown field; use {', '.join(TOP_LEVEL_FIELDS)}")

    name = record.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= NAME_LENGTH_MAX):
        raise _invalid("name", f"must be a string of 1-{NAME_LENGTH_MAX} characters")
    address = record.get("address")
    if address is not None and (not isinstance(address, str) or len(address) > ADDRESS_LENGTH_MAX):
        raise _invalid("address", f"must be a string of at most {ADDRESS_LENGTH_MAX} characters")

    phones = record.get("phones")
    if phones is not None:
        if not isinstance(phones, list) or len(phones) > PHONES_MAX:
            raise _invalid("phones", f"must be a list of at most {PHONES_MAX} strings")
        for index, phone in enumerate(phones):
            if not isinstance(phone, str) or not 0 < len(phone) <= PHONE_LENGTH_MAX:
                raise _invalid(f"phones[{index}]", f"must be a string of 1-{PHONE_LENGTH_MAX} characters")

    details = record.get("details")
    if details is not None and not isinstance(details, dict):
        raise _invalid("details", "must be a JSON object")

    if written_consent_ref is not None and (
        not isinstance(written_consent_ref, str) or not 0 < len(written_consent_ref) <= CONSENT_REF_LENGTH_MAX
    ):
        raise _invalid("written_consent_ref", f"must be a string of 1-{CONSENT_REF_LENGTH_MAX} characters")

    try:
        size = len(canonical_bytes(record))
    except CanonicalError as exc:
        raise _invalid("$", str(exc)) from None
    if size > RECORD_BYTES_MAX:
        raise _invalid("$", f"record encodes to {size} bytes, more than {RECORD_BYTES_MAX}")


class OffchainStore:
    """Encrypted personal-data records of one node, keyed by subject_id."""

    def __init__(self, directory: str | os.PathLike[str], master_key: bytes) -> None:
        self.directory = Path(directory)
        self._vault = KeyVault(self.directory / "keys", master_key)
        self._store: KeyValueStore = open_store(self.directory / "records")

    def __repr__(self) -> str:
        return f"OffchainStore(directory={str(self.directory)!r})"

    def close(self) -> None:
        self._store.close()

    # Status

    def status(self, subject_id: str) -> dict[str, Any] | None:
        """Return the subject's status object, or None when this node never stored the subject."""
        check_subject_id(subject_id)
        raw = self._store.get(STATUS_PREFIX + subject_id.encode("ascii"))
        return None if raw is None else parse_json(raw)

    def state(self, subject_id: str) -> str | None:
        """Return "active", "frozen", "erased", or None when this node never stored the subject."""
        status = self.status(subject_id)
        return None if status is None else status["state"]

    # Writing

    def put(
        self, subject_id: str, record: dict[str, Any], now_ms: int, written_consent_ref: str | None = None
    ) -> StoredRecord:
        """Encrypt and store the subject's record under a new data key and salt; return it with its commitment.

        A frozen subject raises `frozen`. An erased subject may be stored again:
        that is a new collection, which needs its own legal basis and consent.
        """
        check_subject_id(subject_id)
        validate_record(record, written_consent_ref)
        if self.state(subject_id) == STATE_FROZEN:
            raise PrivacyError("frozen", subject_id=subject_id)

        salt = new_salt()
        stored = StoredRecord(subject_id, record, salt, commit(record, salt), written_consent_ref, now_ms)
        envelope = {
            "subject_id": subject_id,
            "record": record,
            "salt": salt.hex(),
            "commitment": stored.commitment,
            "written_consent_ref": written_consent_ref,
            "stored_at_ms": now_ms,
        }
        data_key = self._vault.create(subject_id)
        ciphertext = nacl.secret.SecretBox(data_key).encrypt(canonical_bytes(envelope))
        status = {"state": STATE_ACTIVE, "changed_at_ms": now_ms}
        key = subject_id.encode("ascii")
        self._store.write([(RECORD_PREFIX + key, bytes(ciphertext)), (STATUS_PREFIX + key, canonical_bytes(status))])
        logger.info("stored record of subject %s", subject_id)
        return stored

    # Reading

    def get(self, subject_id: str) -> StoredRecord:
        """Decrypt and return the subject's record; raise subject_not_found, erased or frozen."""
        state = self.state(subject_id)
        if state is None:
            raise PrivacyError("subject_not_found", subject_id=subject_id)
        if state == STATE_ERASED:
            raise PrivacyError("erased", subject_id=subject_id)
        if state == STATE_FROZEN:
            raise PrivacyError("frozen", subject_id=subject_id)
        return self._decrypt(subject_id)

    def _decrypt(self, subject_id: str) -> StoredRecord:
        ciphertext = self._store.get(RECORD_PREFIX + subject_id.encode("ascii"))
        data_key = self._vault.get(subject_id)
        if ciphertext is None or data_key is None:
            # An erasure interrupted between destroying the key and writing the status.
            logger.error("subject %s is active but its record or data key is missing: treating it as erased", subject_id)
            raise PrivacyError("erased", subject_id=subject_id)
        try:
            envelope = parse_json(nacl.secret.SecretBox(data_key).decrypt(ciphertext))
        except nacl.exceptions.CryptoError:
            logger.error("record of subject %s does not decrypt with its data key", subject_id)
            raise
        if envelope["subject_id"] != subject_id:
            raise RuntimeError(f"record stored under subject {subject_id} belongs to another subject")
        return StoredRecord(
            subject_id=subject_id,
            record=envelope["record"],
            salt=bytes.fromhex(envelope["salt"]),
            commitment=envelope["commitment"],
            written_consent_ref=envelope["written_consent_ref"],
            stored_at_ms=envelope["stored_at_ms"],
        )

    # Erasure

    def erase(self, subject_id: str, now_ms: int, reason: str, erasure_id: str | None = None) -> None:
        """Destroy the subject's data key, then delete its ciphertext and mark it erased.

        Erasing a subject this node never stored still records the erased status,
        so a later copy from a peer is not served either. Erasing twice is a no-op.
        `erasure_id` names the on-chain `subject.erase` request, when there is one.
        """
        check_subject_id(subject_id)
        self._vault.destroy(subject_id)
        key = subject_id.encode("ascii")
        status = {"state": STATE_ERASED, "changed_at_ms": now_ms, "reason": reason}
        if erasure_id is not None:
            status["erasure_id"] = erasure_id
        self._store.write([(RECORD_PREFIX + key, None), (STATUS_PREFIX + key, canonical_bytes(status))])
        logger.info("erased subject %s: %s", subject_id, reason)

    def freeze(
        self,
        subject_id: str,
        now_ms: int,
        retain_until: str,
        reason: str,
        erasure_id: str | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Keep the subject's data but stop serving it until `retain_until` (YYYY-MM-DD), when retention law applies.

        A subject this node never stored raises `subject_not_found`, unless
        `missing_ok` is set: then only the frozen status is written, so nothing
        new is stored for the subject until the retention date.
        """
        state = self.state(subject_id)
        if state is None and not missing_ok:
            raise PrivacyError("subject_not_found", subject_id=subject_id)
        if state == STATE_ERASED:
            raise PrivacyError("erased", subject_id=subject_id)
        status = {"state": STATE_FROZEN, "changed_at_ms": now_ms, "reason": reason, "retain_until": retain_until}
        if erasure_id is not None:
            status["erasure_id"] = erasure_id
        self._store.write([(STATUS_PREFIX + subject_id.encode("ascii"), canonical_bytes(status))])
        logger.info("froze subject %s until %s: %s", subject_id, retain_until, reason)

    def purge_expired_frozen(self, today: str, now_ms: int) -> list[str]:
        """Erase every frozen subject whose `retain_until` date is before `today`; return their ids in order."""
        expired = []
        for key, raw in self._store.iterate(prefix=STATUS_PREFIX):
            status = parse_json(raw)
            if status["state"] == STATE_FROZEN and status["retain_until"] < today:
                expired.append(key[len(STATUS_PREFIX):].decode("ascii"))
        for subject_id in expired:
            self.erase(subject_id, now_ms, reason="retention period ended")
        return expired
