"""The public entry point: anonymize a dataset or a file with a configuration."""

from __future__ import annotations

import datetime as dt
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from dcmanon.config.loader import Config
from dcmanon.dicomio import prepare_file_meta, read_dicom, write_dicom_atomic
from dcmanon.engine import Engine, quiet_pydicom
from dcmanon.errors import DcmanonError, InputError
from dcmanon.mapping import mappings, original_identities
from dcmanon.validation import validate_dataset


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file: status, elements per action, error (never a value)."""

    source: str
    target: str
    status: str
    """``done`` or ``failed``."""
    actions: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    error_class: str | None = None
    flags: tuple[str, ...] = ()
    """Why the output may still need a look (e.g. burned-in text in its pixels)."""
    mappings: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)
    """(kind, original, pseudonym) pairs — only when asked: they re-identify."""


class Anonymizer:
    """Anonymize datasets and files with one configuration.

    Parameters
    ----------
    config : Config
        From :func:`dcmanon.load_config`.
    validate_input, validate_output : bool
        Check every value against its VR before (input is then not anonymized if it fails) and
        after (output is then not written) anonymization, as ``--validateInput`` /
        ``--validateOutput``.
    today : datetime.date, optional
        The date the 89-year rule is measured against.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> from dcmanon import Anonymizer, parse_config
    >>> config = parse_config('{"rules": [{"tag": "PatientName", "method": "redact"}]}')
    >>> ds = Dataset()
    >>> ds.PatientName = "Doe^Jane"
    >>> Anonymizer(config).anonymize_dataset(ds)
    {'redact': 1}
    >>> str(ds.PatientName)
    ''
    """

    def __init__(self, config: Config, *, validate_input: bool = False,
                 validate_output: bool = False, today: dt.date | None = None,
                 record_mappings: bool = False) -> None:
        self.config = config
        self.validate_input = validate_input
        self.validate_output = validate_output
        self.record_mappings = record_mappings
        self.engine = Engine(config, today)
        self._last_flags: tuple[str, ...] = ()
        self._last_mappings: tuple[tuple[str, str, str], ...] = ()

    def anonymize_dataset(self, ds: Dataset) -> dict[str, int]:
        """Anonymize ``ds`` in place and return how many elements each action handled.

        Raises
        ------
        ValidationError
            If validation is on and a value breaks its VR's rules.
        ElementError
            If a method cannot process an element; ``ds`` must then be discarded.
        """
        if self.validate_input:
            with quiet_pydicom():
                validate_dataset(ds, stage="input")
        before = original_identities(ds) if self.record_mappings else None
        result = self.engine.apply(ds)
        if self.validate_output:
            with quiet_pydicom():
                validate_dataset(ds, stage="output")
        self._last_flags = tuple(result.flags)
        self._last_mappings = mappings(before, ds, self.config) if before else ()
        return dict(sorted(result.actions.items()))

    def anonymize_file(self, source: str | os.PathLike[str],
                       target: str | os.PathLike[str]) -> FileResult:
        """Anonymize one file. The input is only read; the output appears only when complete.

        Errors are returned in the result, not raised, so that a batch goes on.
        """
        src, dst = os.fspath(source), os.fspath(target)
        try:
            ds = read_dicom(src)
            actions = self.anonymize_dataset(ds)
        except DcmanonError as exc:
            message = str(exc)
            if not isinstance(exc, InputError):
                message = f"{src}: {message}"
            return FileResult(src, dst, "failed", error=message,
                              error_class=type(exc).__name__)
        except Exception as exc:  # the per-file boundary: one bad file never stops a batch
            return _unexpected(src, dst, exc, "could not be anonymized")
        try:
            with quiet_pydicom():  # pydicom's warnings quote values
                prepare_file_meta(ds)
                write_dicom_atomic(ds, dst)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return FileResult(src, dst, "failed", error=f"{dst}: cannot write ({reason})",
                              error_class="OutputError")
        except Exception as exc:
            return _unexpected(src, dst, exc, "could not be written")
        return FileResult(src, dst, "done", actions, flags=self._last_flags,
                          mappings=self._last_mappings)


def _unexpected(src: str, dst: str, exc: Exception, what: str) -> FileResult:
    """A failure dcmanon did not foresee: the class and where it arose, never the message.

    The messages of pydicom and other libraries may quote element values.
    """
    error = f"{src}: {what} (unexpected {describe_unexpected(exc)}; please report it)"
    return FileResult(src, dst, "failed", error=error, error_class=type(exc).__name__)


def describe_unexpected(exc: BaseException) -> str:
    """``ExceptionClass at file.py:line``: where an unforeseen error arose, without its
    message (library messages may quote element values)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno}"
