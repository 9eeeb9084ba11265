"""Destinations of the node: a DICOM peer (C-STORE, one association per batch) or a folder.

A destination sends a batch of de-identified files and says, for each, whether it was taken
(Success or a warning), may be sent again later (refused connection, rejected or aborted
association, timeout, Out of Resources...) or can never be taken (a permanent status, no
presentation context for it): the worker then retries or quarantines.
"""

from __future__ import annotations

import logging
import os
import shutil
import ssl
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from dcmanon.errors import UsageError, describe_os_error, describe_unexpected
from dcmanon.io.files import write_atomic
from dcmanon.net._sockets import MAX_PDU, no_delay_on_open

_log = logging.getLogger(__name__)

MAX_CONTEXTS = 128
"""Presentation contexts one association may propose (PS3.8 9.3.2.2: odd IDs 1-255)."""
_WARNINGS = {0x0001, 0xB000, 0xB006, 0xB007}
"""C-STORE warnings: the destination kept the image (coerced, elements discarded...)."""


class Outcome(str, Enum):
    """What became of one image sent."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Prepared:
    """A de-identified file ready to be forwarded."""

    item: str
    """The spool item it was made from."""
    path: Path
    sop_class: str
    sop_instance: str
    """The de-identified SOP Instance UID (the ledger's key)."""
    transfer_syntax: str
    study: str = ""
    series: str = ""


@dataclass(frozen=True)
class Result:
    """One image's outcome; ``reason`` (never a value) when it was not sent."""

    prepared: Prepared
    outcome: Outcome
    reason: str = ""
    counted: bool = True
    """Whether a retry counts towards the image's attempts: not when the destination could
    not be reached at all (that is retried for as long as it takes)."""


class Destination(Protocol):
    """Where de-identified images go."""

    name: str
    """Names the destination in the ledger and the audit log (no secret, no value)."""

    def send(self, batch: list[Prepared]) -> list[Result]:
        """Send ``batch``; one result per image, in order."""


class FolderDestination:
    """Write each image to ``<folder>/<Study UID>/<Series UID>/<SOP Instance UID>.dcm``,
    flushed to disk: a re-sent image replaces its own copy, never adds a second."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.name = f"folder:{self.folder}"

    def send(self, batch: list[Prepared]) -> list[Result]:
        """Copy each file of ``batch`` into the folder."""
        results = []
        for prepared in batch:
            parts = [p for p in (prepared.study, prepared.series) if p]
            target = self.folder.joinpath(*parts, prepared.sop_instance + ".dcm")
            try:
                with open(prepared.path, "rb") as source:
                    def copy(handle: BinaryIO, source: BinaryIO = source) -> None:
                        shutil.copyfileobj(source, handle, 1 << 20)

                    write_atomic(target, copy, sync=True)
            except OSError as exc:
                results.append(Result(prepared, Outcome.RETRY,
                                      f"{target}: cannot write ({describe_os_error(exc)})"))
                continue
            results.append(Result(prepared, Outcome.SENT))
        return results


def parse_peer(text: str) -> tuple[str, str, int]:
    """``AE@HOST:PORT`` as (AE title, host, port).

    Raises
    ------
    UsageError
        If ``text`` is not of that form.

    Examples
    --------
    >>> parse_peer("PACS@10.0.0.5:104")
    ('PACS', '10.0.0.5', 104)
    """
    ae, at, address = text.partition("@")
    host, colon, port = address.rpartition(":")
    if not at or not colon or not ae or not host or not port.isdigit() or len(ae) > 16 \
            or not 0 < int(port) < 65536:
        raise UsageError(f"{text!r} is not a DICOM peer: give AE@HOST:PORT, e.g. "
                         "PACS@10.0.0.5:104 (AE title of at most 16 characters)")
    return ae, host.strip("[]"), int(port)


@dataclass(frozen=True)
class TlsClient:
    """TLS towards the destination: the CA that signed its certificate (else the system's),
    and this node's client certificate and key, if the destination asks for one."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def context(self) -> ssl.SSLContext:
        """A client context (made where it is used: contexts do not pickle)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(self.ca) if self.ca else None)
        if self.cert is not None:
            context.load_cert_chain(self.cert, self.key)
        return context


class StoreDestination:
    """Forward by C-STORE to a DICOM peer, one association per batch.

    The de-identified files are sent as they are (pynetdicom reads them in chunks, never
    decoding them), each in its own transfer syntax.

    Parameters
    ----------
    peer : str
        ``AE@HOST:PORT``.
    calling_ae : str
        The node's AE title towards the peer.
    timeout : float
        Seconds to wait for the connection, the association and each response.
    tls : TlsClient, optional
        Associate over TLS (the destination's certificate is verified, host name included).
    """

    def __init__(self, peer: str, calling_ae: str = "DCMANON", timeout: float = 30.0,
                 tls: TlsClient | None = None) -> None:
        self.called_ae, self.host, self.port = parse_peer(peer)
        self.calling_ae = calling_ae
        self.timeout = timeout
        self.tls = tls
        scheme = "dicom-tls" if tls else "dicom"
        self.name = f"{scheme}:{self.called_ae}@{self.host}:{self.port}"

    def send(self, batch: list[Prepared]) -> list[Result]:
        """Send ``batch`` over one association (at most :data:`MAX_CONTEXTS` distinct
        SOP class and transfer syntax pairs)."""
        from pynetdicom import AE, _config, evt

        # Send files as they are on disk: no decode and re-encode of what was de-identified.
        _config.STORE_SEND_CHUNKED_DATASET = True
        pairs = sorted({(p.sop_class, p.transfer_syntax) for p in batch})
        if len(pairs) > MAX_CONTEXTS:
            raise ValueError(f"a batch may hold {MAX_CONTEXTS} kinds of image at most")
        ae = AE(ae_title=self.calling_ae)
        ae.maximum_pdu_size = MAX_PDU
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.connection_timeout = self.timeout
        for sop_class, syntax in pairs:
            ae.add_requested_context(sop_class, [syntax])
        try:
            tls_args = (self.tls.context(), self.host) if self.tls else None
            assoc = ae.associate(self.host, self.port, ae_title=self.called_ae,
                                 evt_handlers=[(evt.EVT_CONN_OPEN, no_delay_on_open)],
                                 tls_args=tls_args)
        except Exception as exc:  # noqa: BLE001  (any failure to connect is retried)
            return _all(batch, f"{self.name}: cannot connect ({describe_unexpected(exc)})")
        if not assoc.is_established:
            why = ("rejected the association" if assoc.is_rejected else
                   "did not accept an association (connection refused, aborted or timed out)")
            return _all(batch, f"{self.name}: {why}")
        try:
            return self._send_all(assoc, batch)
        finally:
            if assoc.is_established:
                assoc.release()

    def _send_all(self, assoc: Any, batch: list[Prepared]) -> list[Result]:
        accepted = {(c.abstract_syntax, c.transfer_syntax[0]) for c in assoc.accepted_contexts}
        results: list[Result] = []
        for index, prepared in enumerate(batch):
            if (prepared.sop_class, prepared.transfer_syntax) not in accepted:
                results.append(Result(prepared, Outcome.FAILED, (
                    f"{self.name} accepts no presentation context for SOP class "
                    f"{prepared.sop_class} in transfer syntax {prepared.transfer_syntax}")))
                continue
            try:
                status = assoc.send_c_store(prepared.path)
            except Exception as exc:  # noqa: BLE001  (the association is lost: retry the rest)
                _log.warning("%s: sending failed (%s)", self.name, describe_unexpected(exc))
                status = None
            code = getattr(status, "Status", None) if status else None
            if code is None:  # no response: aborted, timed out or connection lost
                return results + _all(batch[index:], f"{self.name}: no response (association "
                                                     "lost or timed out)")
            results.append(_classify(self.name, prepared, int(code)))
        return results


def _all(batch: list[Prepared], reason: str) -> list[Result]:
    return [Result(p, Outcome.RETRY, reason, counted=False) for p in batch]


def _classify(name: str, prepared: Prepared, code: int) -> Result:
    """A C-STORE status as an outcome (PS3.4 Table B.2-1, PS3.7 Annex C)."""
    if code == 0 or code in _WARNINGS:
        return Result(prepared, Outcome.SENT)
    reason = f"{name} answered status 0x{code:04X}"
    # Out of Resources and Processing Failure may pass; the rest is the image's own problem
    # (SOP class not supported, data set does not match, cannot understand).
    if 0xA700 <= code <= 0xA7FF or code in (0x0110, 0x0213, 0x0210):
        return Result(prepared, Outcome.RETRY, reason)
    return Result(prepared, Outcome.FAILED, reason)
