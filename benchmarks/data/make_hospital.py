"""Build the Lindehoven hospital set's documents from their Markdown sources, deterministically.

The fourteen protocols of the fictional "Ziekenhuis Lindehoven" are written once, as Markdown, in
``benchmarks/data/hospital/src/``. This script writes each to ``benchmarks/data/hospital/docs/`` in
the format it is assigned below (Markdown, HTML, PDF via reportlab, DOCX via python-docx), so the
set exercises every loader. The output is byte-identical between runs (PDF ``invariant`` mode, fixed
DOCX core properties and zip timestamps), and the generated files are committed next to the sources.

    .venv/bin/python benchmarks/data/make_hospital.py          # (re)write docs/
    .venv/bin/python benchmarks/data/make_hospital.py --check  # exit 1 when docs/ is out of date

Only the small Markdown subset the sources use is understood: ``#``/``##`` headings, paragraphs,
``1.`` numbered lists, ``-`` bullet lists and pipe tables (first row = header).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import io
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent / "hospital"
SRC = HERE / "src"
DOCS = HERE / "docs"

# Which format each protocol is published in (all four formats present; two protocols in English).
FORMATS: dict[str, str] = {
    "decubitus-preventie": "md",
    "valpreventie": "md",
    "perifeer-infuus": "md",
    "delier": "md",
    "vroegsignalering-ews": "html",
    "isolatie-maatregelen": "html",
    "anaphylaxis": "html",
    "insuline-hypoglykemie": "pdf",
    "pijn-paracetamol": "pdf",
    "tromboseprofylaxe-enoxaparine": "pdf",
    "ondervoeding-snaq": "docx",
    "blaaskatheter": "docx",
    "bloedtransfusie": "docx",
    "nasogastric-tube": "docx",
}
ENGLISH = {"anaphylaxis", "nasogastric-tube"}
FIXED_TIME = dt.datetime(2026, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Block:
    kind: str  # "h1" | "h2" | "p" | "ol" | "ul" | "table"
    items: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()

    @property
    def text(self) -> str:
        return self.items[0]


_OL = re.compile(r"^\d+\.\s+")
_TABLE_SEP = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def parse(text: str) -> list[Block]:
    """The sources' Markdown subset as blocks."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line:
            i += 1
        elif line.startswith("## "):
            blocks.append(Block("h2", (line[3:].strip(),)))
            i += 1
        elif line.startswith("# "):
            blocks.append(Block("h1", (line[2:].strip(),)))
            i += 1
        elif line.startswith("|"):
            rows: list[tuple[str, ...]] = []
            while i < len(lines) and lines[i].startswith("|"):
                if not _TABLE_SEP.match(lines[i].strip()):
                    rows.append(tuple(c.strip() for c in lines[i].strip().strip("|").split("|")))
                i += 1
            blocks.append(Block("table", rows=tuple(rows)))
        elif _OL.match(line) or line.startswith("- "):
            kind = "ol" if _OL.match(line) else "ul"
            items: list[str] = []
            while i < len(lines) and lines[i].strip():
                cur = lines[i].rstrip()
                if (kind == "ol" and _OL.match(cur)) or (kind == "ul" and cur.startswith("- ")):
                    items.append(_OL.sub("", cur) if kind == "ol" else cur[2:])
                else:
                    items[-1] += " " + cur.strip()
                i += 1
            blocks.append(Block(kind, tuple(items)))
        else:
            para: list[str] = []
            while (
                i < len(lines)
                and lines[i].strip()
                and not lines[i].startswith(("#", "|", "- "))
                and not _OL.match(lines[i])
            ):
                para.append(lines[i].strip())
                i += 1
            blocks.append(Block("p", (" ".join(para),)))
    return blocks


def to_html(blocks: list[Block], lang: str) -> bytes:
    e = html.escape
    title = next(b.text for b in blocks if b.kind == "h1")
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "</head>",
        "<body>",
        "<main>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2"):
            out.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{e(b.text)}</p>")
        elif b.kind in ("ol", "ul"):
            out.append(f"<{b.kind}>" + "".join(f"<li>{e(it)}</li>" for it in b.items) + f"</{b.kind}>")
        else:
            head, *body = b.rows
            out.append("<table>")
            out.append("<thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr></thead>")
            out.append("<tbody>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in body]
            out.append("</tbody>")
            out.append("</table>")
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out).encode("utf-8")


