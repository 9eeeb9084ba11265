"""Real peers read every kind of output dcmanon writes: DCMTK's ``dcmdump`` and GDCM.

Each kind of output — the byte-level fast path (explicit and implicit VR Little Endian,
encapsulated pixel data, nested sequences of defined and undefined length, private blocks, a
large multi-frame file streamed from disk), pydicom's path (the same files, and Big Endian and
deflated ones), ``dcmanon decrypt`` — is read by two parsers that share no code with dcmanon
or pydicom:

* ``dcmdump`` must exit 0 with no error (``E:``/``F:``) nor warning (``W:``) line, and see the
  same elements, at the same depths, in the same order, as pydicom reading the file back, with
  the same text for every element of a text VR (names, IDs, UIDs, dates, the de-identification
  record...): an independent parser agreeing with ours;
* ``gdcminfo --md5sum`` must read the file and find the same pixels (decoded, for compressed
  ones) as in the input.

Last, every file pydicom bundles is anonymized with the basic profile: dcmdump and gdcmdump
must read every output whose input they read, with no error the input did not have.
Messages name files and tags, never values. (And the tests of ``find_tool``, the conftest
helper that gives every such test its tool, or skips it, or fails it.)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import struct
import subprocess
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian
from pydicom.valuerep import PersonName

from dcmanon import Anonymizer, parse_config
from dcmanon.cli.main import main
from dcmanon.io.rawdataset import NotPlain
from dcmanon.testing import PRIVATE_CREATOR, PRIVATE_GROUP, make_instance, make_patient
from tests.conftest import REQUIRE_PEERS, find_tool

TEST_FILES = Path(get_testdata_file("CT_small.dcm", download=False) or "").parent
SECRET = "peer-test"
TODAY = dt.date(2026, 11, 22)
BASIC: dict[str, Any] = {"profile": "basic"}
KEEP_PRIVATE: dict[str, Any] = {"profile": "basic", "rules": [
    {"tag": "(0009,xxxx)", "method": "keep"}, {"tag": "(0011,xxxx)", "method": "keep"}]}
# Every depth changes length: an element removed, names and long strings emptied, short
# strings hashed.
NESTED_EDITS: dict[str, Any] = {"rules": [
    {"tag": "PersonName", "method": "remove"}, {"tag": "PN", "method": "redact"},
    {"tag": "LO", "method": "redact"}, {"tag": "SH", "method": "cryptoHash"}],
    "unmatched": "keep"}
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
                      "UI", "UR", "UT"})
PN_DELIMITERS = {0x5C, 0x3D, 0x5E}  # \ = ^
PATIENT_IDENTITY_REMOVED = 0x00120062
DEIDENTIFICATION_METHOD = 0x00120063
DEIDENTIFICATION_CODES = 0x00120064
PIXEL_DATA = 0x7FE00010
CODE_VALUE = 0x00080100


# --- the peers ---

@dataclass(frozen=True)
class Peers:
    dcmdump: str
    gdcminfo: str
    gdcmdump: str


@pytest.fixture(scope="module")
def peers(external_tool: Callable[[str], str]) -> Peers:
    return Peers(external_tool("dcmdump"), external_tool("gdcminfo"), external_tool("gdcmdump"))


@dataclass(frozen=True)
class Entry:
    """One element as dcmdump prints it: its sequence depth, tag, VR and printed value."""

    depth: int
    tag: int
    vr: str
    value: str


@dataclass(frozen=True)
class Dump:
    returncode: int
    meta: list[Entry]
    data: list[Entry]
    messages: list[str]
    """dcmdump's ``E:``, ``F:`` and ``W:`` lines."""

    @property
    def errors(self) -> list[str]:
        return [m for m in self.messages if not m.startswith("W:")]

    def top(self, tag: int) -> Entry | None:
        return next((e for e in self.data if e.depth == 0 and e.tag == tag), None)


# UIDs as numbers (+Un), long values whole (+L), non-ASCII and control characters as XML
# character references (+Qn: one value, one line); values over 64 KB (pixel data) are
# skipped over, not loaded (-M +R 64).
DCMDUMP_OPTIONS = ("-Un", "+L", "+Qn", "-M", "+R", "64")
LINE = re.compile(r"^(?P<indent> *)\((?P<group>[0-9a-f]{4}),(?P<element>[0-9a-f]{4})\) "
                  r"(?P<vr>\S\S) (?P<value>\[.*\]|[^\[].*?) *# *(?:\d+|u/l), *\d+ .+$")
