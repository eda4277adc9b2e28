"""Regenerate docs/benchmarks.md and docs/zh-CN/benchmarks.md from the JSON results in out/bench/.

A figure whose JSON is missing is printed as "not measured" (未测量), never
filled in. Xinlian and Plenum are compared only when both results carry the
same run id, that is, come from one run_all invocation.

Usage: .venv/bin/python benchmarks/report.py [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import OUT_DIR_DEFAULT, REPO_ROOT, read_result
from report_text import TEXT

DOC_PATHS = {"en": REPO_ROOT / "docs" / "benchmarks.md", "zh-CN": REPO_ROOT / "docs" / "zh-CN" / "benchmarks.md"}
RESULT_NAMES = ("ceilings", "block_path", "book_size", "network", "plenum")


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def fmt_spread(figure: dict[str, Any] | None, digits: int = 1, missing: str = "—") -> str:
    """Format a spread as `median (min–max)`."""
    if not figure:
        return missing
    return f"{fmt(figure['median'], digits)} ({fmt(figure['min'], digits)}–{fmt(figure['max'], digits)})"


def header(result: dict[str, Any], text: dict[str, Any]) -> list[str]:
    machine = result["machine"]
    load = machine["load_average_1m_at_start"]
    note = f" ({text['high_load'].format(nproc=machine['nproc'])})" if load > (machine["nproc"] or 1) else ""
    return [
        "",
        f"{text['command']}: `{result['command']}`  ",
        f"{text['measured_at']}: {result['measured_at']}, {text['run_id']} {result.get('run_id', '—')}, {text['load_average']} {load}{note}",
        "",
    ]


def same_run(first: dict[str, Any] | None, second: dict[str, Any] | None) -> bool:
    """Tell whether two results come from one run_all invocation (equal, present run ids)."""
    return bool(first and second and first.get("run_id") and first.get("run_id") == second.get("run_id"))


def section_run(results: dict[str, Any], text: dict[str, Any]) -> list[str]:
    lines = [text["run"], ""]
    run = results.get("run")
    if run:
        lines.append(text["run_line"].format(profile=run["profile"], run_id=run["run_id"], command=run["command"], minutes=run.get("seconds", 0) / 60))
        durations = ", ".join(f"{name} {outcome['seconds'] / 60:.1f} min (exit {outcome['exit_code']})" for name, outcome in run["benchmarks"].items())
        lines += ["", f"{text['run_durations']}: {durations}."]
    else:
        lines.append(text["not_measured"])
    # A result without a run id predates run ids, so it cannot be paired with any other result.
    ids = sorted({result.get("run_id", "—") for name, result in results.items() if name in RESULT_NAMES and result})
    if len(ids) > 1 or "—" in ids:
        lines += ["", text["run_ids_differ"].format(ids=", ".join(ids))]
    return lines + [""]


def section_machine(results: dict[str, Any], text: dict[str, Any]) -> list[str]:
    machine = next((results[name]["machine"] for name in RESULT_NAMES if results.get(name)), None)
    if machine is None:
        return [text["machine"], "", text["not_measured"], ""]
    memory_gib = (machine["memory_total_bytes"] or 0) / 2**30
    return [
        text["machine"],
        "",
        f"- nproc: {machine['nproc']}",
        f"- CPU: {machine['cpu_model']}",
        f"- {text['memory']}: {memory_gib:.1f} GiB",
        f"- Python: {machine['python_version']} ({machine['platform']})",
        "",
    ]


def section_ceilings(result: dict[str, Any] | None, text: dict[str, Any]) -> list[str]:
    lines = [text["ceilings"]]
    if result is None:
        return lines + ["", text["not_measured"], ""]
    lines += header(result, text)
    lines += [f"| {text['figure']} | {text['per_cpu']} | {text['per_wall']} |", "|---|---|---|"]
    for name in ("ed25519_verify_per_s", "ed25519_sign_per_s", "tx_id_encode_sha256_per_s"):
        lines.append(f"| {name} | {fmt_spread(result[name]['per_cpu_s'], 0)} | {fmt_spread(result[name]['per_wall_s'], 0)} |")
    batch = result["block_batch"]
    lines.append(f"| leveldb_synced_block_batches_per_s ({batch['ops']} ops, {batch['bytes']:,} bytes) | — | {fmt_spread(result['leveldb_synced_block_batches_per_s'])} |")
    ceiling = result["verification_ceiling_tx_per_s"]
    sample = result["sample_tx"]
    line = text["ceiling_line"].format(
        c4=fmt(ceiling["4"]), c7=fmt(ceiling["7"]), c10=fmt(ceiling["10"]), tx_type=sample["type"], instalments=sample["instalments"], bytes=sample["envelope_bytes"]
    )
    return lines + ["", line, ""]


def section_block_path(result: dict[str, Any] | None, ceilings: dict[str, Any] | None, network: dict[str, Any] | None, text: dict[str, Any]) -> list[str]:
    """Render CPU per transaction on one node's block path, against the per-node budget the throughput target leaves."""
    lines = [text["block_path"]]
    if result is None:
        return lines + ["", text["not_measured"], ""]
    lines += header(result, text) + [text["block_path_intro"].format(subjects=result["subjects"], block_tx=result["block_tx_count"]), ""]
    lines += [f"| {text['phase']} | {text['us_per_tx']} |", "|---|---|"]
    for name in ("admission_us_per_tx", "proposal_check_us_per_tx", "execution_us_per_tx", "leveldb_threads_us_per_tx", "total_us_per_tx"):
        lines.append(f"| {text['phases'][name]} | {fmt_spread(result[name], 0)} |")
    if ceilings is not None:
        target_tx_per_s = ceilings["verification_ceiling_tx_per_s"]["4"] / 2
        budget_us = (result["cpu_count"] or 1) * 1e6 / (4 * target_tx_per_s)
        total = result["total_us_per_tx"]["median"]
        lines += ["", text["block_path_budget"].format(target=fmt(target_tx_per_s, 0), budget=fmt(budget_us, 0), total=fmt(total, 0), ratio=total / budget_us)]
    loaded = [run for run in (_network_for(network, 4) or {}).get("closed_loop", []) if run.get("node_cpu_ms_per_tx")]
    if loaded:
        top = max(loaded, key=lambda run: run["concurrency"])
        node_us = top["node_cpu_ms_per_tx"]["median"] * 1000 / 4
        lines += ["", text["block_path_network"].format(concurrency=top["concurrency"], node_us=fmt(node_us, 0), ratio=node_us / result["total_us_per_tx"]["median"])]
    lines += ["", text["block_path_groups"], "", f"| {text['module_group']} | {text['share']} |", "|---|---|"]
    for group, share in sorted(result["execution_profile_groups"].items(), key=lambda item: -item[1]):
        lines.append(f"| {text['profile_groups'].get(group, group)} | {share * 100:.1f}% |")
    lines += ["", text["block_path_top"], ""]
    lines += [f"- `{item['function']}` {item['share'] * 100:.1f}%" for item in result["execution_profile_top"][:10]]
    return lines + [""]


