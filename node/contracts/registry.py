"""The member registry: genesis members, key lookup, suspension, and data subjects.

State keys:
  chain                     {chain_id, genesis_time_ms, utc_offset_minutes, profile}
  member/<member_id>        member record (role, keys, licensed, status)
  member_key/<public key>   {member_id, kind: "client" | "node"}
  validators                {members: [member ids in rotation order], node_keys: [...]}
  subject/<subject_id>      {subject_id, commitment, subject_key, registered_by, registered_on}
  subject_key/<public key>  subject_id
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from node.contracts.errors import fail
from node.contracts.models import Hex64, Payload, RecordId, parse_payload, ReasonCode
from node.contracts.params import PARAMS_KEY, resolve_params

ROLES = ("bank", "credit_agency", "collector", "regulator")
Role = Literal["bank", "credit_agency", "collector", "regulator"]


class MemberSpec(Payload):
    """A member as written in the genesis file or in an admission proposal."""

    model_config = Payload.model_config | {"extra": "ignore"}

    member_id: RecordId
    name: str = ""
    role: Role
    node_key: Hex64
    client_keys: list[Hex64] = Field(default_factory=list, max_length=32)
    licensed: bool = False
    p2p_url: str = ""
    api_url: str = ""


class GenesisSpec(Payload):
    """The fields of the genesis file the contracts use; the node validates the rest."""

    model_config = Payload.model_config | {"extra": "ignore"}

    chain_id: str
    genesis_time_ms: int
    utc_offset_minutes: int = Field(default=480, ge=-14 * 60, le=14 * 60)
    profile: Literal["CN", "US"] = "CN"
    params: dict[str, Any] = Field(default_factory=dict)
    members: list[MemberSpec] = Field(min_length=1)
    validators: list[str] = Field(min_length=1)


class MemberActionPayload(Payload):
    member_id: RecordId
    reason: ReasonCode
    note_hash: Hex64 | None = None


class SubjectRegisterPayload(Payload):
    subject_id: Hex64
    commitment: Hex64
    subject_key: Hex64 | None = None


@dataclass(frozen=True)
class Sender:
    """Who signed a transaction: a member (by client or node key) or a data subject."""

    key: str
    member_id: str | None = None
    role: str | None = None
    subject_id: str | None = None

    @property
    def is_member(self) -> bool:
        return self.member_id is not None


def member_record(spec: MemberSpec) -> dict[str, Any]:
    return {
        "member_id": spec.member_id,
        "name": spec.name,
        "role": spec.role,
        "node_key": spec.node_key,
        "client_keys": sorted(set(spec.client_keys)),
        "licensed": spec.licensed,
        "p2p_url": spec.p2p_url,
        "api_url": spec.api_url,
        "status": "active",
        "status_reason": "",
    }


def add_member(state: Any, spec: MemberSpec) -> dict[str, Any]:
    """Store a new member and index its keys; raise if the id or a key is taken."""
    if state.get(f"member/{spec.member_id}") is not None:
        fail("duplicate_id", member_id=spec.member_id)
    record = member_record(spec)
    keys = [(spec.node_key, "node")] + [(key, "client") for key in record["client_keys"]]
    for key, kind in keys:
        if state.get(f"member_key/{key}") is not None or state.get(f"subject_key/{key}") is not None:
            fail("invalid_action", reason="key already registered", key=key)
        state.put(f"member_key/{key}", {"member_id": spec.member_id, "kind": kind})
    state.put(f"member/{spec.member_id}", record)
    return record


def remove_member(state: Any, member_id: str) -> None:
    """Mark a member removed; its keys stop resolving, its history stays."""
    record = get_member_or_fail(state, member_id)
    for key in [record["node_key"]] + record["client_keys"]:
        state.delete(f"member_key/{key}")
    record["status"] = "removed"
    state.put(f"member/{member_id}", record)


def get_member_or_fail(state: Any, member_id: str) -> dict[str, Any]:
    record = state.get(f"member/{member_id}")
    if record is None:
        fail("unknown_member", member_id=member_id)
    return record


def active_members(state: Any) -> list[dict[str, Any]]:
    """Members that are neither suspended nor removed, sorted by id."""
    return [record for _, record in state.scan("member/") if record["status"] == "active"]


def validator_node_keys(state: Any, member_ids: list[str]) -> list[str]:
    keys = []
    for member_id in member_ids:
        keys.append(get_member_or_fail(state, member_id)["node_key"])
    return keys


def set_validators(state: Any, member_ids: list[str]) -> dict[str, Any]:
    record = {"members": list(member_ids), "node_keys": validator_node_keys(state, member_ids)}
    state.put("validators", record)
    return record


def _resolve_validator_ids(state: Any, entries: list[str]) -> list[str]:
    """Accept validators as member ids or node keys (the genesis file may list either)."""
    member_ids = []
    for entry in entries:
        if state.get(f"member/{entry}") is not None:
            member_ids.append(entry)
            continue
        owner = state.get(f"member_key/{entry}")
        if owner is None or owner["kind"] != "node":
            fail("invalid_genesis", reason="validator is neither a member id nor a node key", validator=entry)
        member_ids.append(owner["member_id"])
    if len(set(member_ids)) != len(member_ids):
        fail("invalid_genesis", reason="duplicate validator", validators=entries)
    return member_ids


def init_genesis(state: Any, genesis: dict[str, Any]) -> None:
    """Write the chain record, parameters, members and validators of the genesis file."""
    if hasattr(genesis, "model_dump"):
        genesis = genesis.model_dump()
    spec = parse_payload(GenesisSpec, genesis)
    state.put(
        "chain",
        {
            "chain_id": spec.chain_id,
            "genesis_time_ms": spec.genesis_time_ms,
            "utc_offset_minutes": spec.utc_offset_minutes,
            "profile": spec.profile,
        },
    )
    state.put(PARAMS_KEY, resolve_params(spec.profile, spec.params))
    for member in sorted(spec.members, key=lambda item: item.member_id):
        add_member(state, member)
    if not any(member.role == "regulator" for member in spec.members):
        fail("invalid_genesis", reason="the consortium needs a regulator")
    set_validators(state, _resolve_validator_ids(state, spec.validators))


def resolve_sender(state: Any, key: str) -> Sender:
    """Map a public key to its member (client or node key) or registered subject."""
    owner = state.get(f"member_key/{key}")
    if owner is not None:
        record = state.get(f"member/{owner['member_id']}")
        if record["status"] == "suspended":
            fail("sender_suspended", member_id=record["member_id"])
        if record["status"] == "removed":
            fail("sender_removed", member_id=record["member_id"])
        return Sender(key=key, member_id=record["member_id"], role=record["role"])
    subject_id = state.get(f"subject_key/{key}")
    if subject_id is not None:
        return Sender(key=key, subject_id=subject_id)
    fail("unknown_sender", sender=key)


def is_active(state: Any, member_id: str) -> bool:
    record = state.get(f"member/{member_id}")
    return record is not None and record["status"] == "active"


def get_subject_or_fail(state: Any, subject_id: str) -> dict[str, Any]:
    record = state.get(f"subject/{subject_id}")
    if record is None:
        fail("unknown_subject", subject_id=subject_id)
    return record
