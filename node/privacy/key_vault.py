"""Per-subject data keys, wrapped with the node's master key.

Each subject's 32-byte data key is stored wrapped (PyNaCl SecretBox under the
node's master key) in its own small file, `<directory>/<2 hex>/<subject_id>.key`.
Destroying a key overwrites its file with zeros, syncs it, and unlinks it.

Why files and not LevelDB: LevelDB keeps deleted values in its log and table
files until a compaction happens to rewrite them, so a wrapped key deleted
there could be read back from disk together with the master key. A file that
is overwritten and unlinked is gone from the store's directory at once.
NOTE: on copy-on-write or journaling file systems and on SSDs the old blocks
may survive physically. Erasure relies on the key file no longer existing in
the file system, not on the medium being wiped.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

import nacl.exceptions
import nacl.secret

logger = logging.getLogger("xinlian.privacy.key_vault")

DATA_KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE  # 32
MASTER_KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE
_SUBJECT_ID = re.compile(r"[0-9a-f]{64}")


class KeyVaultError(RuntimeError):
    """A wrapped key is missing a subject binding or does not decrypt with the master key."""


def check_subject_id(subject_id: str) -> None:
    if not isinstance(subject_id, str) or not _SUBJECT_ID.fullmatch(subject_id):
        raise ValueError("subject_id must be 64 lowercase hex characters")


def load_master_key(path: str | os.PathLike[str]) -> bytes:
    """Read the node's master key (64 hex characters) from `path`. Errors name the file, never its content."""
    key_path = Path(path)
    try:
        key = bytes.fromhex(key_path.read_text(encoding="ascii").strip())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read master key file {key_path}: {type(exc).__name__}") from None
    if len(key) != MASTER_KEY_BYTES:
        raise ValueError(f"master key in {key_path} has {len(key)} bytes, needs {MASTER_KEY_BYTES}")
    return key


def write_master_key(path: str | os.PathLike[str]) -> None:
    """Write a new random master key as hex to `path`, with mode 0600. Refuses to overwrite."""
    descriptor = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_bytes(MASTER_KEY_BYTES).hex() + "\n")


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class KeyVault:
    """Creates, reads and destroys wrapped per-subject data keys in a directory."""

    def __init__(self, directory: str | os.PathLike[str], master_key: bytes) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            raise ValueError(f"master key must be {MASTER_KEY_BYTES} bytes")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._box = nacl.secret.SecretBox(master_key)

    def __repr__(self) -> str:
        return f"KeyVault(directory={str(self.directory)!r}, master_key=<hidden>)"

    def _path(self, subject_id: str) -> Path:
        check_subject_id(subject_id)
        return self.directory / subject_id[:2] / f"{subject_id}.key"

    def create(self, subject_id: str) -> bytes:
        """Create, store durably and return a new data key for `subject_id`, replacing any old one."""
        path = self._path(subject_id)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        # The subject id inside the wrapped bytes binds the key to its subject,
        # so a key file copied to another subject's name is rejected on read.
        wrapped = self._box.encrypt(bytes.fromhex(subject_id) + data_key)
        if path.exists():
            self.destroy(subject_id)
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(wrapped)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _sync_directory(path.parent)
        return data_key

    def get(self, subject_id: str) -> bytes | None:
        """Return the data key of `subject_id`, or None when it has none. Raises KeyVaultError if it is damaged."""
        path = self._path(subject_id)
        try:
            wrapped = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            plain = self._box.decrypt(wrapped)
        except nacl.exceptions.CryptoError:
            raise KeyVaultError(f"data key file of subject {subject_id} does not decrypt with this node's master key") from None
        if len(plain) != 32 + DATA_KEY_BYTES or plain[:32] != bytes.fromhex(subject_id):
            raise KeyVaultError(f"data key file of subject {subject_id} is bound to another subject")
        return plain[32:]

    def destroy(self, subject_id: str) -> bool:
        """Overwrite the key file with zeros, sync and unlink it. Return False when there was no key."""
        path = self._path(subject_id)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        with open(path, "r+b") as handle:
            handle.write(b"\x00" * size)
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()
        _sync_directory(path.parent)
        logger.info("destroyed data key of subject %s", subject_id)
        return True