def section_book(result: dict[str, Any] | None, text: dict[str, Any]) -> list[str]:
    lines = [text["book"]]
    if result is None:
        return lines + ["", text["not_measured"], ""]
    due = result["due_today_count"]
    lines += header(result, text) + [text["book_intro"].format(due=due), ""]
    sizes = sorted(result["books"], key=int)
    lines.append("| | " + " | ".join(f"{int(size):,} {text['loans']}" for size in sizes) + f" | {text['ratio']} |")
    lines.append("|---" * (len(sizes) + 2) + "|")
    for name, label in text["case_names"].items():
        cells = [f"{fmt_spread(result['books'][size][name]['cpu_ms'], 3)} [{fmt(result['books'][size][name]['wall_ms']['median'], 3)}]" for size in sizes]
        verdict = result.get("flatness", {}).get(name)
        ratio = f"{verdict['ratio']} ({text['flat'] if verdict['flat'] else text['not_flat']})" if verdict else "—"
        lines.append(f"| {label.format(due=due)} | " + " | ".join(cells) + f" | {ratio} |")
    loads = ", ".join(f"{int(size):,}: {result['books'][size]['book']['load_cpu_s']} {text['cpu_s']}" for size in sizes)
    lines += ["", text["bulk_load"].format(loads=loads), ""]
    scaling = result.get("due_scaling")
    if scaling:
        lines += [text["due_scaling"].format(loans=f"{scaling['loan_count']:,}"), "", f"| {text['due_loans']} | CPU ms | CPU ms / {text['due_loan']} |", "|---|---|---|"]
        for due_count, figure in sorted(scaling["rollover_step"].items(), key=lambda item: int(item[0])):
            per_loan = figure["cpu_ms"]["median"] / int(due_count)
            lines.append(f"| {int(due_count):,} | {fmt_spread(figure['cpu_ms'])} | {per_loan:.3f} |")
        lines.append("")
    for name, profile in sorted(result.get("profiles", {}).items()):
        lines += [f"{text['profile_intro']} `{name}`", "", "```", profile.strip(), "```", ""]
    return lines


