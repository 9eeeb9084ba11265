"""Hostile inputs (issue 11 §5): each fails clearly, alone, in bounded memory.

A deflate bomb (a small deflated file that inflates to gigabytes), sequences nested
thousands deep, and keys too short to keep keyed pseudonyms from being guessed.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dcmanon import Anonymizer, parse_config
from dcmanon.check.scan import scan
from dcmanon.check.verify import check
from dcmanon.cli import main
from dcmanon.io.files import read_dicom

KEY = "hostile-input-test-secret-0123456789"
SECRET_NAME = "Hostile^Patient"
SECRET_ID = "HOSTILE-ID-4711"
SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"
CONTENT_SEQUENCE = "(0040,A730) ContentSequence"
MiB = 1 << 20


def _anonymizer(**options: object) -> Anonymizer:
    options.setdefault("pixels", "off")  # hostile headers are the subject, not OCR
    return Anonymizer(parse_config({"profile": "basic"}, secret=KEY), **options)  # type: ignore[arg-type]


def _meta(syntax: str, instance: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS
    meta.MediaStorageSOPInstanceUID = instance
    meta.TransferSyntaxUID = syntax
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_file_meta_info(fp, meta, enforce_standard=True)
    return b"\0" * 128 + b"DICM" + fp.getvalue()


def _head(instance: str, *, implicit: bool = False) -> bytes:
    """A few top-level elements, explicit VR little endian, with a name and an ID (PHI)."""
    ds = Dataset()
    ds.SOPClassUID = SOP_CLASS
    ds.SOPInstanceUID = instance
    ds.StudyInstanceUID = instance + ".1"
    ds.SeriesInstanceUID = instance + ".2"
    ds.Modality = "OT"
    ds.PatientName = SECRET_NAME
    ds.PatientID = SECRET_ID
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def write_bomb(path: Path, inflated: int, instance: str = "2.25.1001") -> Path:
    """A deflated file whose dataset holds an OB value of zeros, ``inflated`` bytes in all.

    One mebibyte of zeros is deflated once, after a full flush (so that it refers to nothing
    before it), and that block is written as many times as needed: fast, and never more than
    a mebibyte in memory.
    """
    head = _head(instance)
    value = inflated - len(head) - 12
    value -= value % 2
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    with path.open("wb") as out:
        out.write(_meta(DeflatedExplicitVRLittleEndian, instance))
        out.write(compressor.compress(head + b"\xe0\x7f\x10\x00OB\0\0" + struct.pack("<L", value)))
        out.write(compressor.flush(zlib.Z_FULL_FLUSH))
        block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
        for _ in range(value // MiB):
            out.write(block)
        out.write(compressor.compress(bytes(value % MiB)) + compressor.flush())
    return path


def write_deflated(path: Path, instance: str = "2.25.1002") -> Path:
    """An ordinary small deflated file."""
    body = _head(instance) + b"\xe0\x7f\x10\x00OB\0\0" + struct.pack("<L", 4096) + bytes(4096)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    path.write_bytes(_meta(DeflatedExplicitVRLittleEndian, instance)
                     + compressor.compress(body) + compressor.flush())
    return path


def write_nested(path: Path, depth: int, instance: str = "2.25.2001", *,
                 implicit: bool = False) -> Path:
    """``depth`` ContentSequences, each in the only item of the one above (undefined lengths:
    pydicom's reader must follow them all), little endian, encoded by hand."""
    vr = b"" if implicit else b"SQ\0\0"
    opening = (b"\x40\x00\x30\xa7" + vr + b"\xff\xff\xff\xff"  # (0040,A730), undefined length
               b"\xfe\xff\x00\xe0\xff\xff\xff\xff")             # item, undefined length
    closing = (b"\xfe\xff\x0d\xe0\0\0\0\0"                        # item delimiter
               b"\xfe\xff\xdd\xe0\0\0\0\0")                       # sequence delimiter
    # (0008,0060) Modality inside the deepest item
    leaf = b"\x08\x00\x60\x00" + (b"\x02\0\0\0" if implicit else b"CS\x02\x00") + b"OT"
    syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    path.write_bytes(_meta(syntax, instance) + _head(instance, implicit=implicit)
                     + opening * depth + leaf + closing * depth)
    return path


def write_good(path: Path, instance: str = "2.25.3001") -> Path:
    path.write_bytes(_meta(ExplicitVRLittleEndian, instance) + _head(instance))
    return path


def _no_value(message: str) -> None:
    for secret in (SECRET_NAME, SECRET_ID, "Hostile", "4711"):
        assert secret not in message
    assert "please report" not in message
    assert "Recursion" not in message


# --- deflate bomb -----------------------------------------------------------------------


def test_a_deflate_bomb_fails_at_the_limit_and_writes_nothing(tmp_path: Path) -> None:
    bomb = write_bomb(tmp_path / "bomb.dcm", 64 * MiB)
    assert bomb.stat().st_size < MiB
    result = _anonymizer(max_inflated_size=8 * MiB).anonymize_file(bomb, tmp_path / "o.dcm")
    assert result.status == "failed"
    assert result.error_class == "InputError"
    message = result.error or ""
    assert message.startswith(str(bomb))
    assert "inflates to more than 8 MiB" in message
    _no_value(message)
    assert not (tmp_path / "o.dcm").exists()
    assert not list(tmp_path.glob(".dcmanon-*"))


def test_read_dicom_refuses_a_deflate_bomb(tmp_path: Path) -> None:
    from dcmanon.errors import InputError

    bomb = write_bomb(tmp_path / "bomb.dcm", 16 * MiB)
    with pytest.raises(InputError, match="inflates to more than 1 MiB"):
        read_dicom(bomb, max_inflated_size=MiB)
    assert read_dicom(bomb, max_inflated_size=32 * MiB).PatientID == SECRET_ID


def test_a_deflated_file_under_the_limit_is_anonymized(tmp_path: Path) -> None:
    source = write_deflated(tmp_path / "small.dcm")
    for fast in (True, False):
        result = _anonymizer(fast_path=fast).anonymize_file(source, tmp_path / f"o{fast}.dcm")
        assert result.status == "done", result.error
        out = read_dicom(tmp_path / f"o{fast}.dcm")
        assert "PatientName" not in out or str(out.PatientName) != SECRET_NAME
        assert out.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert (tmp_path / "oTrue.dcm").read_bytes() == (tmp_path / "oFalse.dcm").read_bytes()


def test_a_truncated_deflated_file_is_truncated(tmp_path: Path) -> None:
    source = write_deflated(tmp_path / "small.dcm")
    data = source.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:-40])
    result = _anonymizer().anonymize_file(cut, tmp_path / "o.dcm")
    assert result.status == "failed" and "truncated" in (result.error or "")