REFERENCE = re.compile(r"&(#\d+|amp|lt|gt|quot|apos);")
NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _entries(lines: list[str]) -> tuple[list[Entry], list[Entry]]:
    """The file meta and data set elements of one file in dcmdump's output."""
    meta: list[Entry] = []
    data: list[Entry] = []
    section = meta
    for line in lines:
        if line.startswith("# Dicom-Data-Set"):
            section = data
        match = LINE.match(line)
        if match is None or match["group"] == "fffe":  # items and delimiters
            continue
        # Two spaces per level, for the item and for its elements.
        section.append(Entry(len(match["indent"]) // 4, int(match["group"] + match["element"], 16),
                             match["vr"], match["value"]))
    return meta, data


def _messages(run: subprocess.CompletedProcess[bytes]) -> list[str]:
    text = (run.stdout + b"\n" + run.stderr).decode("ascii", "replace")
    return [line for line in text.splitlines() if line[:3] in ("E: ", "F: ", "W: ")]


def dcmdump(peers: Peers, path: Path) -> Dump:
    run = subprocess.run([peers.dcmdump, *DCMDUMP_OPTIONS, str(path)], capture_output=True,
                         timeout=120, check=False)
    meta, data = _entries(run.stdout.decode("ascii", "replace").splitlines())
    return Dump(run.returncode, meta, data, _messages(run))


def dcmdump_all(peers: Peers, paths: list[Path]) -> dict[Path, Dump]:
    """dcmdump's reading of many files, in one run when it reports no error; else file by
    file (its messages do not name the file). The warnings are not kept."""
    run = subprocess.run([peers.dcmdump, "+F", *DCMDUMP_OPTIONS, *map(str, paths)],
                         capture_output=True, timeout=300, check=False)
    errors = [line for line in _messages(run) if not line.startswith("W:")]
    if run.returncode or errors:
        return {path: dcmdump(peers, path) for path in paths}
    sections: list[list[str]] = []
    for line in run.stdout.decode("ascii", "replace").splitlines():
        if line.startswith("# dcmdump ("):
            sections.append([])
        elif sections:
            sections[-1].append(line)
    assert len(sections) == len(paths), "dcmdump printed another number of files"
    return {path: Dump(0, *_entries(lines), []) for path, lines in zip(paths, sections,
                                                                          strict=True)}


def printed_bytes(entry: Entry) -> bytes | None:
    """The value's bytes as dcmdump printed them (padding stripped); None if not text."""
    if entry.value == "(no value available)":
        return b""
    if not (entry.value.startswith("[") and entry.value.endswith("]")):
        return None
    text = REFERENCE.sub(lambda m: chr(int(m[1][1:])) if m[1][0] == "#" else NAMED[m[1]],
                         entry.value[1:-1])
    return text.encode("latin-1")


def gdcm_pixels(peers: Peers, folder: Path) -> dict[str, str | None]:
    """GDCM's MD5 of the pixels (decoded, when compressed) of every file in ``folder``, by
    name; None for a file GDCM cannot read."""
    run = subprocess.run([peers.gdcminfo, "--md5sum", "-r", "-i", str(folder)],
                         capture_output=True, text=True, timeout=300, check=False)
    found: dict[str, str | None] = {path.name: None for path in folder.iterdir()}
    name = None
    for line in run.stdout.splitlines():
        if line.startswith("filename: "):
            name = Path(line.removeprefix("filename: ")).name
        elif line.startswith("md5sum: ") and name is not None:
            found[name] = line.removeprefix("md5sum: ").strip()
    return found


# --- pydicom's reading of the same file ---

def walk(ds: Dataset, encodings: list[str], depth: int = 0
         ) -> Iterator[tuple[int, DataElement, list[str]]]:
    """(depth, element, character sets) for every element, items' elements after their
    sequence, as dcmdump lists them."""
    if "SpecificCharacterSet" in ds:
        encodings = convert_encodings(ds.SpecificCharacterSet)
    for element in ds:
        yield depth, element, encodings
        if element.VR == "SQ" and element.value is not None:
            for item in element.value:
                yield from walk(item, encodings, depth + 1)


