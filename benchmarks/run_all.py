"""Run every benchmark in sequence, write out/bench/*.json and regenerate docs/benchmarks.md in both languages.

The benchmarks run one after another, never at the same time, so they do not
compete for the machine with each other (other users of the machine still may).
Plenum runs right after the network benchmark. Every result of one invocation
carries the same run id (its start time), and the report pairs Xinlian with
Plenum only when the run ids match. `run.json` records the profile, the run id
and how long each benchmark took.

Every profile also runs block_path.py after the ceilings: one node's CPU per transaction,
in process, for 1,000 subjects (--quick) or 3,000 (otherwise), in well under a minute.

--quick:    3 runs per figure, books of 10k and 100k loans, 15 s windows, concurrency 10 and 100,
            n = 4 only, catch-up from 200 blocks behind; Plenum at 10 and 100.
--standard: 3 runs per figure, books of 10k, 100k and 1M loans, 20 s windows; n = 4 at concurrency
            10, 100 and 1000 plus the 50 tx/s open loop, 3 view changes, catch-up from 10,000
            small blocks behind and from 100 blocks made at concurrency 1000; n = 7 and 10 at
            concurrency 1000 only, no faults; Plenum at 10, 100 and 1000.
            About 21 minutes on a 2-core machine with the loan books cached (measured 2026-12-04:
            network 15 minutes with both catch-ups, Plenum 5, the rest under one).
--full:     5 runs per figure, 60 s windows, the --standard settings otherwise, and n = 7 and 10 at
            every concurrency.

Loading the 1M-loan book, when it is not cached in /tmp/xinlian-bench-books, adds about 23 CPU
minutes (1,358 CPU s and 3,884 s of wall time on a loaded 2-core machine); load it ahead with
`.venv/bin/python benchmarks/bulk_load.py --loans 1000000 --cache-dir /tmp/xinlian-bench-books`.

Usage: .venv/bin/python benchmarks/run_all.py --quick|--standard|--full [--skip plenum network ...]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import OUT_DIR_DEFAULT, REPO_ROOT, command_line, utc_timestamp, write_result
from report import write_docs

logger = logging.getLogger("xinlian.bench.run_all")

BENCHMARK_NAMES = ("ceilings", "block_path", "book_size", "network", "plenum")
ALL_CONCURRENCIES = ["10", "100", "1000"]

PROFILES = {
    "quick": {
        "ceilings": ["--quick"],
        "block_path": ["--subjects", "1000"],
        "book_size": ["--loans", "10000", "100000", "--repeats", "3"],
        "network": ["--nodes", "4", "--concurrency", "10", "100", "--window-s", "15", "--repeats", "3", "--catch-up-blocks", "200"],
        "plenum": ["--concurrency", "10", "100", "--window-s", "15", "--repeats", "3"],
    },
    "standard": {
        "ceilings": [],
        "block_path": ["--subjects", "3000"],
        "book_size": ["--loans", "10000", "100000", "1000000", "--repeats", "3"],
        "network": [
            "--nodes", "4", "--concurrency", *ALL_CONCURRENCIES, "--window-s", "20", "--repeats", "3",
            "--view-changes", "3", "--catch-up-blocks", "10000", "--catch-up-full-blocks", "100",
            "--scaling-nodes", "7", "10", "--scaling-concurrency", "1000", "--scaling-repeats", "3",
        ],
        "plenum": ["--concurrency", *ALL_CONCURRENCIES, "--window-s", "20", "--repeats", "3"],
    },
    "full": {
        "ceilings": [],
        "block_path": ["--subjects", "3000", "--repeats", "5"],
        "book_size": ["--loans", "10000", "100000", "1000000", "--repeats", "5"],
        "network": [
            "--nodes", "4", "--concurrency", *ALL_CONCURRENCIES, "--window-s", "60", "--repeats", "5",
            "--view-changes", "5", "--catch-up-blocks", "10000",
            "--scaling-nodes", "7", "10", "--scaling-concurrency", *ALL_CONCURRENCIES, "--scaling-repeats", "5",
        ],
        "plenum": ["--concurrency", *ALL_CONCURRENCIES, "--window-s", "60", "--repeats", "5"],
    },
}


def run_benchmark(name: str, arguments: list[str], out_dir: Path, run_id: str) -> dict[str, Any]:
    """Run one benchmark script and return its exit code and duration (a failure does not stop the others)."""
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / f"{name}.py"), *arguments, "--run-id", run_id, "--out", str(out_dir)]
    logger.info("running %s", " ".join(command))
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO_ROOT, check=False)
    seconds = time.perf_counter() - started
    logger.info("%s finished with exit code %d after %.0f s", name, completed.returncode, seconds)
    return {"exit_code": completed.returncode, "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description="Run all benchmarks and regenerate docs/benchmarks.md.")
    profile = parser.add_mutually_exclusive_group(required=True)
    profile.add_argument("--quick", action="store_const", const="quick", dest="profile", help="shorter windows, smaller books, n = 4 only")
    profile.add_argument("--standard", action="store_const", const="standard", dest="profile", help="every figure of the benchmark page, about 21 minutes with the books cached")
    profile.add_argument("--full", action="store_const", const="full", dest="profile", help="long windows and 5 runs per figure, well over an hour")
    parser.add_argument("--skip", nargs="*", default=[], choices=BENCHMARK_NAMES, help="benchmarks to leave out")
    parser.add_argument("--out", type=Path, default=OUT_DIR_DEFAULT, help="directory for the JSON results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    run_id = utc_timestamp()
    run: dict[str, Any] = {"run_id": run_id, "profile": args.profile, "command": command_line(), "skipped": sorted(args.skip), "benchmarks": {}}
    started = time.perf_counter()
    for name in BENCHMARK_NAMES:
        if name not in args.skip:
            run["benchmarks"][name] = run_benchmark(name, PROFILES[args.profile][name], args.out, run_id)
            run["seconds"] = round(time.perf_counter() - started, 1)
            write_result(args.out, "run", run)

    for path in write_docs(args.out):
        logger.info("wrote %s", path)
    failed = [name for name, outcome in run["benchmarks"].items() if outcome["exit_code"] != 0]
    if failed:
        logger.error("failed benchmarks: %s; their sections keep the last result or say not measured", ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
