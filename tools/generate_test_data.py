"""Generate the project's own test data (``tests/data/``) from the material in ../shared.

Inputs (not part of the project, never committed as they are):

* ``../shared/conformance/microsoft/`` — Microsoft's DICOM anonymizer conformance material:
  ``vectors/*.json`` (541 cases), ``configuration.json`` and ``data/`` (sample, input and
  expected DICOM files, test configurations);
* ``../shared/standard/ps315_e1_1.json`` and ``ps315_safe_private.json`` — DICOM PS3.15
  Tables E.1-1 and E.3.10-1;
* ``../shared/pixels/`` — the stock region libraries users already have: RSNA CTP's
  ``DicomPixelAnonymizer.script`` and pydicom/deid's recipes.

Outputs, each folder with a ``PROVENANCE.md`` (sources, their SHA-256, upstream, license):

* ``tests/data/microsoft/vectors.json`` — every case, by vector file, keeping only the fields
  the tests read (``CASE_FIELDS``; add a field there when a test needs it) and the case's
  origin; ``configuration.json`` and ``data/`` copied byte for byte (MIT license);
* ``tests/data/standard/ps315_e1_1.json`` — every row's tag, keyword, name, VR and codes, and
  the option columns; ``ps315_safe_private.json`` — (group, private creator, low byte) rows;
* ``tests/data/pixels/`` — the CTP script and deid recipes copied byte for byte (both licenses
  permit redistribution with their notice, recorded in the PROVENANCE), so the tests prove
  that dcmanon parses the stock libraries completely in a clone that has nothing beside it.

The output is deterministic: the same inputs give the same bytes (tests/test_test_data.py
checks the committed copy against a fresh run when ../shared is there).

Run: ``.venv/bin/python tools/generate_test_data.py [--shared ../shared] [--out tests/data]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = "tools/generate_test_data.py"
FOLDERS = ("microsoft", "standard", "pixels")
COMMAND = "python tools/generate_test_data.py [--shared ../shared] [--out tests/data]"
REFERENCE_REPO = "microsoft/Tools-for-Health-Data-Anonymization"
REFERENCE_LICENSE = "MIT"
# Fields of a case the tests read, and its provenance (origin, source); prose notes and
# expectations no test checks are dropped.
CASE_FIELDS = frozenset({
    "argv", "ciphertext_base64", "config", "config_base", "config_file", "context",
    "does_not_match", "expected", "expected_bytes_hex", "expected_dataset", "expected_diff",
    "expected_effective_settings", "expected_effective_settings_rule2",
    "expected_error_if_validating", "expected_exit_code", "expected_file", "expected_files",
    "expected_fragments_hex", "expected_has_timezone", "expected_located",
    "expected_output_written", "expected_plaintext_utf8", "expected_range",
    "expected_range_number", "expected_shift_days", "expected_shift_days_all",
    "expected_string", "expected_string_engine_mode", "expected_unit", "expected_values",
    "expected_visited_count", "function", "has_timezone", "id", "input", "input_bytes_hex",
    "input_dataset", "input_file", "input_fragments_hex", "input_fragments_utf8",
    "input_text_utf8", "input_values", "key_bits_utf8", "kind", "level", "matches",
    "max_decimal_places", "method", "options", "origin", "pre_visited", "rule_json",
    "selector", "settings", "source", "tag", "value_type", "vr",
})
E1_1_FIELDS = ("tag", "keyword", "name", "vr", "basic")
MIT_TEXT = """\
Copyright (c) Microsoft Corporation.

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def _relative(path: Path, shared: Path) -> str:
    """``../shared/...``: where the file is for any developer, not on this machine."""
    return "../shared/" + path.relative_to(shared).as_posix()


