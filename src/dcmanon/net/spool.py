"""The node's spool: where received images wait, on disk, until the destination has them.

An image is acknowledged only once :meth:`Spool.store` returned: its bytes are then in
``queue/`` and flushed (the file and the folder entry). It leaves the spool only through
:meth:`Spool.done` (the destination answered Success) or :meth:`Spool.quarantine` (it can never
be forwarded; a reason file says why, and :meth:`Spool.requeue` puts it back).

Layout of the spool folder::

    tmp/          partial writes; never acknowledged, removed at start-up
    queue/        received images, oldest first by name (<nanoseconds>-<random>.dcm)
    work/         de-identified copies waiting to be forwarded (made again after a restart)
    quarantine/   images that cannot be forwarded, each with a <name>.reason.txt
    forwarded.txt de-identified SOP Instance UIDs the destination has, with when it answered
                  Success (a re-sent image is not sent twice; remembered for ``ledger_days``)
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from dcmanon.errors import DcmanonError, UsageError, describe_os_error

_log = logging.getLogger(__name__)

SUFFIX = ".dcm"
REASON_SUFFIX = ".reason.txt"
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
LEDGER_DAYS = 90.0
"""How long the ledger remembers what a destination received: a re-send within it is dropped
as a duplicate; the ledger (on disk and in memory) holds no more than that window's images."""


class SpoolFull(DcmanonError):
    """The spool cannot take an image (its size limit, or the disk is full): the image must
    not be acknowledged."""


