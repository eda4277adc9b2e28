"""The node's process pool for transaction signature checks, started on first use.

Most submissions are single transactions that the verifier checks inline, so
the pool's worker processes start only when the first large batch arrives
(see `node.tx.POOL_BATCH_THRESHOLD`). Workers come from a fork server, so they
do not inherit the node's event loop, sockets or LevelDB handles.
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
                self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=self._max_workers, mp_context=context)
                log.info("started signature pool", extra={"fields": {"workers": self._max_workers}})
            return self._pool

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut_down = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)