def plenum_ratios(network: dict[str, Any] | None, plenum: dict[str, Any] | None) -> dict[int, float] | None:
    """Return Xinlian (n = 4) / Plenum committed tx/s by concurrency, or None if the results are not from the same run."""
    entry = _network_for(network, 4)
    if not entry or not plenum or not same_run(network, plenum):
        return None
    plenum_by_concurrency = {run["concurrency"]: run["committed_per_s"]["median"] for run in plenum["runs"]}
    ratios = {}
    for run in entry["closed_loop"]:
        peer = plenum_by_concurrency.get(run["concurrency"])
        if peer and run["committed_per_s"]:
            ratios[run["concurrency"]] = run["committed_per_s"]["median"] / peer
    return ratios


def section_plenum(plenum: dict[str, Any] | None, network: dict[str, Any] | None, text: dict[str, Any]) -> list[str]:
    lines = [text["plenum"]]
    if plenum is None:
        return lines + ["", text["not_measured"], ""]
    lines += header(plenum, text) + [text["plenum_intro"].format(wait=plenum["batch_wait_s"]), "", text["plenum_reference"], ""]
    ratios = plenum_ratios(network, plenum)
    lines += [
        f"| {text['concurrency']} | {text['committed_per_s']} | p50 ms | p95 ms | {text['node_cores']} | {text['cpu_per_write']} | {text['batches']} | {text['xinlian_ratio']} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in plenum["runs"]:
        if ratios is None:
            ratio = text["not_same_run"] if network else text["not_measured"]
        else:
            ratio = f"{ratios[run['concurrency']]:.1f}x" if run["concurrency"] in ratios else text["not_measured"]
        cells = [
            fmt_spread(run["committed_per_s"]),
            fmt_spread(run["latency_p50_ms"], 0),
            fmt_spread(run["latency_p95_ms"], 0),
            fmt(run.get("nodes_cores_busy"), 2),
            fmt(run.get("nodes_cpu_ms_per_committed")),
            f"{fmt(run.get('master_batches_per_s'))} ({fmt(run.get('requests_per_batch'))})" if run.get("master_batches_per_s") is not None else "—",
            ratio,
        ]
        lines.append(f"| {run['concurrency']} | " + " | ".join(cells) + " |")
    return lines + [""]


def section_network(result: dict[str, Any] | None, text: dict[str, Any]) -> list[str]:
    lines = [text["network"]]
    if result is None:
        return lines + ["", text["not_measured"], ""]
    lines += header(result, text)
    lines += [f"| n | {text['concurrency']} | {text['committed_per_s']} | {text['ok_fraction']} | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    for network in result["networks"]:
        rows = [(str(run["concurrency"]), run) for run in network["closed_loop"]]
        if network.get("open_loop_50_tx_per_s"):
            rows.append((text["light_load"], network["open_loop_50_tx_per_s"]))
        for label, run in rows:
            cells = [fmt_spread(run["committed_per_s"]), fmt_spread(run["ok_fraction"], 2)] + [fmt_spread(run[name], 0) for name in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")]
            lines.append(f"| {network['nodes']} | {label} | " + " | ".join(cells) + " |")
    lines += [""] + _network_facts(result, text) + ["", text["network_notes"], ""]
    lines += _section_scaling(result, text) + _section_catch_up(result, text) + _section_view_change(result, text)
    return lines


def _network_facts(result: dict[str, Any], text: dict[str, Any]) -> list[str]:
    lines = []
    for network in result["networks"]:
        settings = ", ".join(f"{name} {value}" for name, value in sorted(network["node_settings"].items()))
        lines.append(f"- n = {network['nodes']}: " + text["node_settings"].format(settings=settings, senders=network["senders"]))
        presigns = network.get("presign") or []
        if presigns:
            largest = max(presigns, key=lambda figure: figure["transactions"])
            lines.append(f"- n = {network['nodes']}: " + text["presign_line"].format(tx=largest["transactions"], seconds=largest["seconds"], rate=fmt(largest["tx_per_s"], 0)))
        for key in ("view_change_error", "catch_up_error", "catch_up_full_error"):
            if network.get(key):
                lines.append(f"- n = {network['nodes']}, {text[key]}: `{network[key]}`")
    return lines


def _section_scaling(result: dict[str, Any], text: dict[str, Any]) -> list[str]:
    """Throughput and messages per block for each validator count, at every concurrency measured on more than one network."""
    counts: dict[int, int] = {}
    for network in result["networks"]:
        for run in network["closed_loop"]:
            counts[run["concurrency"]] = counts.get(run["concurrency"], 0) + 1
    shared = sorted(concurrency for concurrency, count in counts.items() if count > 1) or sorted(counts)
    expected = ", ".join(f"n={network['nodes']}: {2 * network['nodes'] * (network['nodes'] - 1)}" for network in sorted(result["networks"], key=lambda entry: entry["nodes"]))
    lines = [text["scaling"], "", text["scaling_intro"].format(expected=expected), ""]
    lines += [
        f"| n | {text['concurrency']} | {text['committed_per_s']} | p50 ms | {text['messages_header']} | {text['gossip_header']} | {text['cpu_per_tx']} |",
        "|---|---|---|---|---|---|---|",
    ]
    for network in sorted(result["networks"], key=lambda entry: entry["nodes"]):
        for run in network["closed_loop"]:
            if run["concurrency"] in shared:
                cells = [
                    fmt_spread(run["committed_per_s"]),
                    fmt_spread(run["latency_p50_ms"], 0),
                    fmt_spread(run.get("sent_consensus_per_block")),
                    fmt_spread(run.get("sent_txs_per_block")),
                    fmt_spread(run.get("node_cpu_ms_per_tx"), 2),
                ]
                lines.append(f"| {network['nodes']} | {run['concurrency']} | " + " | ".join(cells) + " |")
    return lines + [""]


def _section_catch_up(result: dict[str, Any], text: dict[str, Any]) -> list[str]:
    lines = []
    for network, catch in [(network, network.get(key)) for network in result["networks"] for key in ("catch_up", "catch_up_full")]:
        if not catch or "live_blocks_per_s" not in catch:
            continue
        lines.append(
            f"- n = {network['nodes']}: "
            + text["catch_up_line"].format(
                blocks=catch["blocks_behind"],
                txs=catch["transactions_behind"],
                per_block=catch["tx_per_block"],
                concurrency=catch["concurrency"],
                seconds=catch["catch_up_s"],
                blocks_per_s=fmt(catch["blocks_per_s"]),
                tx_per_s=fmt(catch["tx_per_s"]),
                live_blocks_per_s=fmt(catch["live_blocks_per_s"]),
                live_tx_per_s=fmt(catch["live_tx_per_s"]),
                block_ratio=catch["blocks_per_s_ratio_to_live"],
            )
        )
    if not lines:
        return []
    return [text["catch_up_title"], ""] + lines + ["", text["catch_up_note"], ""]


def _section_view_change(result: dict[str, Any], text: dict[str, Any]) -> list[str]:
    lines = []
    for network in result["networks"]:
        view = network.get("view_change")
        if view:
            lines.append(
                f"- n = {network['nodes']}: "
                + text["view_change_line"].format(
                    concurrency=view["concurrency"],
                    new=fmt_spread(view["first_new_tx_commit_after_kill_s"]),
                    any=fmt_spread(view["first_commit_after_kill_s"]),
                    timeout=view["view_timeout_s"],
                )
            )
    if not lines:
        return []
    return [text["view_change_title"], ""] + lines + [""]


def targets(results: dict[str, Any], text: dict[str, Any]) -> list[str]:
    """Build the target table; a target whose inputs were not measured is shown as not measured."""
    rows = [
        _ceiling_target(results.get("ceilings"), results.get("network"), text),
        _plenum_target(results.get("network"), results.get("plenum"), text),
        _light_target(results.get("network"), text),
        _catch_up_target(results.get("network"), text),
        _book_target(results.get("book_size"), text),
        _view_target(results.get("network"), text),
    ]
    lines = [text["targets"], "", f"| {text['target']} | {text['measured']} | |", "|---|---|---|"]
    for name, measured, met in rows:
        if met is None:
            verdict = "—"
        else:
            verdict = text["met"] if met else text["not_met"]
        lines.append(f"| {name} | {measured} | {verdict} |")
    return lines + [""]


Row = tuple[str, str, "bool | None"]


def _with_runs(figure: dict[str, Any], digits: int, unit: str, text: dict[str, Any]) -> str:
    """Format a spread as `median unit (min–max, N runs)`."""
    return f"{fmt(figure['median'], digits)} {unit} ({fmt(figure['min'], digits)}–{fmt(figure['max'], digits)}, {figure['runs']} {text['runs']})"


def _ceiling_target(ceilings: dict[str, Any] | None, network: dict[str, Any] | None, text: dict[str, Any]) -> Row:
    best = _best_closed_loop(network, 4)
    if not ceilings or not best:
        return (text["t_ceiling"], text["not_measured"], None)
    ceiling = ceilings["verification_ceiling_tx_per_s"]["4"]
    share = best["committed_per_s"]["median"] / ceiling
    measured = f"{share:.1%}: c={best['concurrency']} {_with_runs(best['committed_per_s'], 1, 'tx/s', text)} / {fmt(ceiling)} tx/s"
    if not same_run(ceilings, network):
        measured += f" ({text['not_same_run']})"
    return (text["t_ceiling"], measured, share >= 0.5)


def _plenum_target(network: dict[str, Any] | None, plenum: dict[str, Any] | None, text: dict[str, Any]) -> Row:
    if not _network_for(network, 4) or not plenum:
        return (text["t_plenum"], text["not_measured"], None)
    ratios = plenum_ratios(network, plenum)
    if ratios is None:
        return (text["t_plenum"], text["not_same_run"], None)
    if not ratios:
        return (text["t_plenum"], text["not_measured"], None)
    measured = ", ".join(f"c={concurrency}: {ratio:.1f}x" for concurrency, ratio in sorted(ratios.items()))
    return (text["t_plenum"], measured, all(ratio >= 10 for ratio in ratios.values()))


def _light_target(network: dict[str, Any] | None, text: dict[str, Any]) -> Row:
    light = (_network_for(network, 4) or {}).get("open_loop_50_tx_per_s")
    if not light or not light["latency_p50_ms"]:
        return (text["t_light"], text["not_measured"], None)
    p50 = light["latency_p50_ms"]
    return (text["t_light"], _with_runs(p50, 0, "ms", text), p50["median"] <= 50)


def _catch_up_target(network: dict[str, Any] | None, text: dict[str, Any]) -> Row:
    # Blocks made at the closed loop's top concurrency compare with its throughput like for like.
    main = _network_for(network, 4) or {}
    catch = main.get("catch_up_full") or main.get("catch_up")
    best = _best_closed_loop(network, 4)
    if not catch or not best:
        return (text["t_catchup"], text["not_measured"], None)
    live = best["committed_per_s"]["median"]
    ratio = catch["tx_per_s"] / live
    measured = f"{ratio:.1f}x ({fmt(catch['tx_per_s'])} / {fmt(live)} tx/s, {catch['blocks_behind']:,} {text['blocks_behind']})"
    if "blocks_per_s_ratio_to_live" in catch:
        measured += f"; {fmt(catch['blocks_per_s'])} / {fmt(catch['live_blocks_per_s'])} {text['blocks_unit']} = {catch['blocks_per_s_ratio_to_live']:.1f}x"
    return (text["t_catchup"], measured, ratio >= 3)


def _book_target(book: dict[str, Any] | None, text: dict[str, Any]) -> Row:
    if not book or not book.get("flatness"):
        return (text["t_book"], text["not_measured"], None)
    flat = all(verdict["flat"] for verdict in book["flatness"].values())
    worst = max(book["flatness"].items(), key=lambda item: item[1]["ratio"])
    sizes = sorted(book["books"], key=int)
    return (text["t_book"], f"{int(sizes[0]):,} → {int(sizes[-1]):,}; {text['max_ratio']} {worst[1]['ratio']} ({worst[0]})", flat)


def _view_target(network: dict[str, Any] | None, text: dict[str, Any]) -> Row:
    view = (_network_for(network, 4) or {}).get("view_change")
    if not view:
        return (text["t_view"], text["not_measured"], None)
    back = view["first_new_tx_commit_after_kill_s"]
    limit_s = 2 * view["view_timeout_s"]
    return (text["t_view"], f"{_with_runs(back, 1, 's', text)}, {text['limit']} {limit_s:.1f} s", back["median"] <= limit_s)


def _network_for(network: dict[str, Any] | None, nodes: int) -> dict[str, Any] | None:
    if not network:
        return None
    return next((entry for entry in network["networks"] if entry["nodes"] == nodes and entry.get("role", "main") == "main"), None)


def _best_closed_loop(network: dict[str, Any] | None, nodes: int) -> dict[str, Any] | None:
    entry = _network_for(network, nodes)
    runs = [run for run in (entry or {}).get("closed_loop", []) if run["committed_per_s"]]
    if not runs:
        return None
    return max(runs, key=lambda run: run["committed_per_s"]["median"])


def render(results: dict[str, Any], language: str) -> str:
    text = TEXT[language]
    lines = [text["title"], "", text["intro"], ""]
    lines += text["harness"]
    lines += section_run(results, text)
    lines += section_machine(results, text)
    lines += targets(results, text)
    lines += section_ceilings(results.get("ceilings"), text)
    lines += section_block_path(results.get("block_path"), results.get("ceilings"), results.get("network"), text)
    lines += section_book(results.get("book_size"), text)
    lines += section_network(results.get("network"), text)
    lines += section_plenum(results.get("plenum"), results.get("network"), text)
    return "\n".join(lines).rstrip() + "\n"


def load_results(out_dir: Path) -> dict[str, Any]:
    return {name: read_result(out_dir, name) for name in (*RESULT_NAMES, "run")}


def write_docs(out_dir: Path) -> list[Path]:
    results = load_results(out_dir)
    written = []
    for language, path in DOC_PATHS.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(results, language), encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the benchmark docs from out/bench/*.json.")
    parser.add_argument("--out", type=Path, default=OUT_DIR_DEFAULT, help="directory with the JSON results")
    args = parser.parse_args()
    for path in write_docs(args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
