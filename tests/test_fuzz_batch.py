"""Malformed and truncated files among good ones: each bad file is one clear per-file error.

Hypothesis cuts, corrupts and splices a good file; every folder run must end (a watchdog
fails the test if it hangs), write the good files exactly as a clean run does, fail the bad
ones with a typed, PHI-free error and no output, and leave no temporary file behind. A bad
file that is accepted all the same is held to what every output promises: none of the
patient's planted identifiers (in PN, LO, SH and DA elements, at the top level, one and two
sequence levels down, and in a private block) that the file still holds is left in it.
"""

from __future__ import annotations

import io
import random
import signal
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from dcmanon import Anonymizer, parse_config
from dcmanon.batch.run import BatchOptions, BatchResult, run_folder
from dcmanon.testing import make_instance, make_patient, phi_markers

KEY = "test-fuzz-secret"
PATIENT = make_patient(3)


def _good_bytes(index: int) -> bytes:
    buffer = io.BytesIO()
    make_instance(PATIENT, 0, 0, index).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


GOOD = [_good_bytes(i) for i in range(3)]
ANONYMIZER = Anonymizer(parse_config({"profile": "basic"}, secret=KEY))
MARKERS = phi_markers(PATIENT)
PLANTED_IN = frozenset({
    0x00100010, 0x00100020, 0x00100030, 0x00101040, 0x00102154,  # PatientName ... Telephone
    0x00080090,  # ReferringPhysicianName
    0x0040A123,  # PersonName, two sequence levels down
    0x00091001,  # the private block's LO
})
"""Where the markers are planted (OtherPatientIDsSequence > PatientID is 0x00100020 too)."""
SCRUBBED_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "PN"})
"""The VRs of the text elements whose kept values lose the dataset's identifiers (docs/
conformance.md); a value of another VR that a corrupted length made out of the bytes of other
elements is removed when longer than its VR allows (test_an_identifier_swallowed_by_...)."""


def _raw_elements(ds: Dataset) -> Iterator[tuple[int, str, bytes]]:
    """(tag, VR, value bytes) of every element at every depth, values as stored: an element
    is not decoded (so an odd VR or value cannot stop the walk); sequences are opened."""
    for tag in list(ds.keys()):
        elem = ds.get_item(tag)
        if isinstance(elem, RawDataElement) and elem.VR == "SQ":
            elem = ds[tag]
        if isinstance(elem, RawDataElement):
            yield int(tag), str(elem.VR), elem.value or b""
        elif elem.VR == "SQ":
            for item in elem.value:
                yield from _raw_elements(item)
        else:
            value = elem.value
            yield int(tag), str(elem.VR), value if isinstance(value, bytes) else str(
                value).encode("latin-1", "replace")


def _held(data: bytes) -> set[str]:
    """The markers a (damaged) input still holds in the elements they were planted in, as
    pydicom reads it (a marker whose element the damage renamed or cut is not the file's
    identifier any more)."""
    held: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            for tag, _, value in _raw_elements(ds):
                if tag in PLANTED_IN:
                    held |= {m for m in MARKERS if m.encode() in value}
        except Exception:  # what pydicom cannot read: every marker it found so far
            pass
    return held


def _leaks(data: bytes, held: set[str]) -> list[str]:
    """The held markers in an output's bytes, except those inside a value that no text scrub
    reads and that is not an identifying element (damage can leave a marker in a value of a
    valid length: a number, a code)."""
    found = [m for m in held if m.encode() in data]
    if not found:
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            elements = list(_raw_elements(pydicom.dcmread(io.BytesIO(data))))
    except Exception as exc:
        return [f"{len(found)} marker(s) in an output pydicom cannot walk "
                f"({type(exc).__name__})"]
    tolerated = [value for tag, vr, value in elements
                 if vr not in SCRUBBED_VRS and tag not in PLANTED_IN]
    return [f"marker {MARKERS.index(m)}" for m in found
            if data.count(m.encode()) != sum(v.count(m.encode()) for v in tolerated)]


def _cut(data: bytes, at: int) -> bytes:
    return data[:at % len(data)]


def _flip(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out)


def _splice(data: bytes, start: int, length: int, junk: bytes) -> bytes:
    start %= len(data)
    return data[:start] + junk + data[start + length:]


