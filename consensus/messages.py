"""Consensus messages: frozen values, their wire form and their signatures.

`to_wire()` returns a JSON-compatible dict (bytes as lowercase hex). The
signature covers every wire field except `signature` itself, with one
exception: a PRE-PREPARE signs the digest, not the payload, so the payload is
bound through `digest == payload_digest(payload)`, which receivers check.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from consensus.crypto import Signer
from consensus.encoding import signing_bytes


class ConsensusDecodeError(ValueError):
    """A wire message from a peer that is malformed."""


@dataclass(frozen=True)
class PrePrepare:
    TYPE: ClassVar[str] = "pre_prepare"
    view: int
    seq: int
    digest: str
    payload: bytes
    sender: str
    signature: bytes = b""

    def signed_fields(self) -> dict[str, Any]:
        return {"type": self.TYPE, "view": self.view, "seq": self.seq, "digest": self.digest, "sender": self.sender}

    def to_wire(self) -> dict[str, Any]:
        return {**self.signed_fields(), "payload": self.payload.hex(), "signature": self.signature.hex()}

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, self.signed_fields())


@dataclass(frozen=True)
class Prepare:
    TYPE: ClassVar[str] = "prepare"
    view: int
    seq: int
    digest: str
    sender: str
    signature: bytes = b""

    def signed_fields(self) -> dict[str, Any]:
        return {"type": self.TYPE, "view": self.view, "seq": self.seq, "digest": self.digest, "sender": self.sender}

    def to_wire(self) -> dict[str, Any]:
        return {**self.signed_fields(), "signature": self.signature.hex()}

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, self.signed_fields())


@dataclass(frozen=True)
class Commit:
    TYPE: ClassVar[str] = "commit"
    view: int
    seq: int
    digest: str
    sender: str
    signature: bytes = b""

    def signed_fields(self) -> dict[str, Any]:
        return {"type": self.TYPE, "view": self.view, "seq": self.seq, "digest": self.digest, "sender": self.sender}

    def to_wire(self) -> dict[str, Any]:
        return {**self.signed_fields(), "signature": self.signature.hex()}

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, self.signed_fields())


@dataclass(frozen=True)
class Checkpoint:
    TYPE: ClassVar[str] = "checkpoint"
    seq: int
    state_digest: str
    sender: str
    signature: bytes = b""

    def signed_fields(self) -> dict[str, Any]:
        return {"type": self.TYPE, "seq": self.seq, "state_digest": self.state_digest, "sender": self.sender}

    def to_wire(self) -> dict[str, Any]:
        return {**self.signed_fields(), "signature": self.signature.hex()}

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, self.signed_fields())


@dataclass(frozen=True)
class PreparedCertificate:
    """A PRE-PREPARE and the PREPAREs from other validators that prepared it."""

    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]

    @property
    def seq(self) -> int:
        return self.pre_prepare.seq

    @property
    def view(self) -> int:
        return self.pre_prepare.view

    def to_wire(self) -> dict[str, Any]:
        return {"pre_prepare": self.pre_prepare.to_wire(), "prepares": [p.to_wire() for p in self.prepares]}

    @classmethod
    def from_wire(cls, wire: Any) -> PreparedCertificate:
        fields = _fields(wire, {"pre_prepare", "prepares"})
        pre_prepare = _decode_typed(fields["pre_prepare"], PrePrepare)
        prepares = tuple(_decode_typed(item, Prepare) for item in _list(fields, "prepares", VOTES_PER_CERTIFICATE_MAX))
        return cls(pre_prepare, prepares)


@dataclass(frozen=True)
class ViewChange:
    TYPE: ClassVar[str] = "view_change"
    new_view: int
    stable_seq: int
    checkpoint_proof: tuple[Checkpoint, ...]
    prepared_certificates: tuple[PreparedCertificate, ...]
    sender: str
    signature: bytes = b""

    def signed_fields(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "new_view": self.new_view,
            "stable_seq": self.stable_seq,
            "checkpoint_proof": [c.to_wire() for c in self.checkpoint_proof],
            "prepared_certificates": [c.to_wire() for c in self.prepared_certificates],
            "sender": self.sender,
        }

    def to_wire(self) -> dict[str, Any]:
        return {**self.signed_fields(), "signature": self.signature.hex()}

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, self.signed_fields())


@dataclass(frozen=True)
class NewView:
    TYPE: ClassVar[str] = "new_view"
    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    sender: str
    signature: bytes = b""

    def signed_fields(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "view": self.view,
            "view_changes": [v.to_wire() for v in self.view_changes],
            "pre_prepares": [p.to_wire() for p in self.pre_prepares],
            "sender": self.sender,
        }

    def to_wire(self) -> dict[str, Any]:
        return {**self.signed_fields(), "signature": self.signature.hex()}

    def signing_bytes(self, chain_id: str) -> bytes:
        return signing_bytes(chain_id, self.signed_fields())


Message = Union[PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView]


@dataclass(frozen=True)
class CommitCertificate:
    """A quorum of matching COMMITs for one (view, seq, digest)."""

    view: int
    seq: int
    digest: str
    commits: tuple[Commit, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "seq": self.seq,
            "digest": self.digest,
            "commits": [c.to_wire() for c in self.commits],
        }

    @classmethod
    def from_wire(cls, wire: Any) -> CommitCertificate:
        fields = _fields(wire, {"view", "seq", "digest", "commits"})
        commits = tuple(_decode_typed(item, Commit) for item in _list(fields, "commits", VOTES_PER_CERTIFICATE_MAX))
        return cls(_int(fields, "view"), _int(fields, "seq"), _digest(fields, "digest"), commits)


@dataclass(frozen=True)
class CertifiedBlock:
    """A committed payload with the certificate that proves it was committed."""

    seq: int
    view: int
    digest: str
    payload: bytes
    certificate: CommitCertificate

    def to_wire(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "view": self.view,
            "digest": self.digest,
            "payload": self.payload.hex(),
            "certificate": self.certificate.to_wire(),
        }

    @classmethod
    def from_wire(cls, wire: Any) -> CertifiedBlock:
        fields = _fields(wire, {"seq", "view", "digest", "payload", "certificate"})
        return cls(
            _int(fields, "seq"),
            _int(fields, "view"),
            _digest(fields, "digest"),
            _hex(fields, "payload", PAYLOAD_BYTES_MAX),
            CommitCertificate.from_wire(fields["certificate"]),
        )


def sign_message(message: Any, signer: Signer, chain_id: str) -> Any:
    """Return a copy of `message` with `sender` and `signature` set by `signer`."""
    unsigned = dataclasses.replace(message, sender=signer.public_key, signature=b"")
    return dataclasses.replace(unsigned, signature=signer.sign(unsigned.signing_bytes(chain_id)))


# Decoding limits for untrusted input. The node's transport also limits frame size.
PAYLOAD_BYTES_MAX = 16 * 1024 * 1024
VOTES_PER_CERTIFICATE_MAX = 1024  # more than any consortium this design targets
PRE_PREPARES_PER_NEW_VIEW_MAX = 4096
DIGEST_CHARS_MAX = 128
INT_MAX = 2**63 - 1
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def decode_message(wire: Any) -> Message:
    """Decode a peer's wire dict into a message, or raise ConsensusDecodeError.

    Only the form is checked here: signatures, membership and protocol rules are
    the replica's job.
    """
    if not isinstance(wire, dict):
        raise ConsensusDecodeError(f"message must be a JSON object, got {type(wire).__name__}")
    message_type = wire.get("type")
    decoder = _DECODERS.get(message_type) if isinstance(message_type, str) else None
    if decoder is None:
        raise ConsensusDecodeError(f"unknown message type {message_type!r}")
    return decoder(wire)


def _decode_pre_prepare(wire: Any) -> PrePrepare:
    fields = _fields(wire, {"type", "view", "seq", "digest", "payload", "sender", "signature"})
    return PrePrepare(
        _int(fields, "view"),
        _int(fields, "seq"),
        _digest(fields, "digest"),
        _hex(fields, "payload", PAYLOAD_BYTES_MAX),
        _public_key(fields),
        _signature(fields),
    )


def _decode_vote(cls: type[Prepare] | type[Commit]) -> Any:
    def decode(wire: Any) -> Prepare | Commit:
        fields = _fields(wire, {"type", "view", "seq", "digest", "sender", "signature"})
        return cls(
            _int(fields, "view"), _int(fields, "seq"), _digest(fields, "digest"), _public_key(fields), _signature(fields)
        )

    return decode


def _decode_checkpoint(wire: Any) -> Checkpoint:
    fields = _fields(wire, {"type", "seq", "state_digest", "sender", "signature"})
    return Checkpoint(_int(fields, "seq"), _digest(fields, "state_digest"), _public_key(fields), _signature(fields))


def _decode_view_change(wire: Any) -> ViewChange:
    fields = _fields(
        wire, {"type", "new_view", "stable_seq", "checkpoint_proof", "prepared_certificates", "sender", "signature"}
    )
    proof = tuple(
        _decode_typed(item, Checkpoint) for item in _list(fields, "checkpoint_proof", VOTES_PER_CERTIFICATE_MAX)
    )
    certificates = tuple(
        PreparedCertificate.from_wire(item)
        for item in _list(fields, "prepared_certificates", PRE_PREPARES_PER_NEW_VIEW_MAX)
    )
    return ViewChange(
        _int(fields, "new_view"),
        _int(fields, "stable_seq"),
        proof,
        certificates,
        _public_key(fields),
        _signature(fields),
    )


def _decode_new_view(wire: Any) -> NewView:
    fields = _fields(wire, {"type", "view", "view_changes", "pre_prepares", "sender", "signature"})
    view_changes = tuple(
        _decode_typed(item, ViewChange) for item in _list(fields, "view_changes", VOTES_PER_CERTIFICATE_MAX)
    )
    pre_prepares = tuple(
        _decode_typed(item, PrePrepare) for item in _list(fields, "pre_prepares", PRE_PREPARES_PER_NEW_VIEW_MAX)
    )
    return NewView(_int(fields, "view"), view_changes, pre_prepares, _public_key(fields), _signature(fields))


_DECODERS = {
    PrePrepare.TYPE: _decode_pre_prepare,
    Prepare.TYPE: _decode_vote(Prepare),
    Commit.TYPE: _decode_vote(Commit),
    Checkpoint.TYPE: _decode_checkpoint,
    ViewChange.TYPE: _decode_view_change,
    NewView.TYPE: _decode_new_view,
}


def _decode_typed(wire: Any, cls: type) -> Any:
    message = decode_message(wire)
    if not isinstance(message, cls):
        raise ConsensusDecodeError(f"expected a {cls.TYPE} message, got {type(message).TYPE}")
    return message


def _fields(wire: Any, expected_keys: set[str]) -> dict[str, Any]:
    if not isinstance(wire, dict):
        raise ConsensusDecodeError(f"expected a JSON object, got {type(wire).__name__}")
    keys = set(wire)
    if keys != expected_keys:
        missing = sorted(expected_keys - keys)
        unexpected = sorted(str(k) for k in keys - expected_keys)
        raise ConsensusDecodeError(f"invalid fields: missing {missing}, unexpected {unexpected}")
    return wire


def _int(fields: dict[str, Any], key: str) -> int:
    value = fields[key]
    if type(value) is not int or not 0 <= value <= INT_MAX:
        raise ConsensusDecodeError(f"{key} must be an integer in [0, 2^63), got {value!r:.40}")
    return value


def _is_lower_hex(text: str) -> bool:
    return _LOWER_HEX.fullmatch(text) is not None


def _hex(fields: dict[str, Any], key: str, bytes_max: int) -> bytes:
    value = fields[key]
    if isinstance(value, str) and len(value) <= 2 * bytes_max:
        try:
            data = bytes.fromhex(value)
        except ValueError:
            data = None
        # fromhex also takes uppercase and spaces, so the round trip pins the lowercase form.
        # Both steps run in C. The regex this replaced took milliseconds over a megabyte payload.
        if data is not None and data.hex() == value:
            return data
    raise ConsensusDecodeError(f"{key} must be lowercase hex of at most {bytes_max} bytes")


def _digest(fields: dict[str, Any], key: str) -> str:
    value = fields[key]
    if not isinstance(value, str) or not 0 < len(value) <= DIGEST_CHARS_MAX or not value.isascii():
        raise ConsensusDecodeError(f"{key} must be an ASCII string of 1 to {DIGEST_CHARS_MAX} chars")
    if not value.isprintable():
        raise ConsensusDecodeError(f"{key} must not contain control characters")
    return value


def _public_key(fields: dict[str, Any]) -> str:
    value = fields["sender"]
    if not isinstance(value, str) or len(value) != 64 or not _is_lower_hex(value):
        raise ConsensusDecodeError("sender must be a 64-char lowercase hex ed25519 public key")
    return value


def _signature(fields: dict[str, Any]) -> bytes:
    value = fields["signature"]
    if not isinstance(value, str) or len(value) != 128 or not _is_lower_hex(value):
        raise ConsensusDecodeError("signature must be 128 lowercase hex chars (64 bytes)")
    return bytes.fromhex(value)


def _list(fields: dict[str, Any], key: str, items_max: int) -> list[Any]:
    value = fields[key]
    if not isinstance(value, list):
        raise ConsensusDecodeError(f"{key} must be a list")
    if len(value) > items_max:
        raise ConsensusDecodeError(f"{key} has {len(value)} items, more than the maximum {items_max}")
    return value
