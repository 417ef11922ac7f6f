"""Format detection looks at the content; the extension is only a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.make_docs import SECTIONS_NL, docx_bytes, make_odt, pdf_bytes

from ingest.detect import detect_format
from ingest.errors import UnsupportedFormat


def test_pdf_docx_odt_by_magic_whatever_the_name(tmp_path: Path) -> None:
    assert detect_format(pdf_bytes(["hallo"]), "brief.txt") == "pdf"
    assert detect_format(docx_bytes("t", SECTIONS_NL), "protocol.pdf") == "docx"
    odt = make_odt(tmp_path / "x.odt", "t", SECTIONS_NL).read_bytes()
    assert detect_format(odt, "x.docx") == "odt"


def test_html_sniffed_and_text_and_markdown() -> None:
    assert detect_format(b"<!DOCTYPE html><html><body><p>x</p></body></html>", "page.txt") == "html"
    assert detect_format("<!-- c --><html><p>hoi</p></html>".encode("utf-16"), "a") == "html"
    assert detect_format(b"# Kop\n\ntekst", "notes.md") == "markdown"
    assert detect_format(b"gewone tekst", "notes") == "text"


@pytest.mark.parametrize(
    "head", [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"II*\x00", b"MM\x00*"],
    ids=["png", "jpeg", "tiff-le", "tiff-be"],
)
def test_images_are_accepted_for_ocr(head: bytes) -> None:
    assert detect_format(head + b"\0" * 20, "scan.bin") == "image"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"GIF89a" + b"\0" * 20, "GIF image"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 20, "legacy MS Office"),
        (b"PK\x03\x04garbage", "corrupt ZIP"),
    ],
)
def test_rejections_name_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedFormat, match=reason):
        detect_format(data, "file.txt")


def test_zip_that_is_not_a_document(tmp_path: Path) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(UnsupportedFormat, match="neither DOCX nor ODT"):
        detect_format(buf.getvalue(), "archief.docx")
