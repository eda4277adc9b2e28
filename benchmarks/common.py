"""Shared helpers of the benchmark scripts: repository path, machine facts, repeated timing, JSON results.

The scripts in this folder are run directly (`.venv/bin/python benchmarks/X.py`),
so importing this module also puts the repository root on `sys.path` for `node`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

OUT_DIR_DEFAULT = REPO_ROOT / "out" / "bench"
REPEATS_MIN = 3


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Describe the machine the figures were measured on."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_total_bytes": memory_total_bytes(),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


def spread(samples: list[float]) -> dict[str, Any]:
    """Summarize repeated measurements as median, min, max and the raw samples."""
    if not samples:
        raise ValueError("spread() needs at least one sample")
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "runs": len(samples),
        "samples": list(samples),
    }


def repeat(measure: Callable[[], float], repeats: int) -> dict[str, Any]:
    """Call `measure` `repeats` times (at least REPEATS_MIN) and return the spread of its results."""
    count = max(repeats, REPEATS_MIN)
    return spread([measure() for _ in range(count)])


def repeat_many(measure: Callable[[], dict[str, float]], repeats: int) -> dict[str, dict[str, Any]]:
    """Like `repeat` for a measurement that returns several named figures per run."""
    count = max(repeats, REPEATS_MIN)
    runs = [measure() for _ in range(count)]
    return {name: spread([run[name] for run in runs]) for name in sorted(runs[0])}


def rates_per_second(operation: Callable[[], None], iterations: int) -> dict[str, float]:
    """Run `operation` `iterations` times; return operations per second of wall time and of this process's CPU time.

    On a shared machine the wall-time rate drops when other processes take the
    core, while the CPU-time rate stays close to what one idle core would do.
    """
    wall_started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(iterations):
        operation()
    cpu_elapsed = time.process_time() - cpu_started
    wall_elapsed = time.perf_counter() - wall_started
    return {"per_wall_s": iterations / wall_elapsed, "per_cpu_s": iterations / max(cpu_elapsed, 1e-9)}


def seconds_of(operation: Callable[[], Any]) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


def write_result(out_dir: Path, name: str, result: dict[str, Any]) -> Path:
    """Write one benchmark's result as `<out_dir>/<name>.json` and return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_result(out_dir: Path, name: str) -> dict[str, Any] | None:
    path = out_dir / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def command_line() -> str:
    """Return the command that started this process, as a reader would retype it."""
    return " ".join([Path(sys.executable).name] + [os.path.relpath(sys.argv[0], REPO_ROOT)] + sys.argv[1:])


def utc_timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
