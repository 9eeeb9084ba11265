"""The worker in a process of its own, so that de-identifying and forwarding never hold the
receiving side's interpreter lock: the listener only writes, flushes and acknowledges.

The two share the spool folder; the worker process sends back its events (counters and audit
log lines), log records and the bytes it frees, through a queue. It ends when asked, and on
its own if the node's process is gone (a ``kill -9`` leaves no worker behind).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcmanon.net.spool import Spool
from dcmanon.net.worker import Flag, RetryPolicy, Worker

if TYPE_CHECKING:
    from dcmanon.anonymizer import Anonymizer
    from dcmanon.net.audit import Audit
    from dcmanon.net.forward import Destination

_log = logging.getLogger(__name__)


class WorkerProcess:
    """Run a :class:`~dcmanon.net.worker.Worker` in a spawned process.

    Parameters
    ----------
    spool : Spool
        The node's view of the spool (its size is kept up to date from the worker's).
    anonymizer, destination, batch_size, retry
        As :class:`~dcmanon.net.worker.Worker`.
    audit : Audit
        Where the worker's events are recorded, in this process.
    route : str
        The route's name, added to its audit events (empty: none).
    mapping_dir : str, optional
        As :class:`~dcmanon.net.worker.Worker`.
    """

    def __init__(self, spool: Spool, anonymizer: Anonymizer, destination: Destination,
                 audit: Audit, *, batch_size: int = 64, retry: RetryPolicy | None = None,
                 route: str = "", mapping_dir: str | None = None) -> None:
        self.route = route
        self._context = multiprocessing.get_context("spawn")
        self.spool = spool
        self.audit = audit
        self._wake = self._context.Event()
        self._stop = self._context.Event()
        self._events: Any = self._context.Queue()
        self._args = (str(spool.root), anonymizer, destination, batch_size,
                      retry or RetryPolicy(), self._wake, self._stop, self._events, os.getpid(),
                      mapping_dir)
        self._process = self._new_process()
        self.restarts = 0
        self._drain = threading.Thread(target=self._receive, name="dcmanon-worker-events",
                                       daemon=True)

    def _new_process(self) -> Any:
        return self._context.Process(target=_main, name="dcmanon-worker", daemon=True,
                                     args=self._args)

    def start(self) -> None:
        """Start the process and the thread that records its events."""
        self._process.start()
        self._drain.start()

    def wake(self) -> None:
        """Something arrived in the spool."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the batch in progress; what is left stays in the spool."""
        self._stop.set()
        self._wake.set()
        self._process.join(timeout)
        if self._process.is_alive():  # a send that does not end: the spool keeps its images
            self._process.terminate()
            self._process.join(10)
        self._events.put(None)
        self._drain.join(10)

    def _receive(self) -> None:
        while True:
            try:
                message = self._events.get(timeout=1.0)
            except queue.Empty:
                self._supervise()
                continue
            if message is None:
                return
            kind, payload = message
            if kind == "bytes":
                self.spool.adjust(payload)
            elif kind == "event":
                event_kind, count, add, fields = payload
                if self.route:
                    fields["route"] = self.route
                self.audit.event(event_kind, count, add, **fields)
            elif kind == "log":
                level, name, text = payload
                logging.getLogger(name).log(level, "%s", text)


    def _supervise(self) -> None:
        """Start the worker again if it died (a crash, the kernel's OOM killer): the node
        would otherwise acknowledge images that nothing forwards."""
        if self._stop.is_set() or self._process.is_alive():
            return
        self.restarts += 1
        delay = min(60.0, 2.0 ** min(self.restarts, 6))
        _log.error("the forwarding worker ended (exit code %s); starting it again in %.0f s",
                   self._process.exitcode, delay)
        if self._stop.wait(delay):
            return
        self._process = self._new_process()
        self._process.start()


class _Events:
    """The worker process's stand-in for :class:`~dcmanon.net.audit.Audit`."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def event(self, kind: str, count: str | None = None, add: int = 1,
              **fields: Any) -> None:
        self.queue.put(("event", (kind, count, add, fields)))


class _LogToQueue(logging.Handler):
    """Log records of the worker process, sent to the node's process (already formatted:
    the library's messages carry tags and files, never values)."""

    def __init__(self, queue: Any) -> None:
        super().__init__()
        self.queue = queue

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put(("log", (record.levelno, record.name, record.getMessage())))
        except Exception:  # noqa: BLE001  (logging must never stop the worker)
            self.handleError(record)


def _main(root: str, anonymizer: Anonymizer, destination: Destination, batch_size: int,
          retry: RetryPolicy, wake: Flag, stop: Flag, events: Any, parent: int,
          mapping_dir: str | None) -> None:
    """The worker process: work from the spool until stopped or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the node decides when to stop
    logger = logging.getLogger("dcmanon")
    logger.addHandler(_LogToQueue(events))
    logger.setLevel(logging.INFO)

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)  # the node is gone; its spool is safe as it is

    threading.Thread(target=orphaned, daemon=True).start()
    spool = Spool(Path(root), owner=False,
                  on_change=lambda delta: events.put(("bytes", delta)))
    worker = Worker(spool, anonymizer, destination, _Events(events), batch_size=batch_size,
                    retry=retry, wake=wake, stop=stop, mapping_dir=mapping_dir)
    try:
        worker.run()
    finally:
        spool.close()
