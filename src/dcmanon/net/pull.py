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


def pull(peer: str, move_to: str, queries: list[tuple[str, str]], *,
         calling_ae: str = "DCMANON", timeout: float = 60.0) -> PullResult:
    """Find the studies each query matches on ``peer`` and move them to ``move_to``.

    Parameters
    ----------
    peer : str
        The PACS, ``AE@HOST:PORT``.
    move_to : str
        The AE title the PACS sends the images to (a running ``dcmanon serve``, which the
        PACS must know as a DICOM modality).
    queries : list of (key, value)
        ``key`` one of :data:`KEYS`.

    Raises
    ------
    PullError
        If no association can be made with the PACS.
    """
    require_pynetdicom()
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove,
    )

    called, host, port = parse_peer(peer)
    ae = AE(ae_title=calling_ae)
    ae.maximum_pdu_size = MAX_PDU
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = timeout
    ae.dimse_timeout = None  # a move lasts as long as the study takes to send
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    try:
        assoc = ae.associate(host, port, ae_title=called,
                             evt_handlers=[(evt.EVT_CONN_OPEN, no_delay_on_open)])
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
            _move(assoc, StudyRootQueryRetrieveInformationModelMove, uid, move_to, number,
                  result)
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


def _move(assoc: Any, model: Any, uid: str, move_to: str, number: int,
          result: PullResult) -> None:
    from pydicom import Dataset

    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = uid
    final = None
    for status, _ in assoc.send_c_move(query, move_to, model):
        if status:
            final = status
    code = getattr(final, "Status", None)
    completed = int(getattr(final, "NumberOfCompletedSuboperations", 0) or 0)
    failed = int(getattr(final, "NumberOfFailedSuboperations", 0) or 0)
    result.moved += completed
    result.failed += failed
    if code is None:
        result.problems.append(f"study {number}: no answer to the move")
    elif code not in (0x0000, 0xB000):
        result.problems.append(f"study {number}: the move ended with status 0x{code:04X}")
