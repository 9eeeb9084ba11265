"""The HTML report: one self-contained page (inline style, no script, no network).

A Content-Security-Policy forbids every fetch, so the page shows the same thing offline, in a
mail attachment or on an air-gapped workstation. Values are masked as in the other reports.
With ``--ocr``, the images whose pixels were cleaned or hold text are shown as small pictures
embedded in the page (``data:`` URIs, the only images the policy allows): the output, with the
blanked regions outlined in cyan and the text left in magenta; the original beside it only when
values are shown.
"""

from __future__ import annotations

import base64
import datetime as dt
from html import escape

from dcmanon._version import __version__
from dcmanon.check.findings import Report, Thumbnail
from dcmanon.check.report_text import CATEGORY_HELP, place, shown_value

HTML_FINDINGS = 1000
"""How many findings the page lists (all are counted)."""

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1180px;
color:#1d1d1f;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em}
.verdict{font-size:2.2em;font-weight:700;padding:.35em .7em;border-radius:.3em;display:inline-block}
.pass{background:#dff5e1;color:#0f5b1a;border:2px solid #2e8b3a}
.fail{background:#fde2e1;color:#8a1410;border:2px solid #c62828}
.summary{display:flex;gap:2.5em;margin:1em 0}.summary div{font-size:1.05em}
.summary b{display:block;font-size:1.8em}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.95em}.muted{color:#666;font-size:.9em}table.counts{width:auto;min-width:50%}
td code,td.v{white-space:nowrap}
.thumbs{display:flex;flex-wrap:wrap;gap:1em}.thumb{margin:0;font-size:.85em;max-width:540px}
.thumb img{display:inline-block;margin-right:4px;background:#000}
.key{display:inline-block;width:1em;height:.8em;border:2px solid;vertical-align:middle}
"""


def render_html(report: Report, show_values: bool = False,
                now: dt.datetime | None = None) -> str:
    """The report as one self-contained HTML page.

    Elements a reader (or a test) can look for: ``#verdict`` (PASS or FAIL), ``#total``,
    ``#files``, the tables ``#by-category``, ``#by-element`` and ``#findings``, and
    ``#images`` (``figure.thumb`` elements, each with ``img.output`` and, with
    ``show_values``, ``img.original``).
    """
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    verdict = "PASS" if report.passed else "FAIL"
    title = f"dcmanon {report.command} report: {verdict}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        'style-src \'unsafe-inline\'; img-src data:">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>dcmanon {escape(report.command)} report</h1>",
        f'<p class="muted">dcmanon {escape(__version__)}, {escape(stamp)}; values are '
        f'{"shown" if show_values else "masked (first character and length)"}.</p>',
        f'<div id="verdict" class="verdict {verdict.lower()}">{verdict}</div>',
        '<div class="summary">',
        f'<div>findings<b id="total">{report.total}</b></div>',
        f'<div>files checked<b id="files">{report.files_checked}</b></div>',
        f'<div>categories<b id="categories">{len(report.by_category)}</b></div>',
        "</div>",
    ]
    parts.extend(_counts_by_category(report))
    parts.extend(_counts_by_element(report))
    parts.extend(_findings(report, show_values))
    parts.extend(_pictures(report, show_values))
    if report.notes or report.ignored:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f"<li>{escape(n)}</li>" for n in report.notes)
        if report.ignored:
            parts.append(f"<li>Not counted: {escape(', '.join(sorted(report.ignored)))}</li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _counts_by_category(report: Report) -> list[str]:
    rows = [f'<tr data-category="{escape(c)}"><td><code>{escape(c)}</code></td>'
            f'<td class="n">{n}</td><td>{escape(CATEGORY_HELP.get(c, ""))}</td></tr>'
            for c, n in report.by_category.most_common()]
    body = "\n".join(rows) or '<tr><td colspan="3">nothing found</td></tr>'
    return ["<h2>Findings by category</h2>",
            '<table id="by-category" class="counts"><thead><tr><th>category</th><th>count</th>'
            f"<th>meaning</th></tr></thead><tbody>\n{body}\n</tbody></table>"]


def _counts_by_element(report: Report) -> list[str]:
    rows = [f'<tr><td>{escape(e)}</td><td class="n">{n}</td></tr>'
            for e, n in report.by_element.most_common()]
    body = "\n".join(rows) or '<tr><td colspan="2">nothing found</td></tr>'
    return ["<h2>Findings by element</h2>",
            '<table id="by-element" class="counts"><thead><tr><th>element</th><th>count</th>'
            f"</tr></thead><tbody>\n{body}\n</tbody></table>"]


def _findings(report: Report, show_values: bool) -> list[str]:
    listed = report.findings[:HTML_FINDINGS]
    rows = [f"<tr><td><code>{escape(f.category)}</code></td>"
            f"<td>{escape(report.shown_path(f.file, show_values))}</td>"
            f"<td>{escape(place(f))}</td><td>{escape(f.kind)}</td>"
            f'<td class="v">{escape(shown_value(f, show_values))}</td>'
            f"<td>{escape(f.message)}</td></tr>"
            for f in listed]
    heading = f"<h2>Findings ({len(listed)} listed of {report.total})</h2>"
    if not rows:
        return [heading, '<p id="findings">None.</p>']
    return [heading,
            '<table id="findings"><thead><tr><th>category</th><th>file</th><th>element</th>'
            "<th>kind</th><th>value</th><th>what</th></tr></thead><tbody>\n" +
            "\n".join(rows) + "\n</tbody></table>"]


def _pictures(report: Report, show_values: bool) -> list[str]:
    if not report.thumbnails and not report.thumbnails_left_out:
        return []
    shown = len(report.thumbnails)
    compared = report.command == "check"  # scan has no originals: nothing blanked is known
    legend = ['<span class="key" style="border-color:#0ff"></span> regions blanked (where the '
              "output's pixels differ from the original's) &nbsp; "] if compared else []
    legend.append('<span class="key" style="border-color:#f0f"></span> text read by OCR in '
                  "the output")
    if show_values:
        legend.append(". The original is shown on the right." if compared else ".")
    else:
        legend.append(", covered" + ("; the originals' pixels are not shown" if compared
                                     else "") + " (--show-values shows them).")
    parts = [f"<h2>Images ({shown} shown of {shown + report.thumbnails_left_out})</h2>",
             '<p class="muted">' + "".join(legend) + "</p>"]
    if report.thumbnails_left_out:
        parts.append(f'<p id="images-left-out">{report.thumbnails_left_out} more image(s) '
                     "not shown (see the JSON report's images).</p>")
    parts.append('<div id="images" class="thumbs">')
    parts.extend(_figure(report, t, show_values, compared) for t in report.thumbnails)
    parts.append("</div>")
    return parts


def _figure(report: Report, thumb: Thumbnail, show_values: bool, compared: bool) -> str:
    name = escape(report.shown_path(thumb.file, show_values))
    images = [_img("output", thumb.png, thumb, f"output {name}, frame {thumb.frame}")]
    if show_values and thumb.original_png is not None:
        images.append(_img("original", thumb.original_png, thumb,
                           f"original of {name}, frame {thumb.frame}"))
    blanked = f"{len(thumb.blanked)} region(s) blanked, " if compared else ""
    return (f'<figure class="thumb" data-blanked="{len(thumb.blanked)}" '
            f'data-text="{len(thumb.text)}">' + "".join(images) +
            f"<figcaption>{name}, frame {thumb.frame}: {blanked}{len(thumb.text)} line(s) of "
            "text read</figcaption></figure>")


def _img(kind: str, png: bytes, thumb: Thumbnail, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<img class="{kind}" width="{thumb.width}" height="{thumb.height}" alt="{alt}" '
            f'src="data:image/png;base64,{data}">')
