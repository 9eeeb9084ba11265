"""Typed errors. Each carries the exit code the command line maps it to.

Messages name files, tags, keywords and rules; they never carry an element's value or a key.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path


class DcmanonError(Exception):
    """Base class of every error dcmanon raises on purpose."""

    exit_code: int = 1


class UsageError(DcmanonError):
    """The command line or the library call is wrong (nothing was written)."""

    exit_code = 2


class MissingExtraError(UsageError):
    """An optional part of dcmanon is needed but not installed; the message names the extra."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found in a configuration, with its JSON location."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(DcmanonError):
    """The configuration is wrong; every problem found in one pass is listed."""

    exit_code = 2

    def __init__(self, problems: list[ConfigProblem], source: str = "configuration") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: {count} {noun}\n{lines}")


class InputError(DcmanonError):
    """An input file cannot be read as DICOM (missing, unreadable, not DICOM, truncated)."""


class PixelError(DcmanonError):
    """Pixel data cannot be decoded, blanked or encoded again (the element and why are named)."""


class OutputError(DcmanonError):
    """An output could not be written (its folder, the disk, the remote file system)."""


class OutputCollision(OutputError):
    """Two inputs would be written to one output; the second is not written."""


class LayoutError(DcmanonError):
    """The anonymized dataset cannot name its output (``--layout uid``)."""


class WorkerError(DcmanonError):
    """The worker processing a file failed (it died, or its connection was lost)."""


class ElementError(DcmanonError):
    """Processing one element failed; the whole file fails (fail closed).

    Parameters
    ----------
    element : str
        Where the element is: tag and keyword, with the sequence path for nested elements,
        e.g. ``(0008,1032) ProcedureCodeSequence[0] > (0008,0104) CodeMeaning``.
    reason : str
        What is wrong, without the element's value.
    vr : str
        The element's value representation.
    rule : str
        The rule that was applied (``rules[3] {"tag": ..., "method": ...}``), if any.
    """

    def __init__(self, element: str, reason: str, vr: str = "", rule: str = "") -> None:
        self.element = element
        self.reason = reason
        self.vr = vr
        self.rule = rule
        where = f"{element} [{vr}]" if vr else element
        via = f" (rule {rule})" if rule else ""
        super().__init__(f"{where}: {reason}{via}")


class UnsupportedVRError(ElementError):
    """A method was asked to process a VR it does not support."""


class ValueFormatError(ElementError):
    """An element's value does not have the format its VR (or the method) requires."""


class ValidationError(ElementError):
    """``--validateInput`` / ``--validateOutput`` found a value that breaks its VR's rules."""

    def __init__(self, element: str, reason: str, vr: str = "", rule: str = "",
                 stage: str = "output") -> None:
        self.stage = stage
        super().__init__(element, reason, vr, rule)


class LookupMissing(DcmanonError):
    """The subject table lists no replacement for the file's patient (``--lookup``): the file
    is not written (``--lookup-missing pseudonym`` gives such patients the keyed pseudonym)."""


class DecryptError(DcmanonError):
    """A value could not be decrypted (wrong key or not produced by ``encrypt``)."""


class MappingStoreError(DcmanonError):
    """The mapping database (``--mapping-db``) cannot be opened, read or written."""


class ReidentifyError(DcmanonError):
    """A file's encrypted original values cannot be restored (no Encrypted Attributes
    Sequence, a key that is not a recipient's, content that is not what dcmanon wrote)."""


def describe_os_error(exc: BaseException) -> str:
    """What went wrong with a file, in words (``Permission denied``), never its content."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def describe_unexpected(exc: BaseException) -> str:
    """``ExceptionClass at file.py:line``: where an unforeseen error arose, without its
    message (library messages may quote element values)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno}"