def _mutate(kind: int, good: int, a: int, b: int, junk: bytes) -> bytes:
    """One malformed file, described by small numbers (so that examples print small)."""
    data = GOOD[good]
    if kind == 0:
        return _cut(data, a)
    if kind == 1:
        return _flip(data, [(a + 97 * i, (b + i) % 256) for i in range(1 + b % 8)])
    if kind == 2:
        return _splice(data, a, b % 65, junk)
    return b"\0" * 128 + b"DICM" + junk * (1 + b % 8)


mutation = st.tuples(st.integers(0, 3), st.integers(0, len(GOOD) - 1),
                     st.integers(0, 20_000), st.integers(0, 255), st.binary(max_size=64))


@contextmanager
def watchdog(seconds: int) -> Iterator[None]:
    """Fail instead of hanging."""
    def hung(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the folder run did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class Reference:
    """The outputs of the good files alone (not a bytes dict: Hypothesis prints arguments)."""

    def __init__(self, folder: Path) -> None:
        source = folder / "in"
        source.mkdir()
        for index, data in enumerate(GOOD):
            (source / f"good{index}.dcm").write_bytes(data)
        run_folder(ANONYMIZER, source, folder / "out", options=BatchOptions(jobs=1))
        self.outputs = {p.name: p.read_bytes() for p in (folder / "out").iterdir()}
        assert sorted(self.outputs) == [f"good{i}.dcm" for i in range(len(GOOD))]
        for data in self.outputs.values():  # every planted marker gone, at every depth
            assert not [i for i, m in enumerate(MARKERS) if m.encode() in data]

    def __repr__(self) -> str:
        return f"Reference({len(self.outputs)} outputs)"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return Reference(tmp_path_factory.mktemp("good"))


def _check(batch: BatchResult, source: Path, out: Path, bad: int,
           reference: Reference) -> None:
    counts = batch.summary
    assert counts.done + counts.failed + counts.skipped == bad + len(GOOD)
    for name, data in reference.outputs.items():
        assert (out / name).read_bytes() == data
    markers = phi_markers(PATIENT)
    for failure in batch.failed:
        # A typed error, or an unforeseen one reported by class and place (never a message
        # that could quote a value).
        assert failure.error_class, failure.error
        assert failure.error and failure.error.startswith(failure.source)
        if failure.error_class not in ("InputError", "ValueFormatError",
                                       "UnsupportedVRError", "OutputError"):
            assert f"unexpected {failure.error_class} at " in failure.error
        assert "Traceback" not in failure.error
        assert not any(m in failure.error for m in markers)
        assert not (out / Path(failure.source).name).exists()
    accepted = 0
    for path in out.rglob("*"):
        assert not path.name.startswith(".dcmanon"), path
        if path.is_file() and path.name.startswith("bad"):
            accepted += 1
            with warnings.catch_warnings():  # an odd input gives an odd (but whole) output
                warnings.simplefilter("ignore")
                pydicom.dcmread(path)  # whatever was written is a whole file
            # ... and carries none of the identifiers its input still holds (named by their
            # index in MARKERS: no value is printed).
            leaks = _leaks(path.read_bytes(), _held((source / path.name).read_bytes()))
            assert not leaks, path.name
    assert accepted == counts.done - len(GOOD)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutations=st.lists(mutation, min_size=5, max_size=25))