def as_text(element: DataElement, encodings: list[str]) -> str:
    values = element.value
    if values is None:
        return ""
    if not isinstance(values, (list, MultiValue)):
        values = [values]
    # A PN as read (pydicom's PersonName drops trailing "=", e.g. of Base64 ciphertext).
    return "\\".join(
        decode_bytes(v.original_string, encodings, PN_DELIMITERS)
        if isinstance(v, PersonName) and v.original_string is not None else str(v)
        for v in values)


def _at(tags: list[tuple[int, int]], index: int) -> str:
    if index >= len(tags):
        return "nothing"
    depth, tag = tags[index]
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) at depth {depth}"


def disagreements(dump: Dump, path: Path) -> tuple[list[str], int]:
    """Where dcmdump and pydicom read ``path`` differently (tags, never values), and how many
    text values they agree on."""
    with warnings.catch_warnings():  # (the tests turn warnings into errors)
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        ours = list(walk(ds, convert_encodings(None)))
        meta = [(0, element, convert_encodings(None)) for element in ds.file_meta]
    problems, compared = [], 0
    for name, theirs, mine in (("file meta", dump.meta, meta), ("data set", dump.data, ours)):
        their_tags = [(e.depth, e.tag) for e in theirs]
        my_tags = [(depth, int(element.tag)) for depth, element, _ in mine]
        if their_tags != my_tags:
            first = next(i for i, (a, b) in enumerate(zip_longest(their_tags, my_tags))
                         if a != b)
            problems.append(f"{name}: element #{first} is {_at(their_tags, first)} for dcmdump, "
                            f"{_at(my_tags, first)} for pydicom")
            continue
        for index, (entry, (_, element, encodings)) in enumerate(zip(theirs, mine, strict=True)):
            printed = printed_bytes(entry)
            if entry.vr not in TEXT_VRS or element.VR not in TEXT_VRS or printed is None:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                same = (decode_bytes(printed, encodings, PN_DELIMITERS)
                        == as_text(element, encodings))
            compared += 1
            if not same:
                problems.append(f"{name}: the value of {_at(my_tags, index)} "
                                f"({element.keyword or 'private'}) differs")
    return problems, compared


def check_output(dump: Dump, source: Path, output: Path, *, recorded: bool) -> list[str]:
    """What dcmdump finds wrong with ``output``, an anonymized ``source`` (nothing: [])."""
    problems = [f"dcmdump exits with {dump.returncode}"] if dump.returncode else []
    problems += dump.messages
    found, compared = disagreements(dump, output)
    problems += found
    if compared < 20:
        problems.append(f"dcmdump and pydicom agree on only {compared} text values")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        syntax = pydicom.dcmread(source, stop_before_pixels=True).file_meta.TransferSyntaxUID
    written = next((e for e in dump.meta if e.tag == 0x00020010), None)
    if written is None or printed_bytes(written) != syntax.encode():
        problems.append("dcmdump reads another transfer syntax than the input's")
    for keyword, tag in (("PatientName", 0x00100010), ("PatientID", 0x00100020),
                         ("SOPInstanceUID", 0x00080018)):
        if dump.top(tag) is None:
            problems.append(f"dcmdump finds no {keyword}")
    if recorded:
        removed = dump.top(PATIENT_IDENTITY_REMOVED)
        if removed is None or printed_bytes(removed) != b"YES":
            problems.append("dcmdump finds no PatientIdentityRemoved YES")
        method = dump.top(DEIDENTIFICATION_METHOD)
        if method is None or not printed_bytes(method):
            problems.append("dcmdump finds no DeidentificationMethod")
        codes = dump.top(DEIDENTIFICATION_CODES)
        first = dump.data[dump.data.index(codes) + 1:][:1] if codes is not None else []
        if [(e.depth, e.tag) for e in first] != [(1, CODE_VALUE)]:
            problems.append("dcmdump finds no code in DeidentificationMethodCodeSequence")
    return problems


# --- the kinds of output ---

def _instance(index: int) -> pydicom.FileDataset:
    return make_instance(make_patient(index, seed=17), 0, 0, 0, seed=17)