class Spool:
    """A folder of received images, durable before they are acknowledged.

    Parameters
    ----------
    root : path-like
        The spool folder (made if missing). Everything in ``queue/`` is resumed.
    limit : int, optional
        Refuse an image that would take the spool (queue and work copies) past this many
        bytes.
    owner : bool
        The node's own view of the spool: it takes the spool's lock (one node per spool)
        and clears what a crash left half done. False for the worker process's view.
    ledger_days : float
        How long what a destination answered Success for is remembered (see
        :data:`LEDGER_DAYS`); older entries are forgotten when the owner opens the spool.
    on_change : callable, optional
        Called with the change in bytes held whenever this view adds or removes a file (the
        worker process tells the node's view).

    Examples
    --------
    >>> import tempfile
    >>> spool = Spool(tempfile.mkdtemp())
    >>> item = spool.store(b"DICM bytes")
    >>> spool.pending() == [item]
    True
    >>> spool.done(item)
    >>> spool.pending()
    []
    """

    def __init__(self, root: str | os.PathLike[str], limit: int | None = None, *,
                 owner: bool = True, on_change: Callable[[int], None] | None = None,
                 ledger_days: float = LEDGER_DAYS) -> None:
        self.root = Path(root)
        self.limit = limit
        self.tmp = self.root / "tmp"
        self.queue = self.root / "queue"
        self.work = self.root / "work"
        self.quarantined = self.root / "quarantine"
        self.ledger_path = self.root / "forwarded.txt"
        try:
            for folder in (self.tmp, self.queue, self.work, self.quarantined):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DcmanonError(f"{self.root}: cannot make the spool folder "
                               f"({describe_os_error(exc)})") from None
        self._lock = threading.Lock()
        self._on_change = on_change
        self._queue_fd = os.open(self.queue, os.O_RDONLY)
        if owner:
            try:
                fcntl.flock(self._queue_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(self._queue_fd)
                raise UsageError(f"{self.root}: another node uses this spool") from None
            # Partial writes were never acknowledged; de-identified copies are made again.
            for folder in (self.tmp, self.work):
                for stale in folder.iterdir():
                    stale.unlink(missing_ok=True)
        self._used = sum(_size(p) for p in self.queue.iterdir())
        self._ledger = self._read_ledger(ledger_days, compact=owner)

    def close(self) -> None:
        """Release the folder handle (the spool stays on disk)."""
        with self._lock:
            if self._queue_fd >= 0:
                os.close(self._queue_fd)
                self._queue_fd = -1

    def adjust(self, delta: int) -> None:
        """Another view of the spool added (or removed, if negative) ``delta`` bytes."""
        with self._lock:
            self._used += delta

    def _changed(self, delta: int) -> None:
        with self._lock:
            self._used += delta
        if self._on_change is not None and delta:
            self._on_change(delta)

    @property
    def used(self) -> int:
        """Bytes held in ``queue/`` and ``work/``."""
        return self._used

    def store(self, data: bytes) -> str:
        """Write ``data`` (a DICOM file, as received) to the queue and flush it to disk.

        Returns
        -------
        str
            The item's name in the queue.

        Raises
        ------
        SpoolFull
            The size limit or the disk is reached: nothing was kept.
        OSError
            Any other write error: nothing was kept.
        """
        size = len(data)
        with self._lock:
            if self.limit is not None and self._used + size > self.limit:
                raise SpoolFull(f"{self.root}: spool limit of {self.limit} bytes reached")
            self._used += size  # reserved before the write, released if it fails
        name = f"{time.time_ns():020d}-{secrets.token_hex(6)}{SUFFIX}"
        temp = self.tmp / name
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temp, self.queue / name)
            os.fsync(self._queue_fd)  # the folder entry too: durable before acknowledged
        except OSError as exc:
            with self._lock:
                self._used -= size
            temp.unlink(missing_ok=True)
            if exc.errno in _FULL:
                raise SpoolFull(f"{self.root}: disk full ({describe_os_error(exc)})") from None
            raise
        return name

    def pending(self) -> list[str]:
        """The queued items, oldest first."""
        return sorted(p.name for p in self.queue.iterdir() if p.name.endswith(SUFFIX))

    def path(self, item: str) -> Path:
        """Where a queued item's received bytes are."""
        return self.queue / item

    def work_path(self, item: str) -> Path:
        """Where an item's de-identified copy goes."""
        return self.work / item

    def add_work(self, item: str) -> None:
        """Count the de-identified copy of ``item`` (just written) in the spool's size."""
        self._changed(_size(self.work_path(item)))

    def oldest_age(self) -> float | None:
        """Seconds since the oldest queued item arrived (None: the queue is empty)."""
        items = self.pending()
        if not items:
            return None
        return max(0.0, (time.time_ns() - int(items[0].split("-", 1)[0])) / 1e9)

    def done(self, item: str) -> None:
        """The destination has ``item``: remove it (and its de-identified copy)."""
        self._remove(self.work_path(item))
        self._remove(self.path(item))

    def drop_work(self, item: str) -> None:
        """Remove ``item``'s de-identified copy (it is made again when needed)."""
        self._remove(self.work_path(item))

    def quarantine(self, item: str, reason: str) -> Path:
        """Move ``item`` out of the queue with a reason file (a reason never holds a value).

        Returns
        -------
        Path
            The quarantined file.
        """
        self._remove(self.work_path(item))
        target = self.quarantined / item
        (self.quarantined / (item + REASON_SUFFIX)).write_text(reason.rstrip() + "\n",
                                                               encoding="utf-8")
        size = _size(self.path(item))
        os.replace(self.path(item), target)
        self._changed(-size)
        return target

    def quarantined_items(self) -> list[str]:
        """The items in quarantine, oldest first."""
        return sorted(p.name for p in self.quarantined.iterdir() if p.name.endswith(SUFFIX))

    def requeue(self) -> int:
        """Put every quarantined item back in the queue (its reason file removed).

        Returns
        -------
        int
            How many items were put back.
        """
        count = 0
        for item in self.quarantined_items():
            size = _size(self.quarantined / item)
            os.replace(self.quarantined / item, self.queue / item)
            (self.quarantined / (item + REASON_SUFFIX)).unlink(missing_ok=True)
            self._changed(size)
            count += 1
        os.fsync(self._queue_fd)
        return count

    # The ledger of what the destination already has, by de-identified SOP Instance UID.

    def forwarded(self, destination: str, uid: str) -> bool:
        """Whether ``destination`` already answered Success for the SOP Instance ``uid``."""
        return (destination, uid) in self._ledger

    def record_forwarded(self, destination: str, uids: list[str]) -> None:
        """Remember that ``destination`` has these de-identified SOP Instance UIDs."""
        if not uids:
            return
        now = int(time.time())
        with self._lock, self._append() as handle:
            for uid in uids:
                self._ledger[destination, uid] = now
                handle.write(f"{destination}\t{uid}\t{now}\n")

    @contextmanager
    def _append(self) -> Iterator[TextIO]:
        with open(self.ledger_path, "a", encoding="ascii") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())

    def _read_ledger(self, days: float, compact: bool) -> dict[tuple[str, str], int]:
        """The ledger's entries younger than ``days``; with ``compact``, the file is rewritten
        without the older ones (and lines of releases that wrote no time are dated now)."""
        try:
            lines = self.ledger_path.read_text(encoding="ascii").splitlines()
        except FileNotFoundError:
            return {}
        now = int(time.time())
        oldest = now - days * 86400
        ledger: dict[tuple[str, str], int] = {}
        rewrite = False
        for line in lines:
            fields = line.split("\t")
            if len(fields) == 2:
                fields.append(str(now))
                rewrite = True
            if len(fields) != 3 or not fields[2].isdigit():
                rewrite = True  # a line a crash cut short
                continue
            if int(fields[2]) < oldest:
                rewrite = True
                continue
            ledger[fields[0], fields[1]] = int(fields[2])
        if compact and rewrite:
            self._rewrite_ledger(ledger)
        return ledger

    def _rewrite_ledger(self, ledger: dict[tuple[str, str], int]) -> None:
        temp = self.tmp / "forwarded.txt"
        with open(temp, "w", encoding="ascii") as handle:
            handle.writelines(f"{destination}\t{uid}\t{when}\n"
                              for (destination, uid), when in ledger.items())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.ledger_path)
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove(self, path: Path) -> None:
        size = _size(path)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        self._changed(-size)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
