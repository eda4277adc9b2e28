"""The genesis file: the consortium's chain id, start time, parameters, members and validators.

Every node of a consortium loads the same file. `genesis_hash` is the SHA-256 hex
of the canonical encoding of the validated model, so two files that differ only
in whitespace or key order have the same hash. Contract parameter defaults
belong to `node.contracts`; `params` here contains only the overrides.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from node.canonical import CanonicalError, canonical_bytes, parse_json, sha256_hex

MemberRole = Literal["bank", "credit_agency", "collector", "regulator"]

_HEX64 = r"^[0-9a-f]{64}$"
_ID = r"^[A-Za-z0-9._:-]{1,64}$"


class GenesisError(ValueError):
    """A genesis file that is missing, not strict JSON, or fails validation."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class GenesisMember(_Strict):
    member_id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    role: MemberRole
    node_key: str = Field(pattern=_HEX64)  # signs consensus and peer messages
    client_keys: tuple[str, ...] = ()  # sign this member's transactions
    p2p_url: str = ""
    api_url: str = ""
    licensed: bool = False  # D14: only meaningful for credit agencies

    @model_validator(mode="after")
    def _check_client_keys(self) -> "GenesisMember":
        for key in self.client_keys:
            if not isinstance(key, str) or len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
                raise ValueError(f"client key {key!r} of member {self.member_id} is not 64 lowercase hex characters")
        if len(set(self.client_keys)) != len(self.client_keys):
            raise ValueError(f"member {self.member_id} lists a client key twice")
        return self


class GenesisLimits(_Strict):
    tx_size_max_bytes: int = Field(default=65_536, ge=1024)
    block_tx_max: int = Field(default=2_000, ge=1)
    block_size_max_bytes: int = Field(default=8 * 1024 * 1024, ge=65_536)
    tx_expiry_window_ms: int = Field(default=3_600_000, ge=1)
    # How far a proposal's timestamp may be ahead of a replica's clock.
    block_time_drift_ms: int = Field(default=30_000, ge=0)


class Genesis(_Strict):
    chain_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    genesis_time_ms: int = Field(ge=0)
    utc_offset_minutes: int = Field(default=480, ge=-720, le=840)
    profile: Literal["CN", "US"] = "CN"
    params: dict[str, Any] = Field(default_factory=dict)
    members: tuple[GenesisMember, ...] = Field(min_length=1)
    validators: tuple[str, ...] = Field(min_length=1)  # member ids in primary-rotation order
    limits: GenesisLimits = GenesisLimits()

    @model_validator(mode="after")
    def _check_consistency(self) -> "Genesis":
        member_ids = [member.member_id for member in self.members]
        if len(set(member_ids)) != len(member_ids):
            raise ValueError("two members have the same member_id")
        node_keys = [member.node_key for member in self.members]
        if len(set(node_keys)) != len(node_keys):
            raise ValueError("two members have the same node_key")
        client_keys = [key for member in self.members for key in member.client_keys]
        if len(set(client_keys)) != len(client_keys):
            raise ValueError("two members share a client key")
        if len(set(self.validators)) != len(self.validators):
            raise ValueError("a validator is listed twice")
        unknown = [member_id for member_id in self.validators if member_id not in member_ids]
        if unknown:
            raise ValueError(f"validators {unknown} are not members")
        try:
            canonical_bytes(self.params)
        except CanonicalError as exc:
            raise ValueError(f"params: {exc}") from None
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form that is hashed and handed to the executor's init_genesis."""
        return self.model_dump(mode="json")

    def member(self, member_id: str) -> GenesisMember | None:
        for member in self.members:
            if member.member_id == member_id:
                return member
        return None

    def member_by_node_key(self, node_key: str) -> GenesisMember | None:
        for member in self.members:
            if member.node_key == node_key:
                return member
        return None


def genesis_hash(genesis: Genesis) -> str:
    return sha256_hex(canonical_bytes(genesis.to_dict()))


def validator_node_keys(genesis: Genesis) -> tuple[str, ...]:
    """Return the validators' node public keys in rotation order (for ReplicaConfig.validators)."""
    keys = []
    for member_id in genesis.validators:
        member = genesis.member(member_id)
        assert member is not None  # the model validator checked every validator is a member
        keys.append(member.node_key)
    return tuple(keys)


def parse_genesis(data: bytes | str | dict[str, Any]) -> Genesis:
    """Validate genesis content. Raises GenesisError naming the failing field."""
    try:
        value = data if isinstance(data, dict) else parse_json(data)
        # Strict validation in JSON mode accepts arrays for tuple fields but no type coercion.
        return Genesis.model_validate_json(canonical_bytes(value))
    except CanonicalError as exc:
        raise GenesisError(f"genesis is not valid strict JSON: {exc}") from None
    except ValidationError as exc:
        raise GenesisError(f"invalid genesis: {exc}") from None


def load_genesis(path: str | os.PathLike[str]) -> Genesis:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GenesisError(f"cannot read genesis file {path}: {exc.strerror}") from None
    try:
        return parse_genesis(data)
    except GenesisError as exc:
        raise GenesisError(f"{path}: {exc}") from None


def save_genesis(path: str | os.PathLike[str], genesis: Genesis) -> Path:
    """Write the genesis as indented JSON with sorted keys (the hash does not depend on layout)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(genesis.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
