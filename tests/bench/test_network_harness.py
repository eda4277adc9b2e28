"""Smoke tests of the network and Plenum harness parts that run without a network: metrics, presigning, profiles, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nacl.signing

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS_DIR))

import common  # noqa: E402
import network  # noqa: E402
import node_metrics  # noqa: E402
import plenum  # noqa: E402
import presign  # noqa: E402
import report  # noqa: E402
import run_all  # noqa: E402
from node.tx import signing_bytes  # noqa: E402

METRICS_TEXT = """# HELP xinlian_block_height Height of the last committed block.
# TYPE xinlian_block_height gauge
xinlian_block_height 706
# TYPE xinlian_p2p_events_total counter
xinlian_p2p_events_total{kind="dial_failed"} 11
xinlian_p2p_events_total{kind="message_received_consensus"} 3286
xinlian_p2p_events_total{kind="message_sent_consensus"} 3287
xinlian_p2p_events_total{kind="message_sent_txs"} 516
"""


def test_parse_metrics_reads_counters():
    figures = node_metrics.parse_metrics(METRICS_TEXT)
    assert figures == {"height": 706, "received_consensus": 3286, "sent_consensus": 3287, "sent_txs": 516}


def test_per_block_sums_nodes():
    before = node_metrics.Snapshot(1.0, [{"height": 10, "sent_consensus": 100}, {"height": 10, "sent_consensus": 50}], 3.0)
    after = node_metrics.Snapshot(3.0, [{"height": 14, "sent_consensus": 196}, {"height": 14, "sent_consensus": 98}], 5.5)
    figures = node_metrics.per_block(before, after)
    assert figures["blocks"] == 4
    assert figures["sent_consensus_per_block"] == 36.0
    assert figures["node_cpu_s"] == 2.5
    assert figures["nodes_counted"] == 2


def test_per_block_skips_silent_node():
    before = node_metrics.Snapshot(1.0, [None, {"height": 5, "sent_consensus": 0}], 0.0)
    after = node_metrics.Snapshot(2.0, [{"height": 9, "sent_consensus": 999}, {"height": 7, "sent_consensus": 20}], 0.0)
    figures = node_metrics.per_block(before, after)
    assert figures["nodes_counted"] == 1
    assert figures["sent_consensus_per_block"] == 10.0


def test_per_block_without_blocks():
    snapshot = node_metrics.Snapshot(1.0, [{"height": 5, "sent_consensus": 3}], 0.0)
    assert node_metrics.per_block(snapshot, snapshot)["sent_consensus_per_block"] is None


async def test_pool_signs_like_inline():
    seeds = [bytes([index]) * 32 for index in range(1, 4)]
    plan = presign.plan_for("xinlian-bench", seeds)
    pool = presign.new_pool()
    try:
        signed = await presign.sign_in_pool(pool, plan, 7, 5)
    finally:
        pool.shutdown()
    assert signed.units == presign.sign_units(plan, 7, 5)
    assert signed.transactions == 20
    assert signed.figures()["transactions"] == 20


def test_presigned_units_verify():
    seeds = [bytes([9]) * 32, bytes([8]) * 32]
    units = presign.sign_units(presign.plan_for("xinlian-bench", seeds), 100, 3)
    types = [envelope["body"]["type"] for envelope in units[0]]
    assert types == ["subject.register", "consent.grant", "loan.register", "repayment.record"]
    nonces = [envelope["body"]["nonce"] for unit in units for envelope in unit]
    assert len(set(nonces)) == len(nonces)
    senders = {unit[0]["body"]["sender"] for unit in units}
    assert senders == {nacl.signing.SigningKey(seed).verify_key.encode().hex() for seed in seeds}
    for unit in units:
        for envelope in unit:
            verify_key = nacl.signing.VerifyKey(bytes.fromhex(envelope["body"]["sender"]))
            verify_key.verify(signing_bytes(envelope["body"]), bytes.fromhex(envelope["signature"]))


def test_closed_loop_signs_for_max_rate():
    subjects = network.closed_loop_subjects(1000, 20)
    assert subjects * 4 >= network.CLOSED_LOOP_TX_PER_S_MAX * (network.WARMUP_S + 20)
    assert network.closed_loop_subjects(10, 20) < subjects


def test_cpu_ms_per_tx():
    assert network.cpu_ms_per_tx(200.0, {"node_cpu_s": 8.0, "seconds": 5.0}) == 8.0
    assert network.cpu_ms_per_tx(0.0, {"node_cpu_s": 8.0, "seconds": 5.0}) is None
    assert network.cpu_ms_per_tx(200.0, None) is None
    assert network.cpu_ms_per_tx(200.0, {"blocks": None, "nodes_counted": 0}) is None


def test_standard_profile_plans():
    args = network.build_parser().parse_args(run_all.PROFILES["standard"]["network"])
    plans = network.plans_from(args)
    main = plans[0]
    assert (main.node_count, main.concurrencies, main.view_changes, main.catch_up_blocks) == (4, (10, 100, 1000), 3, 10_000)
    assert main.light_load
    assert [(plan.node_count, plan.concurrencies, plan.role) for plan in plans[1:]] == [(7, (1000,), "scaling"), (10, (1000,), "scaling")]
    plenum_arguments = run_all.PROFILES["standard"]["plenum"]
    assert plenum_arguments[plenum_arguments.index("--concurrency") + 1:][:3] == ["10", "100", "1000"]


def test_run_all_orders_plenum_after_network():
    names = list(run_all.BENCHMARK_NAMES)
    assert names.index("plenum") == names.index("network") + 1


def test_master_batches_from_log(tmp_path):
    log_dir = tmp_path / "pool" / "var" / "log"
    log_dir.mkdir(parents=True)
    (log_dir / "Node1.log").write_text(
        "x|INFO|ordering_service.py|Node1:1 ordered batch request, view no 0, requests ordered 10, discarded 0\n"
        "x|INFO|ordering_service.py|Node1:0 ordered batch request, view no 0, requests ordered 4, discarded 0\n"
        "x|INFO|ordering_service.py|Node1:0 ordered batch request, view no 0, requests ordered 8, discarded 0\n",
        encoding="utf-8",
    )
    assert plenum.master_batches(tmp_path) == {"batches": 2, "requests_per_batch": 6.0}


def _network_result(run_id: str) -> dict[str, Any]:
    def closed(concurrency: int, rate: float, messages: float) -> dict[str, Any]:
        return {
            "concurrency": concurrency,
            "committed_per_s": common.spread([rate] * 3),
            "ok_fraction": common.spread([1.0] * 3),
            "latency_p50_ms": common.spread([30.0] * 3),
            "latency_p95_ms": common.spread([60.0] * 3),
            "latency_p99_ms": common.spread([90.0] * 3),
            "sent_consensus_per_block": common.spread([messages] * 3),
            "sent_txs_per_block": common.spread([3.0] * 3),
            "runs": [],
        }

    settings = {"block_interval_ms": 0, "block_tx_max": 500, "checkpoint_interval": 16, "tick_ms": 50, "view_timeout_ticks": 100}
    catch_up = {
        "blocks_behind": 10_000, "transactions_behind": 40_000, "tx_per_block": 4.0, "concurrency": 8, "catch_up_s": 100.0,
        "blocks_per_s": 100.0, "tx_per_s": 400.0, "live_blocks_per_s": 25.0, "live_tx_per_s": 100.0, "blocks_per_s_ratio_to_live": 4.0,
    }
    main = {"nodes": 4, "role": "main", "senders": 3, "node_settings": settings, "presign": [{"transactions": 75_004, "seconds": 4.0, "tx_per_s": 18_751.0}],
            "closed_loop": [closed(10, 300.0, 24.5), closed(1000, 2000.0, 25.0)], "catch_up": catch_up}
    scaling = {"nodes": 7, "role": "scaling", "senders": 6, "node_settings": settings, "presign": [], "closed_loop": [closed(1000, 1500.0, 85.0)]}
    return {"benchmark": "network", "run_id": run_id, "measured_at": "2026-12-04T00:00:00Z", "command": "python benchmarks/network.py",
            "machine": common.machine_info(), "networks": [main, scaling]}


def _plenum_result(run_id: str) -> dict[str, Any]:
    def run(concurrency: int, rate: float) -> dict[str, Any]:
        return {"concurrency": concurrency, "committed_per_s": common.spread([rate] * 3), "latency_p50_ms": common.spread([120.0] * 3),
                "latency_p95_ms": common.spread([200.0] * 3), "nodes_cores_busy": 1.9, "nodes_cpu_ms_per_committed": 16.0,
                "master_batches_per_s": 8.0, "requests_per_batch": 10.0}

    return {"benchmark": "plenum", "run_id": run_id, "measured_at": "2026-12-04T00:00:00Z", "command": "python benchmarks/plenum.py",
            "machine": common.machine_info(), "batch_wait_s": 0.1, "runs": [run(10, 75.0), run(1000, 125.0)]}


def _render(network_run: str, plenum_run: str, language: str = "en") -> str:
    results = {"ceilings": None, "book_size": None, "network": _network_result(network_run), "plenum": _plenum_result(plenum_run), "run": None}
    return report.render(results, language)


def test_report_ratio_same_run():
    text = _render("run-a", "run-a")
    assert "c=10: 4.0x, c=1000: 16.0x" in text
    assert "not the same run" not in text


def test_report_refuses_other_run():
    text = _render("run-a", "run-b")
    assert "c=10: 4.0x" not in text
    assert "| throughput >= 10x Plenum at the same concurrency, same run | not the same run | — |" in text
    assert "不是同一次运行" in _render("run-a", "run-b", "zh-CN")


def test_report_scaling_and_catch_up():
    text = _render("run-a", "run-a")
    assert "| 7 | 1000 | 1,500.0 (1,500.0–1,500.0) | 30 (30–30) | 85.0 (85.0–85.0) | 3.0 (3.0–3.0) | — |" in text
    assert "100.0 blocks/s and 400.0 tx/s" in text
    assert "| catch-up >= 3x live throughput | 0.2x (400.0 / 2,000.0 tx/s, 10,000 blocks behind); 100.0 / 25.0 blocks/s = 4.0x | not met |" in text


def test_report_chinese_terms():
    text = _render("run-a", "run-a", "zh-CN")
    for term in ("吞吐量", "延迟", "视图切换", "追块", "验签上限"):
        assert term in text, term
