"""Every format parsed from real files: text, title, page numbers and section headings kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixtures.make_docs import (
    SECTIONS_NL,
    make_docx,
    make_html,
    make_markdown,
    make_odt,
    make_pdf,
    make_text,
)

from ingest.errors import LoadError
from ingest.loaders import LoaderLimits, parse
from vraagbaak_core.ports import Loader

DUTCH = "Café één ’s middags — naïef. Patiënten krijgen hun medicatie om acht uur."


def _check_sections(doc_blocks: list, expect_title_block: bool = False) -> None:
    headings = [b.heading for b in doc_blocks]
    assert "Handhygiëne" in headings and "Sieraden" in headings
    hyg = next(b for b in doc_blocks if b.heading == "Handhygiëne")
    assert "veertig seconden" in hyg.text
    sier = next(b for b in doc_blocks if b.heading == "Sieraden")
    assert "polshorloges" in sier.text and "veertig" not in sier.text


def test_pdf_keeps_page_numbers_and_title(tmp_path: Path) -> None:
    pages = ["Eerste pagina over bezoek", "Tweede pagina (handhygiene)"]
    p = make_pdf(tmp_path / "p.pdf", pages, title="Protocol")
    doc = parse(p.read_bytes(), p.name)
    assert doc.format == "pdf" and doc.title == "Protocol"
    assert [(b.page, b.text) for b in doc.blocks] == [
        (1, "Eerste pagina over bezoek"),
        (2, "Tweede pagina (handhygiene)"),
    ]


def test_docx_headings_and_tables(tmp_path: Path) -> None:
    table = [["Ruimte", "Frequentie"], ["OK", "dagelijks"]]
    p = make_docx(tmp_path / "b.docx", "Beleid hygiëne", SECTIONS_NL, table=table)
    doc = parse(p.read_bytes(), p.name)
    assert doc.format == "docx" and doc.title == "Beleid hygiëne"
    _check_sections(doc.blocks)
    assert "OK | dagelijks" in doc.text


def test_odt_headings(tmp_path: Path) -> None:
    p = make_odt(tmp_path / "c.odt", "Odt titel", SECTIONS_NL)
    doc = parse(p.read_bytes(), p.name)
    assert doc.format == "odt" and doc.title == "Odt titel"
    _check_sections(doc.blocks)


def test_html_main_text_without_navigation(tmp_path: Path) -> None:
    p = make_html(tmp_path / "d.html", "Html titel", SECTIONS_NL)
    doc = parse(p.read_bytes(), p.name)
    assert doc.format == "html" and doc.title == "Html titel"
    _check_sections(doc.blocks)
    for noise in ("KOPTEKST", "NAVIGATIE", "ZIJBALK", "VOETTEKST", "MENUSCRIPT", "color: red"):
        assert noise not in doc.text


def test_html_in_cp1252(tmp_path: Path) -> None:
    p = make_html(tmp_path / "w.htm", "Titel", SECTIONS_NL, encoding="cp1252")
    assert "Handhygiëne" in parse(p.read_bytes(), p.name).text


def test_markdown_headings(tmp_path: Path) -> None:
    p = make_markdown(tmp_path / "e.md", "Md titel", SECTIONS_NL)
    doc = parse(p.read_bytes(), p.name)
    assert doc.format == "markdown" and doc.title == "Md titel"
    _check_sections(doc.blocks)


def test_markdown_fenced_code_is_not_a_heading() -> None:
    doc = parse(b"# T\n\n```\n# not a heading\n```\n\n## Echt\n\ntekst", "x.md")
    assert [b.heading for b in doc.blocks] == ["T", "Echt"]


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16", "utf-16-le", "utf-16-be"]
)
def test_text_in_common_encodings(tmp_path: Path, encoding: str) -> None:
    text = DUTCH if encoding != "latin-1" else DUTCH.replace("’", "'").replace("—", "-")
    p = make_text(tmp_path / f"t-{encoding}.txt", text, encoding)
    doc = parse(p.read_bytes(), p.name)
    assert doc.format == "text" and doc.text == text and doc.title == f"t-{encoding}"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes(range(256)) * 50, "binary data"),
        (b"\x00\x01\x02\x03" * 1000, "binary data"),
        (b"   \n\t  ", "no text"),
    ],
)
def test_binary_junk_with_txt_name_is_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(LoadError, match=reason):
        parse(data, "junk.txt")


def test_pdf_page_limit(tmp_path: Path) -> None:
    p = make_pdf(tmp_path / "p.pdf", ["a", "b", "c"])
    with pytest.raises(LoadError, match=r"too many pages: 3 \(limit 2"):
        parse(p.read_bytes(), p.name, LoaderLimits(max_pages=2))


def test_loaders_implement_the_port() -> None:
    from ingest.loaders import build_loaders

    loaders = build_loaders()
    assert set(loaders) == {"pdf", "docx", "odt", "html", "markdown", "text", "image"}
    assert all(isinstance(x, Loader) for x in loaders.values())


def _numbered(paragraph: object, num_id: str, ilvl: int = 0) -> None:
    """Give ``paragraph`` Word numbering directly (``w:numPr``), as Word does for a restarted list."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    ppr = paragraph._p.get_or_add_pPr()  # type: ignore[attr-defined]
    num_pr = OxmlElement("w:numPr")
    for tag, value in (("w:ilvl", str(ilvl)), ("w:numId", num_id)):
        el = OxmlElement(tag)
        el.set(qn("w:val"), value)
        num_pr.append(el)
    ppr.append(num_pr)


