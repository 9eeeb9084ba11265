"""The public entry point: anonymize a dataset or a file with a configuration."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset

from dcmanon.config.loader import Config
from dcmanon.dicom.constants import MAX_NESTING, PIXEL_DATA
from dcmanon.dicom.nesting import check_nesting_limit, nesting_problem, too_deep
from dcmanon.dicom.validation import validate_dataset
from dcmanon.dicom.walk import quiet_pydicom
from dcmanon.errors import (
    DcmanonError,
    InputError,
    OutputError,
    describe_os_error,
    describe_unexpected,
)
from dcmanon.header.engine import Engine
from dcmanon.header.mapping import mappings, original_identities
from dcmanon.io.fastpath import FastOutput, FastPath
from dcmanon.io.files import prepare_file_meta, read_dicom, write_atomic, write_dicom_atomic
from dcmanon.io.inflate import MAX_INFLATED_SIZE, check_size_limit
from dcmanon.io.rawdataset import NotPlain, RawFile
from dcmanon.io.splice import write_pieces
from dcmanon.io.streaming import (
    drop_signatures,
    has_deferred,
    hold_bulk,
    needs_full_read,
    release_bulk,
)
from dcmanon.pixels.clean import PixelOutcome, PixelPlan
from dcmanon.pixels.rawheader import needs_pixel_work
from dcmanon.pixels.setup import build_cleaner
from dcmanon.trials.encrypted import Recipients, capture, seal

_log = logging.getLogger(__name__)

Target = str | os.PathLike[str] | Callable[[Dataset], str | os.PathLike[str]]
"""Where an output goes: a path, or a function of the anonymized dataset that names it."""


class FileStatus(str, Enum):
    """What happened to one input file."""

    DONE = "done"
    """Anonymized and written."""
    FAILED = "failed"
    """Not written; the result says why."""
    EXISTS = "exists"
    """The output was already there and was kept."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class DatasetOutcome:
    """What anonymizing one dataset did, beside the dataset changed in place."""

    actions: dict[str, int]
    """Elements handled, by action."""
    flags: tuple[str, ...] = ()
    """Why the output may still need a look (e.g. burned-in text in its pixels)."""
    mappings: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)
    """(kind, original, pseudonym) pairs — only when asked: they re-identify."""
    pixels: PixelOutcome | None = None
    """What the pixel stage did (None: the image was not looked at)."""


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file: status, elements per action, error (never a value)."""

    source: str
    target: str
    status: FileStatus
    actions: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    error_class: str | None = None
    flags: tuple[str, ...] = ()
    """Why the output may still need a look (e.g. burned-in text in its pixels)."""
    mappings: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)
    """(kind, original, pseudonym) pairs — only when asked: they re-identify."""
    size: int = 0
    """Bytes read from the input (0 when it was not read)."""
    pixels: dict[str, Any] | None = None
    """What the pixel stage did: boxes blanked by rules and by OCR, frames touched, the
    transfer syntax written (:meth:`dcmanon.pixels.clean.PixelOutcome.record`); never text."""


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
    record_mappings : bool
        Collect (original, pseudonym) pairs in each result (for ``--mapping-dir``).
    fast_path : bool
        Anonymize plain files at the byte level (:mod:`dcmanon.io.fastpath`); the output is the
        same either way. Off, every file takes pydicom's path (to compare the two).
    max_inflated_size : int
        A deflated file whose dataset inflates to more bytes than this fails (default 256 MiB,
        :data:`dcmanon.io.inflate.MAX_INFLATED_SIZE`): a deflate bomb is refused in bounded
        memory.
    max_nesting : int
        A file whose sequences nest more levels deep than this fails (default 64, at most
        128; :mod:`dcmanon.dicom.nesting`).
    encrypt_to : Recipients, optional
        Keep the original of every top-level element the run changes or removes, encrypted
        to these certificates, in the output's Encrypted Attributes Sequence
        (:mod:`dcmanon.trials.encrypted`). Such files take pydicom's path.
    pixels : str, optional
        Burned-in text: ``off``, ``rules``, ``flagged`` or ``all`` (``--pixels``); default the
        configuration's ``pixels.mode`` (``flagged``). See :mod:`dcmanon.pixels.clean`.

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
                 record_mappings: bool = False, fast_path: bool = True,
                 max_inflated_size: int = MAX_INFLATED_SIZE,
                 max_nesting: int = MAX_NESTING,
                 encrypt_to: Recipients | None = None, pixels: str | None = None) -> None:
        self.config = config
        self.encrypt_to = encrypt_to
        self.pixels = pixels
        self._pixels = build_cleaner(config.pixels, pixels)
        self.max_inflated_size = check_size_limit(max_inflated_size)
        self.max_nesting = check_nesting_limit(max_nesting)
        self.validate_input = validate_input
        self.validate_output = validate_output
        self.record_mappings = record_mappings
        self.engine = Engine(config, today, max_nesting=max_nesting)
        self.today = self.engine.today
        # Validation needs the whole dataset, and the encrypted originals need the elements
        # before and after: those runs take pydicom's path.
        self.fast_path = fast_path
        self._fast = FastPath(self.engine, record_mappings, max_nesting) if fast_path and not (
            validate_input or validate_output or encrypt_to) else None

    def same_as(self, other: Anonymizer) -> bool:
        """Whether ``other`` anonymizes exactly as this one does (same configuration, keys,
        date and switches): either may then stand for the other."""
        return self.__getstate__() == other.__getstate__()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle what rebuilds the anonymizer (for worker processes), not its caches."""
        return {"config": self.config, "validate_input": self.validate_input,
                "validate_output": self.validate_output, "today": self.today,
                "record_mappings": self.record_mappings, "fast_path": self.fast_path,
                "max_inflated_size": self.max_inflated_size, "max_nesting": self.max_nesting,
                "encrypt_to": self.encrypt_to, "pixels": self.pixels}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild from :meth:`__getstate__`: the same configuration, keys and date."""
        self.__dict__.update(Anonymizer.from_state(state).__dict__)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Anonymizer:
        """A new anonymizer from :meth:`__getstate__`'s description."""
        options = dict(state)
        return cls(options.pop("config"), **options)

    def copy(self) -> Anonymizer:
        """The same anonymizer (configuration, keys, date) with caches of its own: one per
        thread, since the caches are not shared safely between threads."""
        return Anonymizer.from_state(self.__getstate__())

    def anonymize_dataset(self, ds: Dataset) -> dict[str, int]:
        """Anonymize ``ds`` in place and return how many elements each action handled.

        Raises
        ------
        ValidationError
            If validation is on and a value breaks its VR's rules.
        ElementError
            If a method cannot process an element; ``ds`` must then be discarded.
        """
        return self.anonymize_dataset_outcome(ds).actions

    def anonymize_dataset_outcome(self, ds: Dataset) -> DatasetOutcome:
        """As :meth:`anonymize_dataset` (which raises the same errors, and
        :class:`~dcmanon.errors.InputError` for sequences nested past the limit), with the flags
        and, when recorded, the mappings."""
        deep = too_deep(ds, self.max_nesting)
        if deep is not None:
            raise InputError(nesting_problem(deep, self.max_nesting))
        plan = self._pixels.plan(ds)
        return self._with_pixels(self._outcome(ds), plan, ds)

    def _with_pixels(self, outcome: DatasetOutcome, plan: PixelPlan | None,
                     ds: Dataset, stream: bool = False) -> DatasetOutcome:
        """Run the pixel stage on the de-identified ``ds`` (its plan made before); with
        ``stream``, native pixel data on disk is blanked while it is written, and a large
        image written native is generated a frame at a time while it is written."""
        if plan is None:
            return outcome
        pixels = self._pixels.apply(plan, ds, stream=stream)
        return DatasetOutcome(outcome.actions, outcome.flags, outcome.mappings, pixels)

    def _outcome(self, ds: Dataset,
                 held: dict[int, RawDataElement] | None = None) -> DatasetOutcome:
        """Anonymize ``ds`` in place; ``held``: its large values left on disk."""
        drop_signatures(ds, nested=False)
        if self.validate_input:
            with quiet_pydicom():
                validate_dataset(ds, stage="input")
        before = original_identities(ds) if self.record_mappings else None
        with quiet_pydicom():
            originals = capture(ds) if self.encrypt_to is not None else None
        result = self.engine.apply(ds)
        drop_signatures(ds, nested=True)
        if originals is not None:
            assert self.encrypt_to is not None
            with quiet_pydicom():
                seal(ds, originals, self.encrypt_to, held)
        if self.validate_output:
            with quiet_pydicom():
                validate_dataset(ds, stage="output")
        return DatasetOutcome(dict(sorted(result.actions.items())), tuple(result.flags),
                              mappings(before, ds, self.config) if before else ())

    def anonymize_file(self, source: str | os.PathLike[str], target: Target, *,
                       exclusive: bool = False,
                       temp_dir: str | os.PathLike[str] | None = None,
                       replace_before: float | None = None, sync: bool = True,
                       parsed: RawFile | None = None) -> FileResult:
        """Anonymize one file. The input is only read; the output appears only when complete.

        Large values (pixel data) are copied from the input byte for byte, never loaded (see
        :mod:`dcmanon.io.streaming`). Errors are returned in the result, not raised, so that a
        batch goes on.

        Parameters
        ----------
        source : path-like
            The input file.
        target : path-like or callable
            The output file, or a function of the anonymized dataset that returns it.
        exclusive : bool
            Keep an existing output: the result's status is then ``exists``.
        temp_dir : path-like, optional
            Where the temporary file is written (same file system as ``target``).
        replace_before : float, optional
            With ``exclusive``: still replace an existing output last modified before this
            time (seconds since the epoch), e.g. one from an earlier run.
        sync : bool
            Flush the output to disk before it appears (a batch syncs once at its end
            instead: per-file flushes cost more than anonymizing).
        parsed : RawFile, optional
            The file's header as :func:`dcmanon.io.rawdataset.parse_file` read it, when the
            caller has read it already (a batch that names its outputs after the files'
            identifiers reads each file once).
        """
        src = os.fspath(source)
        try:
            fast = self._fast_output(src, parsed)
        except InputError as exc:  # nested past the limit
            return _failed(src, "" if callable(target) else os.fspath(target), exc)
        if fast is not None and fast.source is not None and self._pixels_wanted(fast):
            fast = None  # the pixels need decoding: pydicom's path
        if fast is not None:
            return self._write_fast(fast, src, target, exclusive, temp_dir, replace_before,
                                    sync)
        dst = "" if callable(target) else os.fspath(target)
        try:
            ds, outcome = self._read_and_anonymize(src)
            if callable(target):
                dst = os.fspath(target(ds))
        except DcmanonError as exc:
            return _failed(src, dst, exc)
        except Exception as exc:  # noqa: BLE001  (per-file boundary: one bad file never stops a batch)
            return _unexpected(src, dst, exc, "could not be anonymized")

        patch = outcome.pixels.patch if outcome.pixels is not None else None
        generated = outcome.pixels.source if outcome.pixels is not None else None

        def write() -> None:
            with quiet_pydicom():  # pydicom's warnings quote values
                prepare_file_meta(ds)
                write_dicom_atomic(ds, dst, exclusive=exclusive, temp_dir=temp_dir,
                                   replace_before=replace_before, sync=sync,
                                   patches={PIXEL_DATA: patch} if patch else None,
                                   sources={PIXEL_DATA: generated} if generated else None)

        return _written(src, dst, write) or FileResult(
            src, dst, FileStatus.DONE, outcome.actions, flags=outcome.flags,
            mappings=outcome.mappings, size=_size(src),
            pixels=outcome.pixels.record() if outcome.pixels is not None else None)

    def _fast_output(self, src: str, parsed: RawFile | None = None) -> FastOutput | None:
        """The fast path's output, or None: the file then takes pydicom's path, which reads
        it or says what is wrong with it."""
        if self._fast is None:
            return None
        try:
            return self._fast.anonymize(src, parsed)
        except NotPlain as why:  # the reasons are fixed texts, never a value
            _log.debug("a file takes pydicom's path: %s", why)
            return None
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001  (a fast-path bug must not cost the file)
            # Logged (the class and where, never a message that may quote a value), since
            # it is a bug to report; the file still takes pydicom's path.
            _log.warning("fast path failed on a file, which took pydicom's path instead (%s); "
                         "please report it", describe_unexpected(exc))
            return None

    def _pixels_wanted(self, fast: FastOutput) -> bool:
        """Whether the fast path's file goes through the pixel stage (then pydicom's path)."""
        assert fast.source is not None
        try:
            return needs_pixel_work(self._pixels, fast.source)
        except Exception as exc:  # noqa: BLE001  (an odd value: pydicom's path decides)
            _log.debug("the pixel decision took pydicom's path (%s)", describe_unexpected(exc))
            return True

    def _write_fast(self, fast: FastOutput, src: str, target: Target, exclusive: bool,
                    temp_dir: str | os.PathLike[str] | None, replace_before: float | None,
                    sync: bool) -> FileResult:
        """Write what the fast path made (see :mod:`dcmanon.io.fastpath`)."""
        try:
            dst = os.fspath(target(fast.names())) if callable(target) else os.fspath(target)
        except DcmanonError as exc:
            return _failed(src, "", exc)
        except Exception as exc:  # noqa: BLE001  (per-file boundary, as above)
            return _unexpected(src, "", exc, "could not be anonymized")

        def write() -> None:
            write_atomic(dst, lambda handle: write_pieces(fast.pieces, fast.path, handle),
                         exclusive=exclusive, temp_dir=temp_dir, replace_before=replace_before,
                         sync=sync)

        return _written(src, dst, write) or FileResult(
            src, dst, FileStatus.DONE, dict(sorted(fast.actions.items())),
            flags=tuple(fast.flags),
            mappings=fast.mappings, size=fast.size)

    def _read_and_anonymize(self, src: str) -> tuple[FileDataset, DatasetOutcome]:
        """Read ``src`` with its large values left on disk, and anonymize it.

        A rule that changes a large value needs it: the file is then read again in full.
        """
        ds = self._read(src, defer=True)  # (its nesting checked)
        plan = self._pixels.plan(ds)  # on the original header
        if needs_full_read(ds):  # big endian (deflated files are read in full already)
            if has_deferred(ds):
                ds = self._read(src, defer=False)
            return ds, self._with_pixels(self._outcome(ds), plan, ds)
        held = hold_bulk(ds)
        outcome = self._outcome(ds, held)
        if held and not release_bulk(ds, held):
            ds = self._read(src, defer=False)
            outcome = self._outcome(ds)
        return ds, self._with_pixels(outcome, plan, ds, stream=True)

    def _read(self, src: str, *, defer: bool) -> FileDataset:
        return read_dicom(src, defer=defer, max_inflated_size=self.max_inflated_size,
                          max_nesting=self.max_nesting)