def _save(ds: Dataset, path: Path, *, implicit: bool = False) -> Path:
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True, implicit_vr=True, little_endian=True)
    else:
        ds.save_as(path, enforce_file_format=True)
    return path


def _bundled(name: str) -> Callable[[Path], Path]:
    return lambda _: Path(get_testdata_file(name, download=False) or name)


def _plain(implicit: bool) -> Callable[[Path], Path]:
    return lambda tmp_path: _save(_instance(1), tmp_path / "in.dcm", implicit=implicit)


def _private(implicit: bool) -> Callable[[Path], Path]:
    """The factory's private block (group 0x0009), and in explicit VR a private sequence
    whose item has a private block of its own (group 0x0011)."""
    def build(tmp_path: Path) -> Path:
        ds = _instance(2)
        if not implicit:
            inner = Dataset()
            inner.private_block(0x0011, "ACME FAKE INNER", create=True).add_new(
                0x01, "LO", "Inner^Fake")
            ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR).add_new(0x20, "SQ",
                                                                     Sequence([inner]))
        return _save(ds, tmp_path / "in.dcm", implicit=implicit)
    return build


def _nested(tmp_path: Path) -> Path:
    """Three levels of sequences, of undefined and of defined length, with names, long and
    short strings at every level (NESTED_EDITS changes the length of each)."""
    ds = _instance(3)
    leaves = []
    for index in range(2):
        leaf = Dataset()
        leaf.CodeValue = f"L3-{index}"
        leaf.CodeMeaning = "a long string at level three"
        leaf.PersonName = "Deep^Fake"
        leaves.append(leaf)
    leaves[1].is_undefined_length_sequence_item = True
    middle = Dataset()
    middle.CodeValue = "L2"
    middle.ContentSequence = Sequence(leaves)
    top = Dataset()
    top.PersonName = "Top^Fake"
    top.ContentSequence = Sequence([middle])
    top.is_undefined_length_sequence_item = True
    ds.ContentSequence = Sequence([top])
    ds["ContentSequence"].is_undefined_length = True
    return _save(ds, tmp_path / "in.dcm")


FRAMES = 24


def _multiframe(tmp_path: Path) -> Path:
    """A 12 MB multi-frame file (512x512x16-bit frames), trailing padding after its pixel
    data: far over the size values are streamed from."""
    path = tmp_path / "in.dcm"
    ds = make_instance(make_patient(4, seed=17), rows=512, columns=512, seed=17)
    del ds.PixelData
    ds.NumberOfFrames = FRAMES
    ds.save_as(path, enforce_file_format=True)
    frame = bytes(range(256)) * 2048
    with path.open("ab") as handle:
        handle.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, len(frame) * FRAMES))
        for index in range(FRAMES):
            handle.write(frame[index:] + frame[:index])
        handle.write(struct.pack("<HH2sHL", 0xFFFC, 0xFFFC, b"OB", 0, 64) + bytes(64))
    return path


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], Path]
    config: dict[str, Any]
    fast: bool
    """Whether the fast path takes the input (else pydicom's path only)."""
    must_see: tuple[tuple[int, int], ...] = ()
    """(depth, tag) of elements dcmdump must find in the output."""


CASES = {
    "explicit-vr-little-endian": Case(_plain(False), BASIC, True),
    "implicit-vr-little-endian": Case(_plain(True), BASIC, True),
    "jpeg-baseline": Case(_bundled("SC_rgb_jpeg_dcmtk.dcm"), BASIC, True, ((0, PIXEL_DATA),)),
    "jpeg-2000": Case(_bundled("JPEG2000.dcm"), BASIC, True, ((0, PIXEL_DATA),)),
    "rle-two-frames": Case(_bundled("SC_rgb_rle_2frame.dcm"), BASIC, True, ((0, PIXEL_DATA),)),
    "big-endian": Case(_bundled("MR_small_bigendian.dcm"), BASIC, False),
    "deflated": Case(_bundled("image_dfl.dcm"), BASIC, False),
    "multi-frame-streamed": Case(_multiframe, BASIC, True, ((0, PIXEL_DATA),)),
    "nested-sequences": Case(_nested, NESTED_EDITS, True, ((3, CODE_VALUE), (2, CODE_VALUE))),
    "private-explicit": Case(_private(False), KEEP_PRIVATE, True,
                             ((0, 0x00090010), (0, 0x00091001), (1, 0x00110010),
                              (1, 0x00111001))),
    "private-implicit": Case(_private(True), KEEP_PRIVATE, True,
                             ((0, 0x00090010), (0, 0x00091001))),
}


