"""Object reads of a real node (`node.backend.NodeBackend`) serve the contract queries' views over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from node.contracts import queries
from tests.node.accelerated_node import (
    BANK,
    COLLECTOR,
    COMMISSION_RATE_BP,
    INTEREST_FEN,
    PRINCIPAL_FEN,
    REGULATOR,
    client_for,
    next_event,
    register_overdue_loan,
    start_accelerated_node,
)

REPAID_FEN = INTEREST_FEN + 20_000


async def get_json(session: aiohttp.ClientSession, base_url: str, path: str) -> dict[str, Any]:
    async with session.get(base_url + path) as response:
        assert response.status == 200, (path, response.status, await response.text())
        return await response.json()


async def test_node_serves_query_views(tmp_path: Path) -> None:
    """Case history, the loan's real schedule, mandate commission and the loan view come from node.contracts.queries."""
    directory = tmp_path / "net"
    # 12 chain hours per real second; empty blocks at least 100 ms apart run the time step that opens the case.
    node = await start_accelerated_node(directory, speed=43_200, settings={"empty_block_min_real_interval_ms": 100})
    subscription = node.events.subscribe(frozenset({"case.opened"}), None)
    base_url = f"http://127.0.0.1:{node.config.api_port}"
    try:
        async with client_for(node, directory, BANK) as bank, client_for(node, directory, COLLECTOR) as collector:
            loan = await register_overdue_loan(node, bank)
            opened = await next_event(subscription, lambda event: event.data["loan_id"] == loan.loan_id)
            case_id = opened.data["case_id"]
            accepted = await collector.submit_and_wait("case.accept", {"case_id": case_id})
            assert accepted["receipt"]["ok"], accepted["receipt"]
            repaid = await bank.submit_and_wait(
                "repayment.record",
                {"loan_id": loan.loan_id, "payment_id": "payment-1", "amount": REPAID_FEN, "paid_on": loan.open_date.isoformat(), "case_id": case_id},
            )
            assert repaid["receipt"]["ok"], repaid["receipt"]

        async with aiohttp.ClientSession() as session:
            case = await get_json(session, base_url, f"/v1/cases/{case_id}")
            schedule = await get_json(session, base_url, f"/v1/loans/{loan.loan_id}/schedule")
            mandate = await get_json(session, base_url, f"/v1/mandates/{loan.mandate_id}")
            loan_view = await get_json(session, base_url, f"/v1/loans/{loan.loan_id}")
            member = await get_json(session, base_url, f"/v1/members/{REGULATOR}")
            members = await get_json(session, base_url, "/v1/members")
            params = await get_json(session, base_url, "/v1/params")
            chain = node.chain
            assert chain is not None
            state = chain.state()
            expected_history = [action for _, action in state.scan(f"case_action/{case_id}/")]
            expected_params = queries.get_params(state)
    finally:
        subscription.close()
        await node.stop()

    assert [action["type"] for action in case["history"]][:3] == ["opened", "stage", "accepted"]
    assert case["history"] == expected_history
    assert case["history"][-1]["type"] == "recovery_confirmed"
    assert case["recovered"] == REPAID_FEN

    assert schedule["loan_id"] == loan.loan_id
    assert [item["due_date"] for item in schedule["schedule"]] == [loan.due_date.isoformat()]
    instalment = schedule["schedule"][0]
    assert instalment["principal"] == PRINCIPAL_FEN
    assert instalment["paid_interest"] == INTEREST_FEN
    assert instalment["paid_principal"] == REPAID_FEN - INTEREST_FEN
    assert schedule["dpd"] >= 1

    commission = (REPAID_FEN * COMMISSION_RATE_BP + 5_000) // 10_000
    assert mandate["commission"] == [{"agency": COLLECTOR, "mandate_id": loan.mandate_id, "recovered": REPAID_FEN, "commission": commission, "payments": 1}]

    assert loan_view["case_id"] == case_id
    assert loan_view["dpd"] == schedule["dpd"]
    assert loan_view["outstanding"] == PRINCIPAL_FEN + INTEREST_FEN - REPAID_FEN
    assert loan_view["classification"] == "special_mention"
    assert [payment["payment_id"] for payment in loan_view["payments"]] == ["payment-1"]

    assert member["member_id"] == REGULATOR
    assert member["role"] == "regulator"
    assert sorted(item["member_id"] for item in members["members"]) == [BANK, COLLECTOR, REGULATOR]
    assert params["params"] == expected_params