def test_a_bomb_among_good_files_on_the_command_line(tmp_path: Path) -> None:
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    write_good(source / "a.dcm", "2.25.11")
    write_bomb(source / "b.dcm", 32 * MiB, "2.25.12")
    write_deflated(source / "c.dcm", "2.25.13")
    result = CliRunner(env={"DCMANON_KEY": KEY}).invoke(
        main, ["-I", str(source), "-O", str(out), "--max-inflated-size", "4MiB",
               "--pixels", "off"])
    assert result.exit_code == 1, result.output
    assert (out / "a.dcm").exists() and (out / "c.dcm").exists()
    assert not (out / "b.dcm").exists()
    assert "b.dcm: the deflated dataset inflates to more than 4 MiB" in result.output
    _no_value(result.output)


@pytest.mark.parametrize("text", ["0", "-1", "4 parsecs", "1.5GiB"])
def test_max_inflated_size_must_be_a_size(tmp_path: Path, text: str) -> None:
    result = CliRunner().invoke(main, ["-i", "x.dcm", "-o", str(tmp_path / "o.dcm"),
                                           "--max-inflated-size", text])
    assert result.exit_code == 2
    assert "--max-inflated-size" in result.output


# VmHWM, not getrusage: Linux carries ru_maxrss over from the forking parent on exec.
PEAK_SCRIPT = """
import json, re, sys, time
from dcmanon import Anonymizer, parse_config
anonymizer = Anonymizer(parse_config({"profile": "basic"}, secret="k" * 32))
start = time.perf_counter()
result = anonymizer.anonymize_file(sys.argv[1], sys.argv[2])
seconds = time.perf_counter() - start
status = open("/proc/self/status").read()
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024
print(json.dumps({"status": result.status, "error": result.error, "peak_mb": peak,
                  "seconds": seconds}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_bomb_past_the_default_limit_takes_little_memory(tmp_path: Path) -> None:
    bomb = write_bomb(tmp_path / "bomb.dcm", 10**9)  # 1 MB claiming 1 GB
    assert bomb.stat().st_size < 2 * MiB
    run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(bomb), str(tmp_path / "o.dcm")],
                         capture_output=True, text=True, timeout=300, check=True)
    outcome = json.loads(run.stdout)
    print(outcome)
    assert outcome["status"] == "failed"
    assert "inflates to more than 256 MiB" in outcome["error"]
    assert outcome["peak_mb"] < 500, outcome
    assert not (tmp_path / "o.dcm").exists()


# --- deep nesting -----------------------------------------------------------------------


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("depth", [65, 150, 2000])
@pytest.mark.parametrize("options", [{}, {"fast_path": False}, {"validate_input": True}])
def test_nesting_past_the_limit_fails_naming_the_sequence(tmp_path: Path, depth: int,
                                                          options: dict[str, bool],
                                                          implicit: bool) -> None:
    source = write_nested(tmp_path / "deep.dcm", depth, implicit=implicit)
    result = _anonymizer(**options).anonymize_file(source, tmp_path / "o.dcm")
    assert result.status == "failed"
    assert result.error_class == "InputError"
    message = result.error or ""
    assert message.startswith(str(source)), message
    assert "nested more than 64 levels deep" in message
    assert CONTENT_SEQUENCE in message
    _no_value(message)
    assert not (tmp_path / "o.dcm").exists()


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("options", [{}, {"fast_path": False}])
def test_nesting_at_the_limit_is_anonymized(tmp_path: Path, options: dict[str, bool],
                                            implicit: bool) -> None:
    source = write_nested(tmp_path / "deep.dcm", 64, implicit=implicit)
    result = _anonymizer(**options).anonymize_file(source, tmp_path / "o.dcm")
    assert result.status == "done", result.error


def test_the_nesting_limit_is_configurable(tmp_path: Path) -> None:
    source = write_nested(tmp_path / "deep.dcm", 20)
    for fast in (True, False):
        result = _anonymizer(max_nesting=10, fast_path=fast).anonymize_file(
            source, tmp_path / "o.dcm")
        assert result.status == "failed"
        assert "nested more than 10 levels deep" in (result.error or "")
        assert _anonymizer(max_nesting=20, fast_path=fast).anonymize_file(
            source, tmp_path / f"o{fast}.dcm").status == "done"
    with pytest.raises(ValueError, match="max_nesting"):
        _anonymizer(max_nesting=0)


def test_deep_nesting_in_a_dataset_given_to_the_library() -> None:
    from pydicom.sequence import Sequence

    from dcmanon.errors import InputError

    ds = Dataset()
    ds.PatientID = SECRET_ID
    inner = ds
    for _ in range(70):
        item = Dataset()
        inner.ContentSequence = Sequence([item])
        inner = item
    with pytest.raises(InputError, match=r"nested more than 64 levels deep .*ContentSequence"):
        _anonymizer().anonymize_dataset(ds)


def test_deep_nesting_among_good_files_on_the_command_line(tmp_path: Path) -> None:
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    write_good(source / "a.dcm", "2.25.21")
    write_nested(source / "b.dcm", 2000, "2.25.22")
    write_nested(source / "c.dcm", 30, "2.25.23")
    result = CliRunner(env={"DCMANON_KEY": KEY}).invoke(
        main, ["-I", str(source), "-O", str(out), "--max-nesting", "32"])
    assert result.exit_code == 1, result.output
    assert (out / "a.dcm").exists() and (out / "c.dcm").exists()
    assert not (out / "b.dcm").exists()
    assert f"b.dcm: sequences nested more than 32 levels deep (at {CONTENT_SEQUENCE})" in (
        result.output)
    _no_value(result.output)


def test_check_and_scan_report_hostile_files_as_unreadable(tmp_path: Path) -> None:
    originals, outputs = tmp_path / "orig", tmp_path / "anon"
    originals.mkdir()
    outputs.mkdir()
    write_good(originals / "a.dcm", "2.25.31")
    for folder in (originals, outputs):
        write_nested(folder / "deep.dcm", 2000, "2.25.32")
        write_nested(folder / "deeper.dcm", 100, "2.25.33")
    write_bomb(outputs / "bomb.dcm", 8 * MiB, "2.25.34")
    report = scan(outputs)
    unreadable = {f.file for f in report.findings if f.category == "unreadable"}
    assert {"deep.dcm", "deeper.dcm"} <= unreadable
    report = check(originals, outputs)
    unreadable = {f.file for f in report.findings if f.category == "unreadable"}
    assert {"deep.dcm", "deeper.dcm"} <= unreadable
    for command in (["scan", str(outputs)], ["check", "--original", str(originals),
                                               "--anonymized", str(outputs)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output


# --- weak keys --------------------------------------------------------------------------


def test_weak_keys_are_named_never_shown() -> None:
    config = parse_config({
        "profile": "basic",
        "parameters": {"cryptoHashKey": "short-hash-key"},
        "rules": [{"tag": "PatientID", "method": "cryptoHash"},
                  {"tag": "StudyDate", "method": "dateShift", "params": {"dateShiftKey": "abc"}},
                  {"tag": "AccessionNumber", "method": "cryptoHash",
                   "params": {"cryptoHashKey": "x" * 32}}],
    }, secret="tiny")
    assert config.weak_keys == ("dateShiftKey of rules[1]", "parameters.cryptoHashKey",
                                "the project secret")
    strong = parse_config({"profile": "basic"}, secret="s" * 32)
    assert strong.weak_keys == ()


def test_the_command_line_warns_about_a_weak_key_once(tmp_path: Path) -> None:
    source = write_good(tmp_path / "a.dcm")
    key_file = tmp_path / "key.txt"
    key_file.write_text("weak-secret\n")
    runner = CliRunner()
    result = runner.invoke(main, ["-i", str(source), "-o", str(tmp_path / "o.dcm"),
                                      "--key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "weak key" in line]
    assert len(warnings) == 1, result.output
    assert "the project secret" in warnings[0] and "32 characters" in warnings[0]
    assert "weak-secret" not in result.output
    result = CliRunner(env={"DCMANON_KEY": "k" * 32}).invoke(
        main, ["-i", str(source), "-o", str(tmp_path / "p.dcm")])
    assert result.exit_code == 0 and "weak key" not in result.output
