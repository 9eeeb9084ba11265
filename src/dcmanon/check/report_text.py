"""Render a :class:`~dcmanon.check.findings.Report`: a terminal summary and JSON.

Found values are masked (first character and length) unless ``show_values`` is set, and so are
the file and folder names that carry identifiers. See :mod:`dcmanon.check.report_html` for the HTML
page.
"""

from __future__ import annotations

from typing import Any

from dcmanon._version import __version__
from dcmanon.check.findings import Finding, Report, mask

CATEGORY_HELP = {
    "element": "an identifier of the originals in a top-level element",
    "nested": "an identifier of the originals inside a sequence",
    "private": "an identifier of the originals in a private element",
    "file-meta": "an identifier of the originals in the file meta information",
    "file-name": "an identifier of the originals in a file or folder name",
    "raw-bytes": "an identifier of the originals in the file's bytes, outside any text value",
    "original-date": "a date of the originals in a date element",
    "original-uid": "a UID of the originals in a UID element",
    "pixel-identifier": "an identifier of the originals in text OCR read in the pixels",
    "pixel-text": "text OCR read in the pixels (labels such as R, L, 10 cm excepted)",
    "integrity": "references, grouping or file meta broken by de-identification",
    "unreadable": "a file that could not be read, so was not (fully) checked",
    "name": "a person name",
    "date": "a date in free text",
    "phone": "a telephone number",
    "email": "an e-mail address",
    "id-number": "a social security number",
    "address": "a postal address",
    "private-element": "a private element (content unknown)",
    "identity-not-removed": "PatientIdentityRemoved missing or not YES",
    "burned-in": "pixels that may carry burned-in text",
}
"""What each category means, for the reports."""
TEXT_FINDINGS = 20
"""How many findings the terminal summary lists."""


def shown_value(finding: Finding, show_values: bool) -> str:
    """The finding's value as a report shows it (masked unless ``show_values``)."""
    if not finding.value:
        return ""
    return finding.value if show_values else mask(finding.value)


def finding_dict(report: Report, finding: Finding, show_values: bool) -> dict[str, Any]:
    """One finding as JSON-ready fields (``frame`` and ``box`` [x, y, width, height] for text
    read in the pixels)."""
    out: dict[str, Any] = {
        "category": finding.category,
        "file": report.shown_path(finding.file, show_values),
        "element": finding.element,
        "kind": finding.kind,
        "value": shown_value(finding, show_values),
        "message": finding.message,
    }
    if finding.frame is not None:
        out["frame"] = finding.frame
    if finding.box is not None:
        out["box"] = list(finding.box)
    return out


def place(finding: Finding) -> str:
    """The element, with the frame and box of text read in the pixels."""
    where = finding.element
    if finding.frame is not None:
        where += f" frame {finding.frame}"
    if finding.box is not None:
        x, y, w, h = finding.box
        where += f" at x={x} y={y} ({w}x{h})"
    return where


def report_dict(report: Report, show_values: bool = False) -> dict[str, Any]:
    """The whole report as a JSON-ready dictionary.

    Examples
    --------
    >>> from dcmanon.check.findings import Finding, Report
    >>> report = Report("scan")
    >>> report.add(Finding("name", "a.dcm", "(0010,0010) PatientName", "name", "Doe^John"))
    >>> report_dict(report)["findings"][0]["value"]
    'D… (8 chars)'
    """
    return {
        "tool": "dcmanon",
        "version": __version__,
        "command": report.command,
        "verdict": "PASS" if report.passed else "FAIL",
        "passed": report.passed,
        "files_checked": report.files_checked,
        "findings_total": report.total,
        "by_category": dict(report.by_category.most_common()),
        "by_element": dict(report.by_element.most_common()),
        "findings": [finding_dict(report, f, show_values) for f in report.findings],
        "findings_listed": len(report.findings),
        "images": [{"file": report.shown_path(t.file, show_values), "frame": t.frame,
                    "blanked": [list(b) for b in t.blanked],
                    "text": [list(b) for b in t.text]} for t in report.thumbnails],
        "images_left_out": report.thumbnails_left_out,
        "values": "shown" if show_values else "masked",
        "ignored_categories": sorted(report.ignored),
        "notes": list(report.notes),
    }


def render_text(report: Report, show_values: bool = False, limit: int = TEXT_FINDINGS) -> str:
    """A terminal summary: verdict, counts by category and element, the first findings."""
    verdict = "PASS" if report.passed else "FAIL"
    lines = [f"dcmanon {report.command}: {verdict} - {report.total} finding(s) in "
             f"{report.files_checked} file(s)"]
    if report.by_category:
        lines.append("  by category:")
        width = max(len(c) for c in report.by_category)
        lines.extend(f"    {c:<{width}}  {n:>6}  {CATEGORY_HELP.get(c, '')}"
                     for c, n in report.by_category.most_common())
        lines.append("  by element (most frequent):")
        lines.extend(f"    {n:>6}  {e}" for e, n in report.by_element.most_common(10))
        shown = report.findings[:limit]
        lines.append(f"  findings (first {len(shown)} of {report.total}):")
        for f in shown:
            where = " ".join(p for p in (report.shown_path(f.file, show_values), place(f)) if p)
            value = shown_value(f, show_values)
            lines.append(f"    [{f.category}] {where}: {f.message}" +
                         (f" ({f.kind}: {value})" if value else ""))
    lines.extend(f"  note: {note}" for note in report.notes)
    if report.ignored:
        lines.append(f"  not counted: {', '.join(sorted(report.ignored))}")
    return "\n".join(lines)
