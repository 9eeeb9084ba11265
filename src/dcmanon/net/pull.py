"""Pull studies from a PACS into a node: C-FIND the studies asked for (by patient ID,
accession number or Study Instance UID), then C-MOVE each to the node's AE title, so that they
take the node's pipeline (spool, de-identification, forwarding).

What the PACS answers holds identifiers: they are used, never logged or returned in messages
(which count studies and images).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcmanon.errors import DcmanonError, UsageError, describe_unexpected
from dcmanon.net._sockets import MAX_PDU, no_delay_on_open, require_pynetdicom
from dcmanon.net.forward import parse_peer
from dcmanon.net.spool import Spool, SpoolFull

_log = logging.getLogger(__name__)

KEYS = {"patient_id": "PatientID", "accession": "AccessionNumber",
        "study_uid": "StudyInstanceUID"}
"""Query keys: a CSV column or command-line option -> the DICOM attribute matched."""
_PENDING = (0xFF00, 0xFF01)


class PullError(DcmanonError):
    """The PACS could not be reached or associated with (the message says which)."""

    exit_code = 2


@dataclass
class PullResult:
    """What a pull did (counts only)."""

    queries: int = 0
    studies: int = 0
    moved: int = 0
    """Images the PACS reports as sent to the node."""
    failed: int = 0
    """Images the PACS reports it could not send."""
    problems: list[str] = field(default_factory=list)
    """One line per failed query or move (statuses, never a value)."""


def read_queries(path: str | Path) -> list[tuple[str, str]]:
    """The (key, value) queries of a CSV file whose header names columns of :data:`KEYS`.

    Raises
    ------
    UsageError
        If the file cannot be read or has no known column.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the CSV file ({type(exc).__name__})") from None
    queries = [(key, (row.get(key) or "").strip()) for row in rows for key in KEYS
               if (row.get(key) or "").strip()]
    if not queries:
        raise UsageError(f"{path}: no query: give a header with one of "
                         f"{', '.join(KEYS)} and a value per row")
    return queries


def pull(peer: str, move_to: str | None, queries: list[tuple[str, str]], *,
         calling_ae: str = "DCMANON", timeout: float = 60.0,
         spool: Spool | None = None) -> PullResult:
    """Find the studies each query matches on ``peer`` and retrieve them: C-MOVE to
    ``move_to``, or C-GET into ``spool``.

    Parameters
    ----------
    peer : str
        The PACS, ``AE@HOST:PORT``.
    move_to : str, optional
        The AE title the PACS sends the images to (a running ``dcmanon serve``, which the
        PACS must know as a DICOM modality).
    queries : list of (key, value)
        ``key`` one of :data:`KEYS`.
    spool : Spool, optional
        Instead of ``move_to``: retrieve by C-GET into this node spool's queue (durable
        before each image is acknowledged to the PACS); the node forwards them.

    Raises
    ------
    PullError
        If no association can be made with the PACS.
    """
    require_pynetdicom()
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, build_role, evt
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelGet,
        StudyRootQueryRetrieveInformationModelMove,
    )

    if (move_to is None) == (spool is None):
        raise UsageError("retrieve by C-MOVE to a node (move_to) or by C-GET (spool)")
    called, host, port = parse_peer(peer)
    ae = AE(ae_title=calling_ae)
    ae.maximum_pdu_size = MAX_PDU
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = timeout
    ae.dimse_timeout = None  # a retrieve lasts as long as the study takes to send
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    handlers: list[Any] = [(evt.EVT_CONN_OPEN, no_delay_on_open)]
    roles: list[Any] = []
    if spool is None:
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    else:
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        # C-GET sends the images back on this association: pynetdicom's 120 usual storage
        # classes (an association holds 128 contexts at most), this side as their SCP.
        for context in StoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_requested_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
                roles.append(build_role(context.abstract_syntax, scp_role=True))
        handlers.append((evt.EVT_C_STORE, _spooler(spool)))
    try:
        assoc = ae.associate(host, port, ae_title=called, ext_neg=roles or None,
                             evt_handlers=handlers)
    except Exception as exc:  # noqa: BLE001  (reported as the pull's own error)
        raise PullError(f"{peer}: cannot connect ({describe_unexpected(exc)})") from None
    if not assoc.is_established:
        raise PullError(f"{peer}: no association (connection refused, rejected or aborted)")
    result = PullResult()
    try:
        studies: list[str] = []
        for number, (key, value) in enumerate(queries, 1):
            result.queries += 1
            found = _find(assoc, StudyRootQueryRetrieveInformationModelFind, key, value)
            if found is None:
                result.problems.append(f"query {number} ({key}): the PACS refused it")
                continue
            studies.extend(uid for uid in found if uid not in studies)
        result.studies = len(studies)
        for number, uid in enumerate(studies, 1):
            if move_to is not None:
                _retrieve(assoc.send_c_move,
                          (move_to, StudyRootQueryRetrieveInformationModelMove), uid, number,
                          result)
            else:
                _retrieve(assoc.send_c_get, (StudyRootQueryRetrieveInformationModelGet,),
                          uid, number, result)
    finally:
        if assoc.is_established:
            assoc.release()
    return result


def _find(assoc: Any, model: Any, key: str, value: str) -> list[str] | None:
    from pydicom import Dataset

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    setattr(query, KEYS[key], value)
    uids = []
    for status, identifier in assoc.send_c_find(query, model):
        code = getattr(status, "Status", None)
        if code is None or (code not in _PENDING and code != 0):
            return None
        if code in _PENDING and identifier is not None:
            uid = str(getattr(identifier, "StudyInstanceUID", "") or "")
            if uid:
                uids.append(uid)
    return uids


def _spooler(spool: Spool) -> Any:
    """A C-STORE handler that spools what the PACS sends (as the node's listener does)."""
    def store(event: Any) -> int:
        try:
            spool.store(event.encoded_dataset(include_meta=True))
        except (SpoolFull, OSError) as exc:
            _log.error("an image was refused: %s", describe_unexpected(exc)
                       if not isinstance(exc, SpoolFull) else exc)
            return 0xA700
        return 0x0000

    return store


def _retrieve(send: Any, args: tuple[Any, ...], uid: str, number: int,
              result: PullResult) -> None:
    from pydicom import Dataset

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = uid
    final = None
    for status, _ in send(query, *args):
        if status:
            final = status
    code = getattr(final, "Status", None)
    completed = int(getattr(final, "NumberOfCompletedSuboperations", 0) or 0)
    failed = int(getattr(final, "NumberOfFailedSuboperations", 0) or 0)
    result.moved += completed
    result.failed += failed
    if code is None:
        result.problems.append(f"study {number}: no answer to the retrieve")
    elif code not in (0x0000, 0xB000):
        result.problems.append(f"study {number}: the retrieve ended with status 0x{code:04X}")