def test_bad_files_fail_one_by_one(mutations: list[tuple[int, int, int, int, bytes]],
                                   reference: Reference,
                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    bad_files = [_mutate(*m) for m in mutations]
    root = tmp_path_factory.mktemp("fuzz")
    source, out = root / "in", root / "out"
    source.mkdir()
    for index, data in enumerate(GOOD):
        (source / f"good{index}.dcm").write_bytes(data)
    for index, data in enumerate(bad_files):
        (source / f"bad{index:03d}.dcm").write_bytes(data)
    with watchdog(120):
        batch = run_folder(ANONYMIZER, source, out, options=BatchOptions(jobs=1))
    _check(batch, source, out, len(bad_files), reference)


def test_bad_files_in_parallel_workers(reference: Reference, tmp_path: Path) -> None:
    """Hundreds of bad files spread over worker processes: the same per-file outcomes."""
    rng = random.Random(20240601)
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for index, data in enumerate(GOOD):
        (source / f"good{index}.dcm").write_bytes(data)
    count = 400
    for index in range(count):
        data = rng.choice(GOOD)
        kind = index % 3
        if kind == 0:
            data = data[:rng.randrange(len(data))]
        elif kind == 1:
            data = _flip(data, [(rng.randrange(len(data)), rng.randrange(256))
                                for _ in range(rng.randrange(1, 6))])
        else:
            data = _splice(data, rng.randrange(len(data)), rng.randrange(64),
                           rng.randbytes(rng.randrange(64)))
        (source / f"bad{index:03d}.dcm").write_bytes(data)
    with watchdog(300):
        batch = run_folder(ANONYMIZER, source, out,
                           options=BatchOptions(jobs=2, min_parallel=0, chunk_size=16))
    assert batch.summary.failed > count // 3
    _check(batch, source, out, count, reference)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(depth=st.integers(65, 3000), inflated=st.integers(5 << 20, 64 << 20),
       mutations=st.lists(mutation, max_size=5))
def test_hostile_files_fail_one_by_one(depth: int, inflated: int,
                                       mutations: list[tuple[int, int, int, int, bytes]],
                                       reference: Reference,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """A deflate bomb and sequences nested past the limit among good and bad files: each
    fails alone (InputError naming it), the good ones are written as in a clean run."""
    from tests.test_hostile import write_bomb, write_nested

    root = tmp_path_factory.mktemp("hostile")
    source, out = root / "in", root / "out"
    source.mkdir()
    for index, data in enumerate(GOOD):
        (source / f"good{index}.dcm").write_bytes(data)
    for index, data in enumerate(_mutate(*m) for m in mutations):
        (source / f"bad{index:03d}.dcm").write_bytes(data)
    write_bomb(source / "bad-bomb.dcm", inflated)
    write_nested(source / "bad-deep.dcm", depth)
    anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret=KEY),
                            max_inflated_size=4 << 20)
    with watchdog(120):
        batch = run_folder(anonymizer, source, out, options=BatchOptions(jobs=1))
    _check(batch, source, out, len(mutations) + 2, reference)
    failed = {Path(f.source).name: f for f in batch.failed}
    assert "inflates to more than 4 MiB" in (failed["bad-bomb.dcm"].error or "")
    assert "nested more than 64 levels deep (at (0040,A730) ContentSequence)" in (
        failed["bad-deep.dcm"].error or "")
    assert {failed[n].error_class for n in ("bad-bomb.dcm", "bad-deep.dcm")} == {"InputError"}


def _swallow(data: bytes, tag: int, vr: str) -> bytes:
    """One corrupted length: the element ``tag`` (explicit VR, 16-bit length) now runs on to
    the end of the PersonName two sequence levels down, the patient's name included."""
    header = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode()
    start = data.index(header)
    person = data.index(struct.pack("<HH", 0x0040, 0xA123) + b"PN", start)
    end = person + 8 + struct.unpack_from("<H", data, person + 6)[0]
    return data[:start + 6] + struct.pack("<H", end - start - 8) + data[start + 8:]


def _unknown_un(data: bytes) -> bytes:
    """An element of a tag no dictionary knows (even group), written as UN, with the name."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.add_new(0x00B20020, "UN", PATIENT.name.encode())
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("damage", [
    pytest.param(lambda data: _swallow(data, 0x0040A040, "CS"), id="ValueType-CS-length"),
    pytest.param(lambda data: _swallow(data, 0x00281052, "DS"), id="RescaleIntercept-DS-length"),
    pytest.param(_unknown_un, id="unknown-element-UN"),
])
def test_an_identifier_swallowed_by_a_kept_value_is_not_written(
        damage: Callable[[bytes], bytes], tmp_path: Path) -> None:
    data = damage(GOOD[0])
    held = sorted(MARKERS.index(m) for m in _held(data))
    assert held[:3] == [0, 1, 2]  # the name, whole and by component, is the file's still
    (tmp_path / "in.dcm").write_bytes(data)
    outputs = []
    for fast in (True, False):  # the byte-level path and pydicom's judge the value alike
        anonymizer = Anonymizer(ANONYMIZER.config, fast_path=fast)
        result = anonymizer.anonymize_file(tmp_path / "in.dcm", tmp_path / f"out-{fast}.dcm")
        assert result.status == "done", result.error  # the damaged value goes, not the file
        outputs.append((tmp_path / f"out-{fast}.dcm").read_bytes())
    assert not [i for i, m in enumerate(MARKERS) if m.encode() in outputs[0]]
    assert outputs[0] == outputs[1]
