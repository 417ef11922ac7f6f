"""Tables (issue 13 item 5): rendered as Markdown by the loaders, rows kept together by the chunker."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.make_docs import SECTIONS_NL, make_docx
from test_chunking import minilm

from ingest.chunking import Chunker, FileTokenCounter
from ingest.loaders.docx import DocxLoader
from ingest.loaders.html import HtmlLoader
from ingest.loaders.odt import OdtLoader
from ingest.loaders.tables import is_markdown_table, markdown_table
from vraagbaak_core.types import Block, ParsedDocument

DOSES = [["Middel", "Dosering", "Interval"], ["Paracetamol", "500 mg", "6 uur"], ["Ibuprofen", "400 mg", "8 uur"]]
MD = "| Middel | Dosering | Interval |\n|---|---|---|\n| Paracetamol | 500 mg | 6 uur |\n| Ibuprofen | 400 mg | 8 uur |"


@pytest.fixture(scope="module")
def counter() -> FileTokenCounter:
    emb = minilm()
    return FileTokenCounter(emb.model_dir, emb.max_tokens)


def test_markdown_table_pads_and_escapes() -> None:
    md = markdown_table([["a", "b|c"], ["1"], [" ", ""], ["x\ny", "z"]])
    assert md == "| a | b\\|c |\n|---|---|\n| 1 |  |\n| x y | z |"
    assert is_markdown_table(md) and not is_markdown_table("| a |\nnormale tekst")


def test_docx_table_is_markdown(tmp_path: Path) -> None:
    p = make_docx(tmp_path / "d.docx", "Pijnbeleid", SECTIONS_NL, table=DOSES)
    doc = DocxLoader().load(p.read_bytes(), p.name)
    assert MD in doc.text


def test_odt_table_is_markdown(tmp_path: Path) -> None:
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text="Pijnbeleid"))
    doc.text.addElement(P(text="De doseringen voor volwassenen staan in de tabel."))
    t = Table(name="doses")
    t.addElement(TableColumn(numbercolumnsrepeated=3))
    for row in DOSES:
        tr = TableRow()
        for cell in row:
            tc = TableCell()
            tc.addElement(P(text=cell))
            tr.addElement(tc)
        t.addElement(tr)
    doc.text.addElement(t)
    path = tmp_path / "d.odt"
    doc.save(str(path))
    parsed = OdtLoader().load(path.read_bytes(), path.name)
    assert MD in parsed.text and "De doseringen" in parsed.text
    assert "Paracetamol500" not in parsed.text.replace(" ", "")  # cells no longer run together


def test_html_table_is_markdown_with_caption() -> None:
    rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in DOSES[1:])
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in DOSES[0]) + "</tr>"
    html = f"<html><body><h1>Pijnbeleid</h1><p>Tekst.</p><table><caption>Doseringen</caption>" \
           f"<thead>{head}</thead><tbody>{rows}</tbody></table></body></html>"
    doc = HtmlLoader().load(html.encode(), "p.html")
    assert f"Doseringen\n\n{MD}" in doc.text
    assert doc.text.count("Paracetamol") == 1


def test_small_table_stays_whole_in_one_chunk(counter: FileTokenCounter) -> None:
    chunker = Chunker(counter, chunk_tokens=128, overlap=16)
    intro = "Pijnbestrijding na een operatie. " * 12
    doc = ParsedDocument("t", "docx", [Block(f"{intro}\n\n{MD}\n\n{intro}", heading="Pijn")])
    drafts = chunker.chunk(doc)
    assert len(drafts) > 1
    assert [d.text for d in drafts if "Paracetamol" in d.text] == [MD]


def test_long_table_is_split_between_rows_with_the_header_repeated(counter: FileTokenCounter) -> None:
    chunker = Chunker(counter, chunk_tokens=96, overlap=16)
    rows = [DOSES[0]] + [[f"Middel {i}", f"{i * 10} mg", f"{i} uur"] for i in range(1, 61)]
    table = markdown_table(rows)
    drafts = chunker.chunk(ParsedDocument("t", "docx", [Block(f"Inleiding over middelen.\n\n{table}")]))
    pieces = [d.text for d in drafts if "Middel " in d.text]
    assert len(pieces) > 2
    seen: list[str] = []
    for piece in pieces:
        lines = piece.split("\n")
        assert lines[:2] == ["| Middel | Dosering | Interval |", "|---|---|---|"]
        assert all(ln.startswith("| Middel ") and ln.endswith(" uur |") for ln in lines[2:])
        assert counter.count_tokens(piece) <= 96
        seen.extend(lines[2:])
    assert seen == table.split("\n")[2:]  # every row once, in order, none cut
