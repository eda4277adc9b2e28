"""Run every benchmark in sequence, write out/bench/*.json and regenerate docs/benchmarks.md in both languages.

The benchmarks run one after another, never at the same time, so they do not
compete for the machine with each other (other users of the machine still may).

--quick: 3 runs per figure, books of 10k and 100k loans, 15 s windows, concurrency 10 and 100, n = 4,
         catch-up from 200 blocks behind.
--full:  5 runs per figure, books of 10k, 100k and 1M loans, 60 s windows, concurrency 10, 100 and 1000,
         n = 4, 7 and 10, catch-up from 10,000 blocks behind.

Usage: .venv/bin/python benchmarks/run_all.py --quick|--full [--skip plenum network ...]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

from common import OUT_DIR_DEFAULT, REPO_ROOT
from report import write_docs

logger = logging.getLogger("xinlian.bench.run_all")

BENCHMARK_NAMES = ("ceilings", "book_size", "network", "plenum")

PROFILES = {
    "quick": {
        "ceilings": ["--quick"],
        "book_size": ["--loans", "10000", "100000", "--repeats", "3"],
        "network": ["--nodes", "4", "--concurrency", "10", "100", "--window-s", "15", "--repeats", "3", "--catch-up-blocks", "200"],
        "plenum": ["--concurrency", "10", "100", "--window-s", "15", "--repeats", "3"],
    },
    "full": {
        "ceilings": [],
        "book_size": ["--loans", "10000", "100000", "1000000", "--repeats", "5"],
        "network": ["--nodes", "4", "7", "10", "--concurrency", "10", "100", "1000", "--window-s", "60", "--repeats", "5", "--catch-up-blocks", "10000"],
        "plenum": ["--concurrency", "10", "100", "1000", "--window-s", "60", "--repeats", "5"],
    },
}


def run_benchmark(name: str, arguments: list[str], out_dir: Path) -> bool:
    """Run one benchmark script; return whether it succeeded (a failure does not stop the others)."""
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / f"{name}.py"), *arguments, "--out", str(out_dir)]
    logger.info("running %s", " ".join(command))
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO_ROOT, check=False)
    logger.info("%s finished with exit code %d after %.0f s", name, completed.returncode, time.perf_counter() - started)
    return completed.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Run all benchmarks and regenerate docs/benchmarks.md.")
    profile = parser.add_mutually_exclusive_group(required=True)
    profile.add_argument("--quick", action="store_const", const="quick", dest="profile", help="short runs")
    profile.add_argument("--full", action="store_const", const="full", dest="profile", help="long runs, includes the 1M-loan book")
    parser.add_argument("--skip", nargs="*", default=[], choices=BENCHMARK_NAMES, help="benchmarks to leave out")
    parser.add_argument("--out", type=Path, default=OUT_DIR_DEFAULT, help="directory for the JSON results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    failed = [name for name in BENCHMARK_NAMES if name not in args.skip and not run_benchmark(name, PROFILES[args.profile][name], args.out)]
    for path in write_docs(args.out):
        logger.info("wrote %s", path)
    if failed:
        logger.error("failed benchmarks: %s; their sections keep the last result or say not measured", ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
