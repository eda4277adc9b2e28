"""Governance (G1, G2): proposals and votes to admit or remove members, change validators or parameters.

State keys:
  proposal/<proposal_id>                       proposal, the voter list fixed when it was made, votes, status
  deadline/<date>/proposal/<proposal_id>       expiry of an undecided proposal
  validators_pending                           {members, node_keys, effective_height, decided_height}

A proposal passes once approvals exceed the threshold fraction (default 2/3)
of the members who could vote when it was made, and, for compliance
parameters, a regulator has approved. It fails once that is out of reach.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from node.contracts.context import TxContext, TxRoute, route
from node.contracts.dates import add_days
from node.contracts.errors import fail
from node.contracts.models import Payload, RecordId, ReasonCode, Hex64
from node.contracts.params import COMPLIANCE_PARAMS, PARAMS_KEY, apply_changes
from node.contracts.registry import MemberSpec, active_members, add_member, get_member_or_fail, remove_member, validator_node_keys
from node.execution import BlockContext, Event, ValidatorUpdate

MEMBER_ROLES = ("bank", "credit_agency", "collector", "regulator")


class AdmitMember(Payload):
    kind: Literal["admit_member"]
    member: MemberSpec


class RemoveMember(Payload):
    kind: Literal["remove_member"]
    member_id: RecordId


class SetValidators(Payload):
    kind: Literal["set_validators"]
    validators: list[RecordId] = Field(min_length=1, max_length=100)


class SetParams(Payload):
    kind: Literal["set_params"]
    params: dict[str, Any] = Field(min_length=1, max_length=50)


Action = Annotated[Union[AdmitMember, RemoveMember, SetValidators, SetParams], Field(discriminator="kind")]


class ProposePayload(Payload):
    proposal_id: RecordId
    action: Action
    approve: bool = True
    reason: ReasonCode | None = None
    note_hash: Hex64 | None = None


class VotePayload(Payload):
    proposal_id: RecordId
    approve: bool


def _validate_action(state: Any, action: Any) -> bool:
    """Check the action against current state; return whether it needs the regulator's approval."""
    if isinstance(action, AdmitMember):
        if state.get(f"member/{action.member.member_id}") is not None:
            fail("duplicate_id", member_id=action.member.member_id)
        return False
    if isinstance(action, RemoveMember):
        member = get_member_or_fail(state, action.member_id)
        if member["status"] == "removed" or action.member_id in state.get("validators")["members"]:
            fail("invalid_action", reason="remove a validator from the validator set first", member_id=action.member_id)
        return False
    if isinstance(action, SetValidators):
        if len(set(action.validators)) != len(action.validators):
            fail("invalid_action", reason="duplicate validator")
        for member_id in action.validators:
            if get_member_or_fail(state, member_id)["status"] != "active":
                fail("invalid_action", reason="validators must be active members", member_id=member_id)
        return False
    apply_changes(dict(state.get(PARAMS_KEY)), action.params)
    return any(name in COMPLIANCE_PARAMS for name in action.params)


def _apply(tc: TxContext, proposal: dict[str, Any]) -> None:
    action = proposal["action"]
    kind = action["kind"]
    if kind == "admit_member":
        add_member(tc.state, MemberSpec.model_validate(action["member"]))
    elif kind == "remove_member":
        remove_member(tc.state, action["member_id"])
    elif kind == "set_validators":
        tc.state.put(
            "validators_pending",
            {
                "members": action["validators"],
                "node_keys": validator_node_keys(tc.state, action["validators"]),
                "decided_height": tc.block.height,
                "effective_height": tc.block.height + tc.params["validator_change_delay_blocks"],
            },
        )
    else:
        params = tc.state.get(PARAMS_KEY)
        apply_changes(params, action["params"])
        tc.state.put(PARAMS_KEY, params)