def _reference(shared: Path, out: Path) -> list[tuple[str, str, str]]:
    """Write ``out/microsoft``; return (written, source, source SHA-256) for each file."""
    source_dir = shared / "conformance" / "microsoft"
    target = out / "microsoft"
    files: list[tuple[str, str, str]] = []
    upstream: dict[str, Any] | None = None
    cases: dict[str, list[dict[str, Any]]] = {}
    sources = []
    for path in sorted((source_dir / "vectors").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        # Every vector file names the same upstream commit; a mix would be unrecordable.
        if upstream is None:
            upstream = data["reference"]
        assert data["reference"] == upstream, f"{path.name}: another upstream commit"
        cases[path.name] = [{k: v for k, v in case.items() if k in CASE_FIELDS}
                            for case in data["cases"]]
        sources.append({"file": _relative(path, shared), "sha256": _sha256(path)})
    assert upstream is not None, f"no vectors under {source_dir}"
    readme = (source_dir / "README.md").read_text(encoding="utf-8")
    data_readme = (source_dir / "data" / "README.md").read_text(encoding="utf-8")
    # The license and commit are recorded from the material's own README files.
    assert upstream["commit"] in readme and upstream["repo"] == REFERENCE_REPO
    assert f"{REFERENCE_LICENSE} licence" in data_readme and upstream["commit"] in data_readme
    header = {"generated_by": GENERATOR, "license": f"{REFERENCE_LICENSE}, (c) Microsoft "
              "Corporation (see PROVENANCE.md)", "upstream": upstream, "sources": sources}
    _write_json(target / "vectors.json", {**header, "cases": cases})
    for source in sources:
        files.append(("vectors.json", source["file"], source["sha256"]))
    copied = [source_dir / "configuration.json"]
    copied += sorted(p for p in (source_dir / "data").rglob("*")
                     if p.is_file() and p.name != "README.md")  # the README is prose
    for path in copied:
        name = path.relative_to(source_dir).as_posix()
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(path.read_bytes())
        files.append((name, _relative(path, shared), _sha256(path)))
    _provenance(target, "Microsoft DICOM anonymizer: conformance test data", [
        f"Upstream: `{upstream['repo']}`, DICOM part, commit `{upstream['commit']}` "
        f"(fo-dicom {upstream['fo_dicom']}).",
        f"License: {REFERENCE_LICENSE} (text below). The DICOM and configuration files are "
        "copied byte for byte; `vectors.json` holds the cases of the 14 vector files (extracted "
        "from the upstream unit tests and expected files, or derived from its source code: "
        "each case's `origin`), reduced to the fields the tests read, keys sorted.",
    ], files, license_text=MIT_TEXT)
    return files


def _standard(shared: Path, out: Path) -> list[tuple[str, str, str]]:
    """Write ``out/standard``; return (written, source, source SHA-256) for each file."""
    source_dir = shared / "standard"
    target = out / "standard"
    e1_path = source_dir / "ps315_e1_1.json"
    e1 = json.loads(e1_path.read_text(encoding="utf-8"))
    option_keys = [c["key"] for c in e1["columns"] if c["key"] != "basic"]
    rows = []
    for row in e1["rows"]:
        derived = {k: row[k] for k in E1_1_FIELDS}
        derived["options"] = {k: row[k] for k in option_keys if row[k]}
        rows.append(derived)
    rows.sort(key=lambda r: r["tag"])
    assert len(rows) == e1["row_count"] == len({r["tag"] for r in rows})
    _write_json(target / "ps315_e1_1.json", {
        "table": e1["table"], "edition": e1["edition"],
        "acknowledgement": e1["acknowledgement"], "generated_by": GENERATOR,
        "source": {"file": _relative(e1_path, shared), "sha256": _sha256(e1_path),
                   **{k: e1["source"][k] for k in ("standard_page", "standard_page_sha256",
                                                   "transcribed_from")}},
        "columns": [{k: c[k] for k in ("key", "name", "section", "cid7050_code")}
                    for c in e1["columns"]],
        "rows": rows,
    })
    safe_path = source_dir / "ps315_safe_private.json"
    safe = json.loads(safe_path.read_text(encoding="utf-8"))
    assert safe["edition"] == e1["edition"]
    safe_rows = sorted({(r["group"].upper(), r["private_creator"].strip(),
                         r["element_low_byte"].upper()) for r in safe["rows"]})
    assert len(safe_rows) == safe["row_count"]
    _write_json(target / "ps315_safe_private.json", {
        "table": safe["table"], "edition": safe["edition"],
        "acknowledgement": safe["acknowledgement"], "generated_by": GENERATOR,
        "source": {"file": _relative(safe_path, shared), "sha256": _sha256(safe_path),
                   **{k: safe["source"][k] for k in ("standard_page", "standard_page_sha256",
                                                     "transcribed_from")}},
        "row_fields": ["group", "private_creator", "element_low_byte"],
        "rows": [list(r) for r in safe_rows],
    })
    readme = (source_dir / "README.md").read_text(encoding="utf-8")
    # The edition and acknowledgement are recorded from the tables' own README.
    assert e1["edition"] in readme and e1["acknowledgement"] in readme
    files = [("ps315_e1_1.json", _relative(e1_path, shared), _sha256(e1_path)),
             ("ps315_safe_private.json", _relative(safe_path, shared), _sha256(safe_path))]
    _provenance(target, "DICOM PS3.15 Annex E tables", [
        f"Edition: {e1['edition']}. {e1['acknowledgement']}.",
        "Derived: Table E.1-1 as tag, keyword, name, VR, basic code and the non-empty option "
        "codes of each row (keywords and VRs were added to the table by the upstream "
        "transcription, from pydicom's dictionary), and the option columns; Table E.3.10-1 "
        "as (group, private creator, element low byte). Rows sorted, keys sorted.",
        "The standard's pages and their SHA-256, and the transcription they come through, "
        "are in each file's `source`.",
    ], files)
    return files


PIXEL_LIBRARIES = ("ctp/DicomPixelAnonymizer.script", "deid/deid.dicom",
                   "deid/deid.dicom.ultrasound", "deid/deid.dicom.xray.chest")
CTP_LICENSE_NOTICE = """\
RSNA Public License: the CTP software and its files are distributed by the Radiological
Society of North America under its public license, which permits redistribution with this
notice. See http://mirc.rsna.org/rsnapubliclicense.pdf.
"""


def _pixels(shared: Path, out: Path) -> list[tuple[str, str, str]]:
    """Write ``out/pixels``; return (written, source, source SHA-256) for each file."""
    source_dir = shared / "pixels"
    target = out / "pixels"
    readme = (source_dir / "README.md").read_text(encoding="utf-8")
    files = []
    for name in PIXEL_LIBRARIES:
        path = source_dir / name
        # The upstream commit of each library is recorded from the material's own README.
        assert f"`{name}`" in readme, f"{name}: not described in {source_dir}/README.md"
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(path.read_bytes())
        files.append((name, _relative(path, shared), _sha256(path)))
    deid_license = (source_dir / "deid" / "LICENSE").read_text(encoding="utf-8")
    assert "Permission is hereby granted" in deid_license
    ctp_commit = re.search(r"CTP, `[^`]+`, commit (\w+) \(([^)]+)\)", readme)
    deid_commit = re.search(r"deid, `[^`]+`, commit (\w+) \(([^)]+)\)", readme)
    assert ctp_commit and deid_commit, "upstream commits not found in ../shared/pixels/README.md"
    _provenance(target, "Stock region libraries for burned-in text", [
        "CTP: johnperry/CTP `source/files/scripts/DicomPixelAnonymizer.script`, "
        f"commit `{ctp_commit[1]}` ({ctp_commit[2]}). "
        "License: RSNA Public License (redistribution permitted with its notice, below).",
        f"deid: `deid/data/`, commit `{deid_commit[1]}` ({deid_commit[2]}). License: MIT "
        "(text below).",
        "Copied byte for byte: the tests parse them as users' files would be parsed.",
    ], files, license_text=CTP_LICENSE_NOTICE + "\n" + deid_license)
    return files


def _provenance(target: Path, title: str, lines: list[str],
                files: list[tuple[str, str, str]], license_text: str = "") -> None:
    text = [f"# {title}", "", f"Generated by `{GENERATOR}`; do not edit by hand.",
            f"Regenerate: `{COMMAND}`.", "", *lines, "", "| file | source | source SHA-256 |",
            "|---|---|---|"]
    text += [f"| `{name}` | `{source}` | `{digest}` |" for name, source, digest in files]
    if license_text:
        text += ["", "## License", "", "```", license_text.rstrip("\n"), "```"]
    (target / "PROVENANCE.md").write_text("\n".join(text) + "\n", encoding="utf-8")


def generate(shared: Path, out: Path) -> list[Path]:
    """Write the test data under ``out`` (its two folders replaced); return the files."""
    for name in FOLDERS:
        if (out / name).exists():
            shutil.rmtree(out / name)
    _reference(shared, out)
    _standard(shared, out)
    _pixels(shared, out)
    return sorted(p for name in FOLDERS for p in (out / name).rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data")
    args = parser.parse_args()
    paths = generate(args.shared, args.out)
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files under {args.out} ({size // 1024} KB)")


if __name__ == "__main__":
    main()