def _written(src: str, dst: str, write: Callable[[], None]) -> FileResult | None:
    """Write an output; the result when it could not be written (None: it was)."""
    try:
        write()
    except FileExistsError:
        return FileResult(src, dst, FileStatus.EXISTS)
    except DcmanonError as exc:  # e.g. the input changed or ended while it was copied
        return _failed(src, dst, exc)
    except OSError as exc:
        return FileResult(src, dst, FileStatus.FAILED,
                          error=f"{dst}: cannot write ({describe_os_error(exc)})",
                          error_class=OutputError.__name__)
    except Exception as exc:  # noqa: BLE001  (per-file boundary: the file fails, the batch goes on)
        return _unexpected(src, dst, exc, "could not be written")
    return None


def _failed(src: str, dst: str, exc: DcmanonError) -> FileResult:
    """A failure dcmanon explains (input errors already name the file)."""
    message = str(exc) if isinstance(exc, InputError) else f"{src}: {exc}"
    return FileResult(src, dst, FileStatus.FAILED, error=message,
                      error_class=type(exc).__name__)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _unexpected(src: str, dst: str, exc: Exception, what: str) -> FileResult:
    """A failure dcmanon did not foresee: the class and where it arose, never the message.

    The messages of pydicom and other libraries may quote element values.
    """
    error = f"{src}: {what} (unexpected {describe_unexpected(exc)}; please report it)"
    return FileResult(src, dst, FileStatus.FAILED, error=error, error_class=type(exc).__name__)