def _decide(tc: TxContext, proposal: dict[str, Any]) -> None:
    numerator = tc.params["governance_approval_numerator"]
    denominator = tc.params["governance_approval_denominator"]
    voters = len(proposal["voters"])
    approvals = sum(1 for vote in proposal["votes"].values() if vote)
    undecided = voters - len(proposal["votes"])
    regulator_ok = not proposal["needs_regulator"] or any(
        proposal["votes"].get(member_id) is True for member_id in proposal["regulators"]
    )
    regulator_possible = not proposal["needs_regulator"] or any(
        proposal["votes"].get(member_id) is not False for member_id in proposal["regulators"]
    )
    if approvals * denominator > voters * numerator and regulator_ok:
        proposal["status"] = "approved"
        _apply(tc, proposal)
    elif (approvals + undecided) * denominator <= voters * numerator or not regulator_possible:
        proposal["status"] = "rejected"
    else:
        return
    proposal["decided_on"] = tc.today
    tc.emit("governance.decided", {"proposal_id": proposal["proposal_id"], "status": proposal["status"], "kind": proposal["action"]["kind"]}, ())


def propose(tc: TxContext, payload: ProposePayload) -> None:
    if tc.state.get(f"proposal/{payload.proposal_id}") is not None:
        fail("duplicate_id", proposal_id=payload.proposal_id)
    needs_regulator = _validate_action(tc.state, payload.action)
    members = active_members(tc.state)
    expires_on = add_days(tc.today, tc.params["proposal_open_days"])
    proposal = {
        "proposal_id": payload.proposal_id,
        "action": payload.action.model_dump(),
        "reason": payload.reason,
        "note_hash": payload.note_hash,
        "proposer": tc.sender.member_id,
        "proposed_on": tc.today,
        "expires_on": expires_on,
        "voters": [member["member_id"] for member in members],
        "regulators": [member["member_id"] for member in members if member["role"] == "regulator"],
        "needs_regulator": needs_regulator,
        "votes": {tc.sender.member_id: payload.approve},
        "status": "open",
        "decided_on": None,
    }
    tc.state.put(f"deadline/{add_days(expires_on, 1)}/proposal/{payload.proposal_id}", 1)
    tc.emit("governance.proposed", {"proposal_id": payload.proposal_id, "kind": proposal["action"]["kind"]}, ())
    _decide(tc, proposal)
    tc.state.put(f"proposal/{payload.proposal_id}", proposal)


def vote(tc: TxContext, payload: VotePayload) -> None:
    proposal = tc.state.get(f"proposal/{payload.proposal_id}")
    if proposal is None:
        fail("not_found", proposal_id=payload.proposal_id)
    if proposal["status"] != "open":
        fail("proposal_closed", proposal_id=payload.proposal_id, status=proposal["status"])
    if tc.sender.member_id not in proposal["voters"]:
        fail("not_a_voter", member_id=tc.sender.member_id)
    if tc.sender.member_id in proposal["votes"]:
        fail("already_voted", member_id=tc.sender.member_id)
    proposal["votes"][tc.sender.member_id] = payload.approve
    _decide(tc, proposal)
    tc.state.put(f"proposal/{payload.proposal_id}", proposal)


def expire_proposal(state: Any, proposal_id: str, today: str) -> list[Event]:
    proposal = state.get(f"proposal/{proposal_id}")
    if proposal["status"] != "open":
        return []
    proposal["status"] = "expired"
    proposal["decided_on"] = today
    state.put(f"proposal/{proposal_id}", proposal)
    return [Event("governance.decided", {"proposal_id": proposal_id, "status": "expired", "kind": proposal["action"]["kind"]}, ())]


def activate_validators(state: Any, ctx: BlockContext) -> list[Event]:
    """G2: at the effective height the pending validator set becomes the current one in state."""
    pending = state.get("validators_pending")
    if pending is None or ctx.height < pending["effective_height"]:
        return []
    state.put("validators", {"members": pending["members"], "node_keys": pending["node_keys"]})
    state.delete("validators_pending")
    return [Event("validators.changed", {"members": pending["members"], "height": ctx.height}, ())]


def validator_update(state: Any, ctx: BlockContext) -> tuple[list[Event], ValidatorUpdate | None]:
    """Report a validator change decided in this block, to take effect at its fixed future height."""
    pending = state.get("validators_pending")
    if pending is None or pending["decided_height"] != ctx.height:
        return [], None
    return [], ValidatorUpdate(effective_height=pending["effective_height"], validators=tuple(pending["node_keys"]))


ROUTES: dict[str, TxRoute] = {
    "governance.propose": route(ProposePayload, propose, MEMBER_ROLES),
    "governance.vote": route(VotePayload, vote, MEMBER_ROLES),
}
