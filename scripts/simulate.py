#!/usr/bin/env python3
"""Run the deterministic whole-cluster PBFT simulator over one seed or a range of seeds.

Examples:
    python scripts/simulate.py --seed 48213 --n 4
    python scripts/simulate.py --seeds 1..5000 --n 7 --jobs 4

Each seed runs a safety phase under the chosen faults and then a liveness
phase on a healed network. A failing seed is printed with the command that
reproduces it, and the exit status is 1 if any seed failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sim.checkers import SimulationFailure  # noqa: E402
from tests.sim.cluster import SimulationConfig, run_simulation  # noqa: E402
from tests.sim.faults import FAULT_NAMES, FaultSpecError, parse_faults  # noqa: E402

PROGRESS_INTERVAL_SECONDS = 5.0


def parse_seed_range(text: str) -> range:
    """Parse "A..B" (inclusive) or a single seed into a range."""
    try:
        if ".." in text:
            first, last = text.split("..", 1)
            return range(int(first), int(last) + 1)
        return range(int(text), int(text) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed range {text!r}: expected A..B, for example 1..1000") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the seeded PBFT cluster simulator.")
    seeds = parser.add_mutually_exclusive_group(required=True)
    seeds.add_argument("--seed", type=int, help="run one seed and print its report")
    seeds.add_argument("--seeds", type=parse_seed_range, help="run seeds A..B inclusive")
    parser.add_argument("--n", type=int, default=4, help="number of validators (default 4)")
    parser.add_argument(
        "--faults",
        default="all",
        help=f"comma-separated faults to inject: {', '.join(FAULT_NAMES)}, or all, or none (default all)",
    )
    parser.add_argument("--safety-ticks", type=int, default=600, help="ticks of the faulty phase (default 600)")
    parser.add_argument(
        "--liveness-ticks",
        type=int,
        default=4000,
        help="ticks allowed after healing for every transaction to commit everywhere; 0 skips the liveness phase "
        "(default 4000)",
    )
    parser.add_argument(
        "--reconfig",
        action="store_true",
        help="start one extra observer node and add it to the validator set by a committed transaction",
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes for --seeds (default 1)")
    return parser


def run_one(config: SimulationConfig) -> tuple[int, str | None, dict | None]:
    try:
        report = run_simulation(config)
    except SimulationFailure as failure:
        return config.seed, str(failure), None
    except Exception as exc:  # a bug in the simulator itself must not stop the other seeds
        return config.seed, f"seed {config.seed}: simulator error {type(exc).__name__}: {exc}\nreproduce with: {config.reproduce_command()}", None
    return config.seed, None, asdict(report)


def run_single(config: SimulationConfig) -> int:
    seed, failure, report = run_one(config)
    if failure is not None:
        print(f"FAIL {failure}")
        return 1
    print(json.dumps(report, indent=2, sort_keys=True))
    print(f"ok seed {seed}")
    return 0


def run_many(configs: list[SimulationConfig], jobs: int) -> int:
    started = time.monotonic()
    last_progress = started
    failures: list[tuple[int, str]] = []
    done = 0
    with multiprocessing.Pool(jobs) as pool:
        for seed, failure, _ in pool.imap_unordered(run_one, configs, chunksize=4):
            done += 1
            if failure is not None:
                failures.append((seed, failure))
                print(f"FAIL {failure}", flush=True)
            now = time.monotonic()
            if now - last_progress >= PROGRESS_INTERVAL_SECONDS or done == len(configs):
                rate = done / (now - started)
                print(f"{done}/{len(configs)} seeds, {len(failures)} failed, {rate:.1f} seeds/s", flush=True)
                last_progress = now
    elapsed = time.monotonic() - started
    print(f"ran {done} seeds in {elapsed:.1f}s: {done - len(failures)} passed, {len(failures)} failed")
    for seed, failure in sorted(failures):
        command = failure.rsplit("reproduce with: ", 1)[-1]
        print(f"  seed {seed}: {command}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        faults = parse_faults(args.faults)
    except FaultSpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.n < 1:
        print(f"error: --n must be at least 1, got {args.n}", file=sys.stderr)
        return 2

    def config_for(seed: int) -> SimulationConfig:
        return SimulationConfig(
            seed=seed,
            node_count=args.n,
            faults=faults,
            safety_ticks=args.safety_ticks,
            liveness_ticks=args.liveness_ticks,
            reconfig=args.reconfig,
        )

    if args.seed is not None:
        return run_single(config_for(args.seed))
    return run_many([config_for(seed) for seed in args.seeds], max(1, args.jobs))


if __name__ == "__main__":
    sys.exit(main())
