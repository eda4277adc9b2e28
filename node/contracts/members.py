"""Transactions of the registry: member.suspend, member.reinstate (G3) and subject.register."""

from __future__ import annotations

from node.contracts.context import TxContext, TxRoute, route
from node.contracts.errors import fail
from node.contracts.registry import MemberActionPayload, SubjectRegisterPayload, get_member_or_fail


def suspend_member(tc: TxContext, payload: MemberActionPayload) -> None:
    record = get_member_or_fail(tc.state, payload.member_id)
    if record["role"] == "regulator":
        fail("cannot_suspend_regulator", member_id=payload.member_id)
    if record["status"] != "active":
        fail("member_already_suspended", member_id=payload.member_id, status=record["status"])
    record["status"] = "suspended"
    record["status_reason"] = payload.reason
    record["status_note_hash"] = payload.note_hash
    tc.state.put(f"member/{payload.member_id}", record)
    # Suspension stops every case action at once (C14): handlers check the member status on each action.
    tc.emit("member.suspended", {"member_id": payload.member_id, "reason": payload.reason}, ())


def reinstate_member(tc: TxContext, payload: MemberActionPayload) -> None:
    record = get_member_or_fail(tc.state, payload.member_id)
    if record["status"] != "suspended":
        fail("member_not_suspended", member_id=payload.member_id, status=record["status"])
    record["status"] = "active"
    record["status_reason"] = payload.reason
    record["status_note_hash"] = payload.note_hash
    tc.state.put(f"member/{payload.member_id}", record)
    tc.emit("member.reinstated", {"member_id": payload.member_id, "reason": payload.reason}, ())


def register_subject(tc: TxContext, payload: SubjectRegisterPayload) -> None:
    if tc.state.get(f"subject/{payload.subject_id}") is not None:
        fail("duplicate_id", subject_id=payload.subject_id)
    if payload.subject_key is not None:
        key = payload.subject_key
        if tc.state.get(f"subject_key/{key}") is not None or tc.state.get(f"member_key/{key}") is not None:
            fail("subject_key_in_use", subject_key=key)
        tc.state.put(f"subject_key/{key}", payload.subject_id)
    tc.state.put(
        f"subject/{payload.subject_id}",
        {
            "subject_id": payload.subject_id,
            "commitment": payload.commitment,
            "subject_key": payload.subject_key,
            "registered_by": tc.sender.member_id,
            "registered_on": tc.today,
        },
    )
    tc.emit("subject.registered", {"subject_id": payload.subject_id}, (tc.sender.member_id,))


ROUTES: dict[str, TxRoute] = {
    "member.suspend": route(MemberActionPayload, suspend_member, ("regulator",)),
    "member.reinstate": route(MemberActionPayload, reinstate_member, ("regulator",)),
    "subject.register": route(SubjectRegisterPayload, register_subject, ("bank", "credit_agency")),
}
