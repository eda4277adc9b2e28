"""Ed25519 key files: `{"public_key": "<64 hex>", "seed": "<64 hex>"}`, mode 0600.

Node keys sign consensus and peer-handshake messages; client keys sign
transactions. The seed is the secret and never appears in logs or errors.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.signing

logger = logging.getLogger("xinlian.keys")


class KeyFileError(ValueError):
    """A key file that is missing, unreadable or invalid."""


@dataclass(frozen=True)
class KeyPair:
    seed: bytes = b""  # 32 bytes; excluded from repr so it cannot leak into logs
    public_key: str = ""  # lowercase hex

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise KeyFileError("an ed25519 seed must be 32 bytes")
        derived = nacl.signing.SigningKey(self.seed).verify_key.encode().hex()
        if self.public_key and self.public_key != derived:
            raise KeyFileError(f"public key {self.public_key} does not match the seed (the seed gives {derived})")
        object.__setattr__(self, "public_key", derived)

    def __repr__(self) -> str:
        return f"KeyPair(public_key={self.public_key!r})"

    @property
    def signing_key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte ed25519 signature of `data`."""
        return self.signing_key.sign(data).signature


def generate_key() -> KeyPair:
    """Generate a key pair from the operating system's random source."""
    return KeyPair(seed=os.urandom(32))


def key_from_seed(seed: bytes) -> KeyPair:
    return KeyPair(seed=seed)


def write_key_file(path: str | os.PathLike[str], key: KeyPair, overwrite: bool = False) -> Path:
    """Write `key` to `path` with mode 0600, creating parent directories.

    Raises KeyFileError if the file exists and `overwrite` is false. An existing
    file that is overwritten also gets mode 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path} already exists; remove it or choose another path") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from None
    text = json.dumps({"public_key": key.public_key, "seed": key.seed.hex()}, indent=2) + "\n"
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
    return path


def load_key_file(path: str | os.PathLike[str]) -> KeyPair:
    """Load a key file. Raises KeyFileError; logs a warning if group or others may read it."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} not found; create one with `xinlian keygen --out {path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("key file %s has mode %o; group and others should have no access (chmod 600)", path, stat.S_IMODE(mode))
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise KeyFileError(f"key file {path} is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("seed"), str):
        raise KeyFileError(f"key file {path} needs a \"seed\" field of 64 hex characters")
    try:
        seed = bytes.fromhex(data["seed"])
    except ValueError:
        raise KeyFileError(f"the seed in key file {path} is not hex") from None
    public_key = data.get("public_key", "")
    if not isinstance(public_key, str):
        raise KeyFileError(f"the public_key in key file {path} is not a string")
    try:
        return KeyPair(seed=seed, public_key=public_key.lower())
    except KeyFileError as exc:
        raise KeyFileError(f"key file {path}: {exc}") from None
