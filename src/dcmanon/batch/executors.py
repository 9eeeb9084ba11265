"""Where chunks of work run: in this process, in a pool of processes, or on a Dask cluster.

Every executor has the same small interface: :meth:`Executor.map_unordered` runs a picklable
function over items and yields each result as soon as it is ready, with a bounded number of
items in flight (memory stays flat however many items there are). An item whose function
raised — or whose worker died — yields ``on_error(item, exception)`` instead: one failure
never stops the others.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from dcmanon.errors import MissingExtraError, UsageError

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger(__name__)
IN_FLIGHT_PER_WORKER = 2


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class Executor(Protocol):
    """Runs a function over items, in parallel where it can."""

    workers: int
    name: str

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      on_error: Callable[[T, BaseException], R]) -> Iterator[R]:
        """Yield ``fn(item)`` for every item, in the order they complete."""
        ...

    def sync(self) -> None:
        """Flush what the workers wrote to disk (outputs are not synced one by one)."""
        ...

    def close(self) -> None:
        """Release the workers (waits for nothing that was not asked for)."""
        ...


class SerialExecutor:
    """Everything in the calling process, in order (``-j 1``, and small runs)."""

    workers = 1
    name = "serial"

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      on_error: Callable[[T, BaseException], R]) -> Iterator[R]:
        """Yield ``fn(item)`` for every item, in order."""
        for item in items:
            try:
                result = fn(item)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001  (a failed chunk fails its files, not the run)
                result = on_error(item, exc)
            yield result

    def sync(self) -> None:
        """Flush this machine's writes to disk."""
        os.sync()

    def close(self) -> None:
        """Nothing to release."""


def _start_method() -> str:
    """fork when this process has no other thread (workers start at once, with everything
    imported: importing dcmanon again costs a second); else forkserver where there is one
    (a threaded parent is never forked), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


class ProcessExecutor:
    """A pool of worker processes on this machine (spawn-safe: functions must pickle).

    Parameters
    ----------
    workers : int
        How many processes.
    start_method : str, optional
        ``fork``, ``forkserver`` or ``spawn`` (default: see :func:`_start_method`).
    """

    name = "processes"

    def __init__(self, workers: int, start_method: str | None = None) -> None:
        self.workers = workers
        method = start_method or _start_method()
        self._context = multiprocessing.get_context(method)
        if method == "forkserver":
            # Imported once in the server, inherited by every worker it forks.
            self._context.set_forkserver_preload(["dcmanon.batch.worker"])
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        # A forkserver lives as long as this process and hands its workers the environment
        # of when it started: each pool's workers take this process's environment of now
        # (credentials of file systems often live there).
        self._pool = ProcessPoolExecutor(self.workers, mp_context=self._context,
                                         initializer=_adopt_environment,
                                         initargs=(dict(os.environ),))
        return self._pool

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      on_error: Callable[[T, BaseException], R]) -> Iterator[R]:
        """Yield ``fn(item)`` as the workers finish, ``workers * 2`` items in flight."""
        pool = self._pool or self._new_pool()
        pending: dict[Future[R], T] = {}
        source = iter(items)
        limit = self.workers * IN_FLIGHT_PER_WORKER
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < limit:
                item = next(source, _END)
                if item is _END:
                    exhausted = True
                    break
                pending[pool.submit(fn, item)] = item
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                item = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool as exc:
                    broken = True  # a worker died (killed, out of memory, a crash in C)
                    logger.warning("a worker process died; its chunk is reported as failed")
                    yield on_error(item, exc)
                except Exception as exc:  # noqa: BLE001  (a failed chunk fails its files only)
                    yield on_error(item, exc)
            if broken:  # the pool is unusable: fail what it held, go on with a new one
                for future, item in list(pending.items()):
                    future.cancel()
                    yield on_error(item, BrokenProcessPool("worker process died"))
                pending.clear()
                pool = self._new_pool()

    def sync(self) -> None:
        """Flush this machine's writes to disk (the workers share its page cache)."""
        os.sync()

    def close(self) -> None:
        """Stop the workers; chunks not started are cancelled."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _adopt_environment(environment: dict[str, str]) -> None:
    """Make a worker's environment the one given (run in each worker as it starts)."""
    for name in set(os.environ) - set(environment):
        del os.environ[name]
    os.environ.update(environment)


_END: Any = object()


class DaskExecutor:
    """A Dask cluster: a scheduler's address, or a local cluster of worker processes.

    Needs the ``distributed`` extra (``pip install 'dcmanon[distributed]'``). Workers must be
    able to import dcmanon (the same version) and to reach the input and output paths.

    Parameters
    ----------
    scheduler : str, optional
        ``tcp://host:8786``; without it a local cluster of ``workers`` processes is started.
    workers : int
        Processes of the local cluster (ignored with a scheduler).
    processes : bool
        Local cluster of processes (default) or of threads in this process.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int = 1, *,
                 processes: bool = True) -> None:
        try:
            distributed: Any = importlib.import_module("distributed")
        except ImportError:
            raise MissingExtraError(
                "--executor dask needs the 'distributed' extra: "
                "pip install 'dcmanon[distributed]'") from None
        self._cluster: Any = None
        if scheduler is None:
            # Any free port for its HTTP server: 8787 (the default) may be another cluster's.
            self._cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=processes, dashboard_address=":0")
            self._client: Any = distributed.Client(self._cluster)
        else:
            try:
                self._client = distributed.Client(scheduler, timeout="30s")
            except OSError as exc:
                raise UsageError(f"cannot reach the Dask scheduler at {scheduler} "
                                 f"({type(exc).__name__})") from None
        self.workers = max(1, len(self._client.scheduler_info().get("workers", {})) or workers)

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      on_error: Callable[[T, BaseException], R]) -> Iterator[R]:
        """Yield ``fn(item)`` as the cluster finishes, ``workers * 2`` items in flight."""
        as_completed: Any = importlib.import_module("distributed").as_completed
        source = iter(items)
        limit = self.workers * IN_FLIGHT_PER_WORKER
        pending: dict[str, T] = {}
        queue = as_completed()
        for item in source:
            future = self._client.submit(fn, item, pure=False)
            pending[future.key] = item
            queue.add(future)
            if len(pending) >= limit:
                break
        for future in queue:
            item = pending.pop(future.key)
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001  (a lost worker fails its chunk only)
                yield on_error(item, exc)
            following = next(source, _END)
            if following is not _END:
                new = self._client.submit(fn, following, pure=False)
                pending[new.key] = following
                queue.add(new)

    def sync(self) -> None:
        """Flush every worker's machine to disk, and this one."""
        self._client.run(os.sync)
        os.sync()

    def close(self) -> None:
        """Disconnect; a local cluster is shut down."""
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
