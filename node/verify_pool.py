"""The node's process pool for transaction signature checks, started on first use.

Most submissions are single transactions that the verifier checks inline, so
the pool's worker processes start only when the first large batch arrives
(see `node.tx.POOL_BATCH_THRESHOLD`). Workers come from a fork server, so they
do not inherit the node's event loop, sockets or LevelDB handles.

A worker's parent is the fork server, not the node, so a node killed with
SIGKILL would leave its workers behind. Each worker therefore runs a watchdog
thread that exits the worker once the node's process is gone.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
from typing import Any, Callable

log = logging.getLogger("xinlian.verify_pool")

WORKERS_MAX = 8
# How often a worker checks that the node that started it is still alive.
OWNER_CHECK_INTERVAL_SECONDS = 0.5


def default_worker_count() -> int:
    """Return one worker per CPU but one, at least 1 and at most WORKERS_MAX, so the event loop keeps a CPU."""
    return max(1, min(WORKERS_MAX, (os.cpu_count() or 2) - 1))


class LazyProcessPool(concurrent.futures.Executor):
    """A ProcessPoolExecutor that starts its workers on the first `submit`."""

    def __init__(self, max_workers: int | None = None) -> None:
        self._max_workers = max_workers or default_worker_count()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._shut_down = False

    @property
    def started(self) -> bool:
        return self._pool is not None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        return self._started_pool().submit(fn, *args, **kwargs)

    def _started_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._shut_down:
                raise RuntimeError("the signature pool is shut down")
            if self._pool is None:
                methods = multiprocessing.get_all_start_methods()
                context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self._max_workers, mp_context=context, initializer=watch_owner, initargs=(os.getpid(),)
                )
                log.info("started signature pool", extra={"fields": {"workers": self._max_workers}})
            return self._pool

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut_down = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def watch_owner(owner_pid: int) -> None:
    """Start a daemon thread that ends this worker process when `owner_pid` has exited (worker initializer)."""
    thread = threading.Thread(target=_exit_when_gone, args=(owner_pid,), name="owner-watchdog", daemon=True)
    thread.start()


def _exit_when_gone(owner_pid: int) -> None:
    while process_alive(owner_pid):
        threading.Event().wait(OWNER_CHECK_INTERVAL_SECONDS)
    # The pool's result pipe has no reader any more, so a normal shutdown could block: exit at once.
    os._exit(0)


def process_alive(pid: int) -> bool:
    """Return whether `pid` runs and is not a zombie (a killed node that its parent has not reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read()
    except OSError:
        # No /proc (not Linux): signal 0 succeeded, so the process exists.
        return True
    # The state letter follows the command name in parentheses, which may itself contain ") ".
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")