@pytest.mark.peer
@pytest.mark.parametrize("name", sorted(CASES))
def test_dcmtk_and_gdcm_read_the_output_as_pydicom_does(name: str, peers: Peers,
                                                         tmp_path: Path) -> None:
    case = CASES[name]
    source = case.build(tmp_path)
    config = parse_config(case.config, secret=SECRET)
    anonymizers = {"default": Anonymizer(config, today=TODAY, pixels="rules")}
    fast = anonymizers["default"]._fast
    assert fast is not None
    try:
        fast.anonymize(str(source))
        took_fast = True
    except NotPlain:
        took_fast = False
    assert took_fast == case.fast, "the input does not take the path this case is about"
    if case.fast:
        anonymizers["pydicom path"] = Anonymizer(config, today=TODAY, fast_path=False,
                                                 pixels="rules")
    folder = tmp_path / "peers"
    folder.mkdir()
    (folder / "in.dcm").symlink_to(source)

    problems: dict[str, list[str]] = {}
    outputs = {}
    for path_name, anonymizer in anonymizers.items():
        output = outputs[path_name] = folder / f"{path_name.replace(' ', '-')}.dcm"
        result = anonymizer.anonymize_file(source, output)
        assert result.status == "done", result.error
        dump = dcmdump(peers, output)
        found = check_output(dump, source, output, recorded="profile" in case.config)
        seen = {(e.depth, e.tag) for e in dump.data}
        found += [f"dcmdump finds no {_at([want], 0)}" for want in case.must_see
                  if want not in seen]
        problems[path_name] = found
    pixels = gdcm_pixels(peers, folder)
    assert pixels["in.dcm"] is not None, "GDCM cannot read the input"
    for path_name, output in outputs.items():
        if pixels[output.name] is None:
            problems[path_name].append("GDCM cannot read it")
        elif pixels[output.name] != pixels["in.dcm"]:
            problems[path_name].append("GDCM decodes other pixels than the input's")
    assert problems == {path_name: [] for path_name in anonymizers}


KEY = "00112233445566778899aabbccddeeff"
ENCRYPTED = {"PatientName": "Fåkesdóttir^Ünå", "PatientID": "FAKE-ID-ÿ7",
             "InstitutionName": "Hôpital de Nowhereville"}


@pytest.mark.peer
def test_dcmtk_reads_encrypted_values_and_decrypt_restores_them(
        peers: Peers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dcmanon`` with encrypt rules, then ``dcmanon decrypt`` (pydicom's writer): dcmdump
    reads both files; in the decrypted one it finds the input's values again."""
    monkeypatch.delenv("DCMANON_KEY", raising=False)
    folder = tmp_path / "peers"
    folder.mkdir()
    ds = _instance(5)
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in ENCRYPTED.items():
        setattr(ds, keyword, value)
    source = _save(ds, folder / "in.dcm")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "rules": [{"tag": keyword, "method": "encrypt"} for keyword in ENCRYPTED],
        "defaultSettings": {"encrypt": {"encryptKey": KEY}}}), encoding="utf-8")
    encrypted, restored = folder / "encrypted.dcm", folder / "restored.dcm"
    runner = CliRunner()
    run = runner.invoke(main, ["-i", str(source), "-o", str(encrypted), "-c", str(config)])
    assert run.exit_code == 0, run.output
    back = runner.invoke(main, ["decrypt", "-i", str(encrypted), "-o", str(restored),
                                "-c", str(config)])
    assert back.exit_code == 0, back.output

    problems: dict[str, list[str]] = {}
    for output in (encrypted, restored):
        dump = dcmdump(peers, output)
        found = check_output(dump, source, output, recorded=False)
        for keyword, value in ENCRYPTED.items():
            entry = dump.top(int(pydicom.datadict.tag_for_keyword(keyword) or 0))
            printed = printed_bytes(entry) if entry is not None else None
            seen = None if printed is None else printed.decode("utf-8", "replace")
            if (seen == value) != (output == restored):
                found.append(f"dcmdump reads the {'input' if seen == value else 'wrong'} "
                             f"{keyword}")
        problems[output.name] = found
    pixels = gdcm_pixels(peers, folder)
    for output in (encrypted, restored):
        if pixels[output.name] is None or pixels[output.name] != pixels[source.name]:
            problems[output.name].append("GDCM cannot read it, or decodes other pixels")
    assert problems == {encrypted.name: [], restored.name: []}