def test_docx_numbered_lists_keep_the_numbers_word_shows(tmp_path: Path) -> None:
    """Word stores no numbers in a numbered list's text: without them a protocol's steps were loose
    sentences (found in the Lindehoven set's DOCX protocols). The loader counts as Word does."""
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    from retrieval.units import quotable_units

    d = docx.Document()
    d.add_heading("Bij een transfusiereactie", level=1)
    d.add_paragraph("Bij een vermoeden van een transfusiereactie:")
    for text in ("Stop de transfusie direct.", "Houd het infuus open met NaCl 0,9%.", "Waarschuw direct de arts."):
        d.add_paragraph(text, style="List Number")
    d.add_paragraph("Let daarna op:")
    for text in ("koorts", "benauwdheid"):
        d.add_paragraph(text, style="List Bullet")
    off = d.add_paragraph("Geen nummer: de nummering staat uit.", style="List Number")
    _numbered(off, "0")
    # a second list: its own definition (level 0 "1.", level 1 "a."), started at 5 by its list's override
    numbering = d.part.numbering_part.element

    def el(tag: str, parent: Any = None, **attrs: str) -> Any:
        e = OxmlElement(tag)
        for k, v in attrs.items():
            e.set(qn(f"w:{k}"), v)
        if parent is not None:
            parent.append(e)
        return e

    abstract = el("w:abstractNum", abstractNumId="90")
    for ilvl, fmt in (("0", "decimal"), ("1", "lowerLetter")):
        lvl = el("w:lvl", abstract, ilvl=ilvl)
        el("w:start", lvl, val="1")
        el("w:numFmt", lvl, val=fmt)
    numbering.insert(0, abstract)
    num = el("w:num", numbering, numId="99")
    el("w:abstractNumId", num, val="90")
    el("w:startOverride", el("w:lvlOverride", num, ilvl="0"), val="5")
    d.add_heading("Na de transfusie", level=1)
    for text, ilvl in (("Meet de temperatuur.", 0), ("Noteer de waarde.", 1), ("Noteer de tijd.", 1),
                       ("Meld de reactie.", 0), ("Vul het formulier in.", 1)):
        _numbered(d.add_paragraph(text), "99", ilvl)
    path = tmp_path / "lijsten.docx"
    d.save(str(path))

    doc = parse(path.read_bytes(), path.name)
    first = next(b for b in doc.blocks if b.heading == "Bij een transfusiereactie").text
    assert "1. Stop de transfusie direct.\n\n2. Houd het infuus open met NaCl 0,9%.\n\n3. Waarschuw" in first
    assert "- koorts\n\n- benauwdheid" in first
    assert "\n\nGeen nummer: de nummering staat uit." in first
    second = next(b for b in doc.blocks if b.heading == "Na de transfusie").text
    lines = [line.split(" ", 1)[0] for line in second.split("\n\n")[1:]]  # [0] is the heading
    assert lines == ["5.", "a.", "b.", "6.", "a."]  # from the override; level 1 starts again under item 6
    units = quotable_units(first, "nl")
    steps = [u for u in units if u.kind == "steps"]
    assert steps and "Stop de transfusie direct." in steps[0].text and "Waarschuw direct de arts." in steps[0].text


