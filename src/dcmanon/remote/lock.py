"""One run at a time into an output folder given as a URL, and what a killed run left there.

A remote file system has no ``flock``: the lock is a small file, ``.dcmanon-lock``, in the
output folder, naming the run (host, process, start) and refreshed by a heartbeat. A run that
finds a fresh lock is refused; a lock whose heartbeat stopped (its run was killed) is taken
over. The lock is advisory: two runs started within the same second can both take it, which
is why it is read back after a pause.

Holding the lock, a run removes the ``.dcmanon-*.part`` uploads a killed run left (FTP, SFTP:
object stores upload under the final name and leave none).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from typing import Any

from dcmanon.errors import UsageError
from dcmanon.remote.staging import is_object_store, own_filesystem
from dcmanon.remote.urls import display, join

log = logging.getLogger(__name__)

LOCK_NAME = ".dcmanon-lock"
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 300.0
"""A lock not refreshed for this long belongs to a run that stopped without removing it."""
SETTLE_SECONDS = 1.0
"""The pause between writing the lock and reading it back (another run may write it too)."""
PART_FILE = re.compile(r"\.dcmanon-[0-9a-f]{32}\.part")


class RemoteLock:
    """The lock of one run on an output URL; a context manager.

    Parameters
    ----------
    url : str
        The output folder.
    heartbeat : float
        Seconds between refreshes of the lock while the run goes on.
    stale_after : float
        A lock older than this (by its last heartbeat) is taken over.

    Raises
    ------
    UsageError
        On entry, if another run holds a fresh lock (the message names the lock file, so that
        a user who knows no run is going on can remove it), or if the folder cannot be written.
    """

    def __init__(self, url: str, *, heartbeat: float = HEARTBEAT_SECONDS,
                 stale_after: float = STALE_AFTER_SECONDS,
                 settle: float = SETTLE_SECONDS) -> None:
        self.url = url
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.settle = settle
        # A file system of its own: the heartbeat thread must not share a connection with
        # the files a worker in this process uploads.
        self.fs, self.root = own_filesystem(url)
        self.path = join(self.root, LOCK_NAME)
        self.run = uuid.uuid4().hex
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RemoteLock:
        holder = self._read()
        if holder is not None and time.time() - _number(holder.get("heartbeat")) < \
                self.stale_after:
            raise UsageError(self._held_message(holder))
        if holder is not None:
            log.warning("%s: taking over the lock of a run that stopped (no heartbeat for "
                        "%.0f s)", display(self.url), time.time() - _number(
                            holder.get("heartbeat")))
        self._write()
        time.sleep(self.settle)
        holder = self._read()
        if holder is None or holder.get("run") != self.run:
            raise UsageError(self._held_message(holder or {}))
        removed = clear_stale_parts(self.fs, self.root)
        if removed:
            log.info("%s: removed %d unfinished upload(s) of an earlier run",
                     display(self.url), removed)
        self._thread = threading.Thread(target=self._beat, name="dcmanon-lock", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat + 5)
        with contextlib.suppress(Exception):  # best effort: a stale lock is taken over later
            holder = self._read()
            if holder is not None and holder.get("run") == self.run:
                self.fs.rm_file(self.path)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self._write()
            except Exception as exc:  # noqa: BLE001  (the run goes on; the next beat retries)
                log.warning("%s: could not refresh the run lock (%s)", display(self.url),
                            type(exc).__name__)

    def _write(self) -> None:
        record = {"run": self.run, "host": socket.gethostname(), "pid": os.getpid(),
                  "started": self.started, "heartbeat": time.time()}
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            with self.fs.open(self.path, "wb") as handle:
                handle.write(json.dumps(record).encode())
        except Exception as exc:  # noqa: BLE001  (every implementation raises its own errors)
            raise UsageError(f"{display(self.url)}: cannot write the run lock "
                             f"({type(exc).__name__})") from None

    def _read(self) -> dict[str, Any] | None:
        try:
            self.fs.invalidate_cache(self.root)
            if not self.fs.exists(self.path):
                return None
            with self.fs.open(self.path, "rb") as handle:
                record = json.loads(handle.read() or b"{}")
        except (ValueError, UnicodeDecodeError):
            return {}  # a lock being written, or damaged: its heartbeat is unknown (stale)
        except Exception as exc:  # noqa: BLE001  (every implementation raises its own errors)
            raise UsageError(f"{display(self.url)}: cannot read the run lock "
                             f"({type(exc).__name__})") from None
        return record if isinstance(record, dict) else {}

    def _held_message(self, holder: dict[str, Any]) -> str:
        host = holder.get("host", "another machine")
        return (f"{display(self.url)}: another dcmanon run (on {host}) is writing to this "
                f"output folder; if none is, remove {display(join(self.url, LOCK_NAME))}")


def clear_stale_parts(fs: Any, root: str) -> int:
    """Remove the temporary uploads (``.dcmanon-<hex>.part``) under ``root``; their count."""
    if is_object_store(fs):
        return 0
    try:
        found = fs.find(root)
    except FileNotFoundError:
        return 0
    removed = 0
    for path in found:
        if PART_FILE.fullmatch(str(path).rsplit("/", 1)[-1]):
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(path)
                removed += 1
    return removed


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
