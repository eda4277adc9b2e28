"""KeyValueTestExecutor: a tiny deterministic executor for the chain tests, not the real contracts.

Transaction types:
- `test.put` {key, value}: store value at `kv/<key>` and emit `kv.put`
- `test.fail` {}: raise ContractError("test_rule_broken", rule="T1")
- `test.partial` {key}: write `kv/<key>`, then raise ContractError (the write must be discarded)
- `test.crash` {}: raise RuntimeError (a contract bug)
- `test.reject` {}: return a receipt with ok=False
begin_block records the block time at `clock`; end_block counts blocks at `blocks`.
"""

from __future__ import annotations

from typing import Any

from node.execution import BlockContext, BlockResult, ContractError, Event, Receipt, State, Transaction


class KeyValueTestExecutor:
    def init_genesis(self, state: State, genesis: dict[str, Any]) -> None:
        for member in genesis["members"]:
            state.put(f"member/{member['member_id']}", {"role": member["role"]})

    def check_tx(self, state: State, tx: Transaction, time_ms: int) -> None:
        if tx.type not in {"test.put", "test.fail", "test.partial", "test.crash", "test.reject"}:
            raise ContractError("unknown_tx_type")

    def begin_block(self, state: State, ctx: BlockContext) -> list[Event]:
        state.put("clock", ctx.time_ms)
        return [Event("block.begin", {"height": ctx.height})]

    def deliver_tx(self, state: State, ctx: BlockContext, tx: Transaction) -> Receipt:
        if tx.type == "test.put":
            state.put(f"kv/{tx.payload['key']}", tx.payload["value"])
            return Receipt(tx_id=tx.tx_id, ok=True, events=[Event("kv.put", {"key": tx.payload["key"]})])
        if tx.type == "test.fail":
            raise ContractError("test_rule_broken", rule="T1", limit=3)
        if tx.type == "test.partial":
            state.put(f"kv/{tx.payload['key']}", "partial")
            raise ContractError("test_rule_broken", rule="T2")
        if tx.type == "test.crash":
            state.put("kv/crash", 1)
            raise RuntimeError("contract bug")
        if tx.type == "test.reject":
            return Receipt(tx_id=tx.tx_id, ok=False, error_code="test_rejected")
        raise ContractError("unknown_tx_type", type=tx.type)

    def end_block(self, state: State, ctx: BlockContext) -> BlockResult:
        state.put("blocks", (state.get("blocks") or 0) + 1)
        return BlockResult(events=[Event("block.end", {"height": ctx.height})])
