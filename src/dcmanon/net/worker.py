"""The node's worker: takes spooled images oldest first, de-identifies them, forwards them in
batches, retries with backoff and quarantines what can never go.

An image leaves the spool only when the destination answered Success (or already has its
de-identified SOP Instance UID, from an earlier send): whatever stops the node, the worker
resumes from the spool.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydicom.filereader import read_file_meta_info

from dcmanon.errors import describe_unexpected
from dcmanon.net.forward import MAX_CONTEXTS, Outcome, Prepared, Result

if TYPE_CHECKING:
    from dcmanon.anonymizer import Anonymizer
    from dcmanon.net.forward import Destination
    from dcmanon.net.spool import Spool


class Flag(Protocol):
    """What the worker needs of an event: :class:`threading.Event`, or
    :class:`multiprocessing.Event` when it runs in a process of its own."""

    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class Recorder(Protocol):
    """Where the worker reports events (:class:`~dcmanon.net.audit.Audit` or a proxy)."""

    def event(self, kind: str, count: str | None = None, add: int = 1,
              **fields: Any) -> None: ...

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How the worker waits before sending again.

    The first retry comes after ``first`` seconds, each next one waits twice as long, up to
    ``longest``. An image the destination refused with a transient status ``attempts`` times
    goes to quarantine; a destination that cannot be reached is retried for as long as it
    takes.
    """

    first: float = 1.0
    longest: float = 60.0
    attempts: int = 8

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row (1 or more)."""
        return float(min(self.longest, self.first * 2 ** max(0, failures - 1)))


class Worker:
    """De-identify and forward what the spool holds, in a thread of its own.

    Parameters
    ----------
    spool : Spool
        Where received images wait.
    anonymizer : Anonymizer
        The per-file pipeline (:meth:`~dcmanon.anonymizer.Anonymizer.anonymize_file`).
    destination : Destination
        Where de-identified images go.
    audit : Audit
        Counters and audit log.
    batch_size : int
        Images sent over one association at most.
    retry : RetryPolicy
        Backoff and attempts.
    wake, stop : Flag, optional
        Set when something arrived, when the worker must stop (default: thread events).
    mapping_dir : path-like, optional
        Append (original, pseudonym) rows here (the anonymizer must record mappings).
    """

    def __init__(self, spool: Spool, anonymizer: Anonymizer, destination: Destination,
                 audit: Recorder, *, batch_size: int = 64,
                 retry: RetryPolicy | None = None, wake: Flag | None = None,
                 stop: Flag | None = None, mapping_dir: str | None = None) -> None:
        from dcmanon.net.mappings import MappingFiles

        self.spool = spool
        self.anonymizer = anonymizer
        self.destination = destination
        self.audit = audit
        self.batch_size = max(1, min(batch_size, MAX_CONTEXTS))
        self.retry = retry or RetryPolicy()
        self._wake: Flag = wake or threading.Event()
        self._stop: Flag = stop or threading.Event()
        self._thread: threading.Thread | None = None
        self._attempts: dict[str, int] = {}
        self._studies: dict[str, tuple[str, str]] = {}
        self._mappings = MappingFiles(mapping_dir) if mapping_dir is not None else None
        self._failures = 0

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._run, name="dcmanon-forward", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Something arrived in the spool."""
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the batch in progress (what is left stays in the spool)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Work until stopped (in the calling thread)."""
        self._run()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                busy = self.run_once()
            except Exception as exc:  # noqa: BLE001  (the worker must survive; items stay)
                _log.error("forwarding stopped on an unexpected error (%s); retrying",
                           describe_unexpected(exc))
                busy = False
                self._failures += 1
                self._stop.wait(self.retry.delay(self._failures))
            if not busy:
                self._wake.wait(1.0)

    def run_once(self) -> bool:
        """Process one batch of the queue; False when the queue was empty."""
        pending = self.spool.pending()
        if not pending:
            return False
        batch: list[Prepared] = []
        for item in pending[: self.batch_size]:
            if self._stop.is_set():
                break
            prepared = self._prepare(item)
            if prepared is not None:
                batch.append(prepared)
        batch = self._drop_duplicates(batch)
        if batch:
            self._deliver(batch)
        return True

    def _prepare(self, item: str) -> Prepared | None:
        """De-identify ``item`` into the spool's work folder (None: it went to quarantine)."""
        from dcmanon.anonymizer import FileStatus

        target = self.spool.work_path(item)
        names: dict[str, str] = {}

        def name(ds: Any) -> str:
            for key, keyword in (("study", "StudyInstanceUID"), ("series", "SeriesInstanceUID")):
                names[key] = str(getattr(ds, keyword, "") or "")
            return str(target)

        if target.exists():  # made for an earlier attempt
            return self._describe(item, names)
        result = self.anonymizer.anonymize_file(self.spool.path(item), name, sync=False)
        if result.status != FileStatus.DONE:
            reason = f"de-identification failed: {result.error or result.status}"
            self._quarantine(item, reason, "deidentify")
            return None
        self.spool.add_work(item)
        if self._mappings is not None and result.mappings:
            self._mappings.add(result.mappings)
        prepared = self._describe(item, names)
        if prepared is not None:
            self.audit.event("deidentified", "deidentified", item=item,
                             sop_instance_uid=prepared.sop_instance,
                             study_instance_uid=prepared.study or None)
            self._studies[item] = (prepared.study, prepared.series)
        return prepared

    def _describe(self, item: str, names: dict[str, str]) -> Prepared | None:
        path = self.spool.work_path(item)
        study, series = names.get("study") or "", names.get("series") or ""
        if not study and item in self._studies:
            study, series = self._studies[item]
        try:
            meta = read_file_meta_info(path)
            prepared = Prepared(item, path, str(meta.MediaStorageSOPClassUID),
                                str(meta.MediaStorageSOPInstanceUID),
                                str(meta.TransferSyntaxUID), study, series)
        except Exception as exc:  # noqa: BLE001  (an output we cannot describe is not sent)
            self._quarantine(item, "the de-identified file has no usable file meta "
                                   f"({describe_unexpected(exc)})", "deidentify")
            return None
        return prepared

    def _drop_duplicates(self, batch: list[Prepared]) -> list[Prepared]:
        """Images the destination already has, or that come twice in the batch, leave the
        spool without being sent: a re-sent image makes no second copy downstream."""
        kept: dict[str, Prepared] = {}
        for prepared in batch:
            earlier = kept.pop(prepared.sop_instance, None)
            if earlier is not None:
                self._duplicate(earlier)
            if self.spool.forwarded(self.destination.name, prepared.sop_instance):
                self._duplicate(prepared)
            else:
                kept[prepared.sop_instance] = prepared
        return list(kept.values())

    def _duplicate(self, prepared: Prepared) -> None:
        self.spool.done(prepared.item)
        self._forget(prepared.item)
        self.audit.event("duplicate", "duplicates", item=prepared.item,
                         sop_instance_uid=prepared.sop_instance,
                         destination=self.destination.name)

    def _deliver(self, batch: list[Prepared]) -> None:
        results = self.destination.send(batch)
        sent = [r.prepared for r in results if r.outcome == Outcome.SENT]
        self.spool.record_forwarded(self.destination.name, [p.sop_instance for p in sent])
        for prepared in sent:
            self.spool.done(prepared.item)
            self._forget(prepared.item)
            self.audit.event("forwarded", "forwarded", item=prepared.item,
                             sop_instance_uid=prepared.sop_instance,
                             destination=self.destination.name)
        retry = [r for r in results if r.outcome == Outcome.RETRY]
        for result in results:
            if result.outcome == Outcome.FAILED:
                self._quarantine(result.prepared.item, result.reason, "forward")
        for result in retry:
            self._retry(result)
        if retry:
            self._failures += 1
            delay = self.retry.delay(self._failures)
            _log.warning("%s; %d image(s) sent again in %.0f s", retry[0].reason, len(retry),
                         delay)
            self._stop.wait(delay)
        else:
            self._failures = 0

    def _retry(self, result: Result) -> None:
        item = result.prepared.item
        self.audit.event("retry", "retries", item=item, reason=result.reason)
        if not result.counted:
            return
        self._attempts[item] = self._attempts.get(item, 0) + 1
        if self._attempts[item] >= self.retry.attempts:
            self._quarantine(item, f"{result.reason} ({self._attempts[item]} attempts)",
                             "forward")

    def _quarantine(self, item: str, reason: str, stage: str) -> None:
        self.spool.quarantine(item, reason)
        self._forget(item)
        self.audit.event("failed", "failed", item=item, stage=stage, reason=reason)
        _log.error("%s: quarantined: %s", item, reason)

    def _forget(self, item: str) -> None:
        self._attempts.pop(item, None)
        self._studies.pop(item, None)
