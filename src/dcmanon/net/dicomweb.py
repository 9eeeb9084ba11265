"""Forwarding by DICOMweb STOW-RS (PS3.18 10.5): the de-identified files of a batch POSTed as
one ``multipart/related`` request (several when they are large), the server's answer read
per instance."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from dcmanon.errors import UsageError, describe_os_error
from dcmanon.net.forward import Outcome, Prepared, Result

MAX_REQUEST = 32 << 20
"""Bytes per request at most (a batch of large images is sent in several)."""
_REFERENCED = "00081199"  # ReferencedSOPSequence: stored
_FAILED = "00081198"  # FailedSOPSequence
_SOP_INSTANCE = "00081155"  # ReferencedSOPInstanceUID
_REASON = "00081197"  # FailureReason


class DicomWebDestination:
    """POST de-identified files to ``<url>/studies`` (STOW-RS).

    Parameters
    ----------
    url : str
        The DICOMweb service root (``https://host/dicom-web``); user and password in the URL,
        if any, are sent as HTTP Basic authentication (never shown).
    timeout : float
        Seconds to wait for each request.
    """

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--forward-dicomweb: {parts.scheme or 'no'} scheme: give an "
                             "http:// or https:// URL of the DICOMweb service")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "",
                                            "")) + "/studies"
        self.auth = None
        if parts.username:
            pair = f"{urllib.parse.unquote(parts.username)}:" \
                   f"{urllib.parse.unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(pair.encode()).decode()
        self.timeout = timeout
        self.name = f"dicomweb:{self.url}"

    def send(self, batch: list[Prepared]) -> list[Result]:
        """POST ``batch`` in as few requests as :data:`MAX_REQUEST` allows."""
        results: list[Result] = []
        chunk: list[Prepared] = []
        size = 0
        for prepared in batch:
            length = prepared.path.stat().st_size
            if chunk and size + length > MAX_REQUEST:
                results += self._post(chunk)
                chunk, size = [], 0
            chunk.append(prepared)
            size += length
        if chunk:
            results += self._post(chunk)
        return results

    def _post(self, batch: list[Prepared]) -> list[Result]:
        boundary = "dcmanon-" + secrets.token_hex(12)
        parts = []
        for prepared in batch:
            parts += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
                      prepared.path.read_bytes(), b"\r\n"]
        parts.append(f"--{boundary}--\r\n".encode())
        headers = {"Content-Type": f'multipart/related; type="application/dicom"; '
                                   f"boundary={boundary}",
                   "Accept": "application/dicom+json"}
        if self.auth:
            headers["Authorization"] = self.auth
        request = urllib.request.Request(self.url, data=b"".join(parts), headers=headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return self._read(batch, answer.status, answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (202, 409):  # some or all failed: the body says which
                return self._read(batch, exc.code, exc.read())
            return _all(batch, f"{self.name} answered HTTP {exc.code}")
        except OSError as exc:  # refused, reset, timed out, TLS
            return _all(batch, f"{self.name} cannot be reached ({describe_os_error(exc)})")

    def _read(self, batch: list[Prepared], status: int, body: bytes) -> list[Result]:
        if status == 200:
            return [Result(p, Outcome.SENT) for p in batch]
        try:
            answer: Any = json.loads(body or b"{}")
        except ValueError:
            answer = {}
        stored = set(_uids(answer, _REFERENCED))
        failed = dict(_failures(answer))
        results = []
        for prepared in batch:
            uid = prepared.sop_instance
            if uid in stored:
                results.append(Result(prepared, Outcome.SENT))
            elif uid in failed:
                code = failed[uid]
                reason = f"{self.name} refused it (failure reason 0x{code:04X})"
                # 0xA7xx: out of resources, may pass; the rest is the image's own problem.
                outcome = Outcome.RETRY if 0xA700 <= code <= 0xA7FF else Outcome.FAILED
                results.append(Result(prepared, outcome, reason))
            else:
                results.append(Result(prepared, Outcome.RETRY,
                                      f"{self.name} answered HTTP {status} without it"))
        return results


def _all(batch: list[Prepared], reason: str) -> list[Result]:
    return [Result(p, Outcome.RETRY, reason, counted=False) for p in batch]


def _items(answer: Any, tag: str) -> list[dict[str, Any]]:
    if isinstance(answer, list):
        answer = answer[0] if answer else {}
    element = answer.get(tag, {}) if isinstance(answer, dict) else {}
    values = element.get("Value", []) if isinstance(element, dict) else []
    return [v for v in values if isinstance(v, dict)]


def _first(item: dict[str, Any], tag: str) -> Any:
    values = item.get(tag, {}).get("Value", [])
    return values[0] if values else None


def _uids(answer: Any, tag: str) -> list[str]:
    return [str(_first(item, _SOP_INSTANCE)) for item in _items(answer, tag)]


def _failures(answer: Any) -> list[tuple[str, int]]:
    return [(str(_first(item, _SOP_INSTANCE)), int(_first(item, _REASON) or 0x0110))
            for item in _items(answer, _FAILED)]
