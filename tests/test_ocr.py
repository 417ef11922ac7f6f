"""OCR of scans (issue 13 item 4): known Dutch text rendered at 300 dpi, ingested as scans.

Real Tesseract (nld+eng, scripts/install-tesseract), real pdftoppm, the real parser worker,
Qdrant Edge and the packaged embedder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.scans import PAGES_NL, image_pdf, jpeg, scan_png, text_pdf, tiff_pages, truncated
from ingest_support import make_ingestor
from retrieval_fixtures import embedder

from ingest.loaders.image import ImageLoader
from ingest.loaders.pdf import PdfLoader
from ingest.manifest import Labels
from ingest.ocr import Ocr, OcrConfig, PageError, unavailable_reason
from ingest.pipeline import Ingestor
from ingest.report import ProgressUpdate
from vraagbaak_core.settings import OcrSettings
from vraagbaak_core.types import Chunk, MatchAny, SearchFilter, StoreQuery

pytestmark = pytest.mark.skipif(
    unavailable_reason(OcrConfig()) is not None, reason=f"{unavailable_reason(OcrConfig())}"
)
ZORG = Labels(groups=("zorg",))


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("scans")
    pngs = [scan_png(t, 300, d / f"page{i + 1}.png") for i, t in enumerate(PAGES_NL)]
    return {f"page{i + 1}": p for i, p in enumerate(pngs)}


@pytest.fixture(scope="module")
def ing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestor]:
    ingestor = make_ingestor(tmp_path_factory.mktemp("ingest"))
    yield ingestor
    ingestor.close()
    ingestor.store.close()


def _chunks(ing: Ingestor, root: Path, source: str) -> list[Chunk]:
    rec = ing.state.find(str(root.resolve()), source)
    assert rec is not None, source
    vec = embedder().embed_query("x").tolist()
    flt = SearchFilter(must=(MatchAny("doc_id", (rec.doc_id,)),))
    hits = ing.store.query(StoreQuery(mode="dense", limit=1000, dense=vec, filter=flt))
    return sorted((h.chunk for h in hits), key=lambda c: c.index)


def _page_text(chunks: list[Chunk]) -> dict[int | None, str]:
    out: dict[int | None, str] = {}
    for c in chunks:
        out[c.page] = out.get(c.page, "") + " " + c.text
    return out


def test_scanned_pdf_pages_are_ocred_with_exact_page_numbers(
    ing: Ingestor, scans: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "set"
    root.mkdir()
    # page 1 and 3 are images without a text layer, page 2 has real text
    image_pdf(root / "scan.pdf", [scans["page1"], PAGES_NL[1], scans["page3"]])
    updates: list[ProgressUpdate] = []
    report = ing.ingest_paths([root], ZORG, progress=updates.append)
    assert report.ok, report.failed
    assert report.ocr_pages == 2 and updates[-1].ocr_pages == 2
    (added,) = report.added
    assert any("OCR (nld+eng) on 2 of 2 page(s)" in n for n in added.notes)
    pages = _page_text(_chunks(ing, root, "scan.pdf"))
    assert set(pages) == {1, 2, 3}
    assert "Handhygiëne" in pages[1] and "handalcohol" in pages[1]
    assert "Valpreventie" in pages[2] and "Medicatieoverdracht" in pages[3]
    assert "Handhygiëne" not in pages[3]
    # searchable: the OCRed page answers a Dutch question
    hits = ing.store.query(StoreQuery(
        mode="dense", limit=1, dense=embedder().embed_query("wanneer handen desinfecteren met handalcohol").tolist(),
        filter=SearchFilter(must=(MatchAny("source", ("scan.pdf",)),)),
    ))
    assert hits and hits[0].chunk.page == 1


def test_png_jpeg_and_tiff_are_ocred_and_a_broken_image_fails_alone(
    ing: Ingestor, scans: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "images"
    root.mkdir()
    (root / "valpreventie.png").write_bytes(scans["page2"].read_bytes())
    jpeg(scans["page4"], root / "decubitus.jpg")
    tiff_pages([scans["page1"], scans["page3"]], root / "map.tiff")
    truncated(scans["page3"], root / "kapot.png")
    report = ing.ingest_paths([root], ZORG)
    assert {r.source for r in report.added} == {"valpreventie.png", "decubitus.jpg", "map.tiff"}
    (bad,) = report.failed
    assert bad.source == "kapot.png" and "corrupt or unreadable image" in bad.reason
    assert "Valpreventie" in " ".join(c.text for c in _chunks(ing, root, "valpreventie.png"))
    assert "drukverlagend" in " ".join(c.text for c in _chunks(ing, root, "decubitus.jpg"))
    tiff = _page_text(_chunks(ing, root, "map.tiff"))
    assert "Handhygiëne" in tiff[1] and "Medicatieoverdracht" in tiff[2]


def test_ocr_off_says_why_per_document(scans: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "off"
    root.mkdir()
    image_pdf(root / "alleen-scan.pdf", [scans["page1"]])
    image_pdf(root / "gemengd.pdf", [scans["page1"], PAGES_NL[1]])
    (root / "foto.png").write_bytes(scans["page2"].read_bytes())
    off = make_ingestor(tmp_path / "ing", ocr=OcrSettings(enabled=False))
    try:
        report = off.ingest_paths([root], ZORG)
    finally:
        off.close()
        off.store.close()
    failed = {r.source: r.reason for r in report.failed}
    assert set(failed) == {"alleen-scan.pdf", "foto.png"}
    assert "a scan without a text layer, and OCR is off (ingest.ocr.enabled is false)" in failed["alleen-scan.pdf"]
    assert "OCR is off (ingest.ocr.enabled is false)" in failed["foto.png"]
    (mixed,) = report.added
    assert mixed.source == "gemengd.pdf" and report.ocr_pages == 0
    assert mixed.notes == (
        "1 page(s) without a text layer not read (page 1): OCR is off (ingest.ocr.enabled is false)",
    )


def test_missing_tesseract_or_language_is_a_clear_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    assert unavailable_reason(OcrConfig(languages="nld+xyz")) == (
        "OCR is off: tesseract language data missing for xyz (install tesseract-ocr-xyz)"
    )
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "tesseract is not installed (run scripts/install-tesseract)" in str(unavailable_reason(OcrConfig()))


class _FailsOnPage2(Ocr):
    def pdf_page_text(self, src: Path, page: int) -> str:
        if page == 2:
            raise PageError("tesseract failed: scripted")
        return super().pdf_page_text(src, page)


def test_a_page_that_cannot_be_ocred_fails_alone(scans: dict[str, Path], tmp_path: Path) -> None:
    pdf = image_pdf(tmp_path / "s.pdf", [scans["page1"], scans["page2"], scans["page3"]])
    doc = PdfLoader(ocr=_FailsOnPage2(OcrConfig())).load(pdf.read_bytes(), "s.pdf")
    assert [b.page for b in doc.blocks] == [1, 3] and doc.ocr_pages == 2
    assert "OCR failed on page 2: tesseract failed: scripted" in doc.notes


def test_text_layer_pages_are_not_ocred(tmp_path: Path) -> None:
    pdf = text_pdf(tmp_path / "t.pdf", PAGES_NL[:2])
    ocr = Ocr(OcrConfig())
    doc = PdfLoader(ocr=ocr).load(pdf.read_bytes(), "t.pdf")
    assert doc.ocr_pages == 0 and ocr.pages == 0 and doc.notes == []
    assert [b.page for b in doc.blocks] == [1, 2]


def test_image_loader_language_and_blank_image(tmp_path: Path) -> None:
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("L", (800, 600), 255).save(blank)
    with pytest.raises(Exception, match="OCR found no text in the image"):
        ImageLoader(ocr=Ocr(OcrConfig())).load(blank.read_bytes(), "blank.png")


SHARED_PDFS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pdfs"


@pytest.mark.skipif(not SHARED_PDFS.is_dir(), reason="../shared/data/pdfs is not here")
@pytest.mark.parametrize(
    ("name", "pages", "words"),
    [
        ("pypdf/encrypted_doc_no_id.pdf", 3, "WO 2003/036426"),  # a scanned patent, empty-password encrypted
        ("pypdf/issue-3850-1bit-indexed-flate.pdf", 1, "decode repro"),  # a 1-bit scan of a line of text
    ],
)
def test_the_real_scans_without_a_text_layer_become_searchable(name: str, pages: int, words: str) -> None:
    data = (SHARED_PDFS / name).read_bytes()
    with pytest.raises(Exception, match="no extractable text"):
        PdfLoader().load(data, name)
    doc = PdfLoader(ocr=Ocr(OcrConfig())).load(data, name)
    assert doc.ocr_pages == pages and words in doc.text