def _normalized(problem: str) -> str:
    """A problem as it reads for any file: no path, no sizes, no element index."""
    problem = re.sub(r"(reading|file): .*", r"\1", problem)
    problem = re.sub(r"element #\d+ is .*", "elements differ", problem)
    return re.sub(r"\(\d+\)", "(#)", problem)


@pytest.mark.peer
def test_every_bundled_file_anonymized_reads_in_dcmtk_and_gdcm_as_its_input_does(
        peers: Peers, tmp_path: Path) -> None:
    """Every transfer syntax and oddity pydicom's test files have, through the basic profile:
    no dcmdump error, gdcmdump failure or disagreement with pydicom the input did not have."""
    # --pixels rules: the default library's images are blanked, and the peers read them too.
    anonymizer = Anonymizer(parse_config(BASIC, secret=SECRET), today=TODAY, pixels="rules")
    folder = tmp_path / "out"
    folder.mkdir()
    outputs = {}
    for source in sorted(TEST_FILES.glob("*.dcm")):
        target = folder / source.name
        if anonymizer.anonymize_file(source, target).status == "done":
            outputs[source] = target
    assert len(outputs) >= 70

    def dcmdump_problems(path: Path, dump: Dump) -> set[str]:
        problems = set(dump.errors)
        if dump.returncode:
            problems.add("dcmdump fails")
        try:
            problems.update(disagreements(dump, path)[0])
        except Exception as exc:
            problems.add(f"pydicom cannot read it ({type(exc).__name__})")
        return {_normalized(problem) for problem in problems}

    def gdcmdump_reads(path: Path) -> bool:
        run = subprocess.run([peers.gdcmdump, str(path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, timeout=120, check=False)
        return run.returncode == 0

    dumps = dcmdump_all(peers, list(outputs.values()))
    new: dict[str, list[str]] = {}
    for source, target in outputs.items():
        problems = dcmdump_problems(target, dumps[target])
        if problems:
            problems -= dcmdump_problems(source, dcmdump(peers, source))
        if problems:
            new[source.name] = sorted(problems)
    # GDCM reads the whole folder in one run; file by file only when something failed.
    everything = subprocess.run([peers.gdcmdump, "-r", "-i", str(folder)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                timeout=300, check=False)
    if everything.returncode != 0:
        for source, target in outputs.items():
            if not gdcmdump_reads(target) and gdcmdump_reads(source):
                new.setdefault(source.name, []).append("gdcmdump cannot read it")
    assert new == {}


def test_a_missing_tool_skips_its_test_or_fails_it_when_peers_are_required(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    for setting in (None, "", "0"):
        if setting is None:
            monkeypatch.delenv(REQUIRE_PEERS, raising=False)
        else:
            monkeypatch.setenv(REQUIRE_PEERS, setting)
        with pytest.raises(pytest.skip.Exception,
                           match=r"^dcmdump is not installed \(Debian package dcmtk\): "
                                 r"run scripts/install-system-deps.sh$"):
            find_tool("dcmdump")
    monkeypatch.setenv(REQUIRE_PEERS, "1")
    with pytest.raises(pytest.fail.Exception,
                       match=r"^gdcminfo is not installed \(Debian package libgdcm-tools\).*"
                             r"DCMANON_REQUIRE_PEERS=1 requires every external tool$"):
        find_tool("gdcminfo")


def test_a_tool_on_the_path_is_found_and_an_unknown_one_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_PEERS, "1")
    monkeypatch.setattr(shutil, "which", lambda name: f"/opt/peers/bin/{name}")
    assert find_tool("dciodvfy") == "/opt/peers/bin/dciodvfy"
    with pytest.raises(ValueError, match="unknown external tool 'dcmqrscp'"):
        find_tool("dcmqrscp")
