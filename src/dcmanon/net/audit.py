"""What the node did, for operators: counters (the status endpoint) and a JSON-lines audit log.

The audit log names spool items, calling AE titles, addresses, SOP classes and de-identified
UIDs; never an original value (the received image is not even decoded when it is logged).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Counters:
    """The node's running totals (read by the status endpoint)."""

    received: int = 0
    refused: int = 0
    """Images answered Out of Resources (spool full) or refused."""
    deidentified: int = 0
    forwarded: int = 0
    duplicates: int = 0
    """Images the destination already had (same de-identified SOP Instance UID): not sent."""
    failed: int = 0
    """Images moved to quarantine."""
    retries: int = 0
    associations: int = 0
    """Associations accepted by the node."""
    started: float = field(default_factory=time.time)
    last_received: float | None = None
    last_forwarded: float | None = None


class Audit:
    """Counters and, when given a path, a JSON-lines audit log (one object per event).

    Parameters
    ----------
    path : path-like, optional
        The log file, appended to (made if missing).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.counters = Counters()
        self._lock = threading.Lock()
        # Open for the node's lifetime (closed by close()): one line per event.
        self._handle: TextIO | None = (
            open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            if path is not None else None)

    def close(self) -> None:
        """Close the log file."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def event(self, kind: str, count: str | None = None, add: int = 1,
              **fields: Any) -> None:
        """Record one event: bump the counter ``count`` (if any) and log the fields given.

        Fields must never carry an original value: items, AE titles, addresses, SOP class
        UIDs, de-identified UIDs, statuses and fixed reasons.
        """
        now = time.time()
        with self._lock:
            if count is not None:
                setattr(self.counters, count, getattr(self.counters, count) + add)
            if kind == "received":
                self.counters.last_received = now
            elif kind == "forwarded":
                self.counters.last_forwarded = now
            if self._handle is not None:
                record = {"time": _iso(now), "event": kind, **fields}
                self._handle.write(json.dumps(record, sort_keys=False) + "\n")

    def snapshot(self) -> Counters:
        """A copy of the counters."""
        with self._lock:
            return Counters(**vars(self.counters))


def _iso(seconds: float) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds % 1 * 1000):03d}Z"