def to_pdf(blocks: list[Block], lang: str) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=8.5, leading=10.5)
    e = html.escape
    title = next(b.text for b in blocks if b.kind == "h1")
    story: list[object] = []
    for b in blocks:
        if b.kind == "h1":
            story.append(Paragraph(e(b.text), styles["Title"]))
        elif b.kind == "h2":
            story.append(Paragraph(e(b.text), styles["Heading2"]))
        elif b.kind == "p":
            story.append(Paragraph(e(b.text), styles["BodyText"]))
        elif b.kind in ("ol", "ul"):
            items = [ListItem(Paragraph(e(it), styles["BodyText"])) for it in b.items]
            if b.kind == "ol":
                story.append(ListFlowable(items, bulletType="1", bulletFormat="%s."))
            else:
                story.append(ListFlowable(items, bulletType="bullet", start="\u2022"))
        else:
            width = A4[0] - 4 * cm
            ncol = len(b.rows[0])
            data = [[Paragraph(e(c), cell) for c in r] for r in b.rows]
            t = Table(data, colWidths=[width / ncol] * ncol, repeatRows=1)
            t.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story += [Spacer(1, 4), t, Spacer(1, 6)]
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        title=title,
        author="Ziekenhuis Lindehoven (fictief)",
        lang=lang,
        invariant=1,
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=2 * cm,
        bottomMargin=2 * cm,
    )
    doc.build(story)
    return buf.getvalue()


def to_docx(blocks: list[Block], lang: str) -> bytes:
    import docx

    d = docx.Document()
    cp = d.core_properties
    cp.title = next(b.text for b in blocks if b.kind == "h1")
    cp.author = "Ziekenhuis Lindehoven (fictief)"
    cp.last_modified_by = cp.author
    cp.language = lang
    cp.created = cp.modified = cp.last_printed = FIXED_TIME
    cp.revision = 1
    for b in blocks:
        if b.kind == "h1":
            d.add_heading(b.text, level=1)
        elif b.kind == "h2":
            d.add_heading(b.text, level=2)
        elif b.kind == "p":
            d.add_paragraph(b.text)
        elif b.kind in ("ol", "ul"):
            style = "List Number" if b.kind == "ol" else "List Bullet"
            for it in b.items:
                d.add_paragraph(it, style=style)
        else:
            t = d.add_table(rows=len(b.rows), cols=len(b.rows[0]))
            t.style = "Table Grid"
            for r, row in enumerate(b.rows):
                for c, val in enumerate(row):
                    t.cell(r, c).text = val
    buf = io.BytesIO()
    d.save(buf)
    return _fixed_zip(buf.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with fixed member timestamps and order, so the file is byte-identical per run."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(name))
    return out.getvalue()


def build() -> dict[str, bytes]:
    """File name → bytes of every published document."""
    files: dict[str, bytes] = {}
    for slug, fmt in sorted(FORMATS.items()):
        text = (SRC / f"{slug}.md").read_text(encoding="utf-8")
        lang = "en" if slug in ENGLISH else "nl"
        if fmt == "md":
            files[f"{slug}.md"] = text.encode("utf-8")
            continue
        blocks = parse(text)
        files[f"{slug}.{fmt}"] = {"html": to_html, "pdf": to_pdf, "docx": to_docx}[fmt](blocks, lang)
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare with docs/; exit 1 when different")
    args = ap.parse_args(argv)
    files = build()
    stale = sorted(n for n, data in files.items() if not (DOCS / n).exists() or (DOCS / n).read_bytes() != data)
    extra = sorted(p.name for p in DOCS.glob("*") if p.name not in files) if DOCS.exists() else []
    if args.check:
        for n in stale:
            print(f"out of date: docs/{n}")
        for n in extra:
            print(f"not generated: docs/{n}")
        return 1 if stale or extra else 0
    DOCS.mkdir(parents=True, exist_ok=True)
    for n in extra:
        (DOCS / n).unlink()
    for n, data in files.items():
        (DOCS / n).write_bytes(data)
    print(f"wrote {len(files)} documents to {DOCS} ({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