def test_docx_with_malformed_numbering_still_loads_its_text(tmp_path: Path) -> None:
    """Numbering definitions with values that are not numbers (a hand-edited or generated file) cost the
    markers at most, never the document."""
    import docx
    from docx.oxml.ns import qn

    d = docx.Document()
    d.add_heading("Stappen", level=1)
    for text in ("Eerste stap.", "Tweede stap."):
        d.add_paragraph(text, style="List Number")
    numbering = d.part.numbering_part.element
    for lvl in numbering.iter(qn("w:lvl")):
        lvl.set(qn("w:ilvl"), "x")
        for start in lvl.iter(qn("w:start")):
            start.set(qn("w:val"), "abc")
    path = tmp_path / "kapot.docx"
    d.save(str(path))
    doc = parse(path.read_bytes(), path.name)
    assert "Eerste stap." in doc.text and "Tweede stap." in doc.text


def test_odt_lists_keep_their_numbers(tmp_path: Path) -> None:
    """ODT stores no list numbers either (the list style numbers the levels): a numbered list's items
    get "1.", "2." …, a nested bulleted level "-", and a list that continues the numbering goes on."""
    import io

    from odf.opendocument import OpenDocumentText
    from odf.text import H, List, ListItem, ListLevelStyleBullet, ListLevelStyleNumber, ListStyle, P

    from retrieval.units import quotable_units

    doc = OpenDocumentText()
    style = ListStyle(name="L1")
    style.addElement(ListLevelStyleNumber(level=1, numformat="1", numsuffix="."))
    style.addElement(ListLevelStyleBullet(level=2, bulletchar="•"))
    doc.automaticstyles.addElement(style)
    doc.text.addElement(H(outlinelevel=1, text="Bij een transfusiereactie"))
    doc.text.addElement(P(text="Bij een vermoeden van een transfusiereactie:"))
    steps = List(stylename="L1")
    for text in ("Stop de transfusie direct.", "Houd het infuus open.", "Waarschuw direct de arts."):
        item = ListItem()
        item.addElement(P(text=text))
        steps.addElement(item)
    nested = List()
    for text in ("bij benauwdheid het SIT", "bij shock het SIT"):
        item = ListItem()
        item.addElement(P(text=text))
        nested.addElement(item)
    steps.childNodes[-1].addElement(nested)
    doc.text.addElement(steps)
    doc.text.addElement(P(text="Daarna:"))
    more = List(stylename="L1", continuenumbering="true")
    item = ListItem()
    item.addElement(P(text="Meld de reactie."))
    more.addElement(item)
    doc.text.addElement(more)
    buf = io.BytesIO()
    doc.save(buf)
    path = tmp_path / "lijsten.odt"
    path.write_bytes(buf.getvalue())

    text = parse(path.read_bytes(), path.name).text
    assert "1. Stop de transfusie direct.\n\n2. Houd het infuus open.\n\n3. Waarschuw direct de arts." in text
    assert "- bij benauwdheid het SIT\n\n- bij shock het SIT" in text
    assert "Daarna:\n\n4. Meld de reactie." in text
    steps_units = [u for u in quotable_units(text.split("Daarna:")[0], "nl") if u.kind == "steps"]
    assert steps_units and "Stop de transfusie direct." in steps_units[0].text
