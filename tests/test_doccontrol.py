"""Document control (issue 13): metadata from vraagbaak.yaml, file properties and front matter;
answers from current documents only, on both store adapters; the overdue warning; ``documents due``.

The fixture set: a family of three versions of the hand-hygiene protocol (Markdown front matter,
PDF info, DOCX core properties), an expired isolation protocol (a vraagbaak.yaml rule), a
``vervallen`` MRSA protocol and a pressure-ulcer protocol past its review date.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fixtures.make_docs import make_odt
from ingest_support import make_settings
from retrieval_fixtures import embedder
from typer.testing import CliRunner

from ingest.doccontrol import Versioned, due, lifecycles, parse_window, resolve_control
from ingest.errors import LabelError
from ingest.manifest import Labels
from ingest.pipeline import Ingestor
from ingest.state import IngestState
from retrieval.analysis import Bm25SparseEncoder
from retrieval.search import Retriever
from retrieval.stores.edge import EdgeStore
from retrieval.stores.qdrant import QdrantStore
from serving.staff.chat.prompts import PromptBook
from serving.staff.chat.service import overdue_notice
from vraagbaak_core.ports import VectorStore
from vraagbaak_core.settings import PROJECT_ROOT, RetrievalSettings
from vraagbaak_core.types import Citation, DocControl, Identity

ZORG = Labels(groups=("zorg",))
NURSE = Identity(user_id="u", groups=frozenset({"zorg"}), clearance="intern")
HANDS = "Hoe lang moet je de handen wassen met water en zeep?"


def _md(path: Path, front: str, title: str, body: str) -> None:
    path.write_text(f"---\n{front.strip()}\n---\n# {title}\n\n{body}\n", encoding="utf-8")


def _pdf_with_info(path: Path, text: str, info: dict[str, str]) -> None:
    from fixtures.make_docs import pdf_bytes
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([text], title="Protocol handhygiëne"))))
    writer.add_metadata({f"/{k}": v for k, v in info.items()})
    with path.open("wb") as fh:
        writer.write(fh)


def _docx_with_core(path: Path, title: str, text: str, version: str, status: str, identifier: str) -> None:
    from docx import Document

    doc = Document()
    doc.core_properties.title = title
    doc.core_properties.version = version
    doc.core_properties.content_status = status
    doc.core_properties.identifier = identifier
    doc.add_heading(title, level=0)
    doc.add_paragraph(text)
    doc.save(str(path))


def make_fixture_set(root: Path) -> Path:
    root.mkdir(parents=True)
    _md(root / "handhygiene-v1.md", "family: handhygiene\nversion: '1'\nstatus: vastgesteld\nowner: Hygiëne",
        "Protocol handhygiëne", "Was de handen met water en zeep gedurende minimaal tien seconden. "
        "Droog de handen daarna met een papieren handdoek.")
    _pdf_with_info(root / "handhygiene-v2.pdf",
                   "Protocol handhygiëne. Was de handen met water en zeep gedurende minimaal twintig seconden. "
                   "Droog de handen daarna met een papieren handdoek.",
                   {"Version": "2", "Status": "vastgesteld", "Family": "handhygiene", "ValidFrom": "2024-01-01"})
    _docx_with_core(root / "handhygiene-v3.docx", "Protocol handhygiëne",
                    "Was de handen met water en zeep gedurende minimaal dertig seconden. Droog de handen "
                    "daarna met een papieren handdoek.", version="3", status="Final", identifier="handhygiene")
    make_odt(root / "isolatie.odt", "Protocol isolatie", [("Isolatie", [
        "Een patiënt met een besmettelijke luchtweginfectie verblijft in een isolatiekamer met sluis. "
        "Draag een FFP2-masker bij het betreden van de isolatiekamer."])])
    _md(root / "mrsa.md", "status: vervallen\nversion: '5'", "Protocol MRSA",
        "Bij MRSA-dragerschap wordt de patiënt verpleegd op een eenpersoonskamer met sluis en een "
        "schort met lange mouwen.")
    _md(root / "decubitus.md", "status: vastgesteld\nversion: '2'\nreview_date: 2026-03-01\nowner: Wondzorg",
        "Protocol decubituspreventie", "Wissel de houding van een bedlegerige patiënt met decubitusrisico "
        "elke drie uur en gebruik een drukverlagend matras.")
    (root / "vraagbaak.yaml").write_text(
        "groups: [zorg]\nowner: Kwaliteit\nrules:\n"
        "  - match: isolatie.odt\n    status: vastgesteld\n    version: '1'\n    expires: 2026-06-01\n"
        "    review_date: 2027-01-15\n",
        encoding="utf-8",
    )
    return root


STORES = ["edge", "qdrant-memory"]


@pytest.fixture(scope="module", params=STORES)
def ingested(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestor]:
    tmp = tmp_path_factory.mktemp(request.param)
    settings = make_settings(tmp)
    store: VectorStore = EdgeStore(tmp / "edge") if request.param == "edge" else QdrantStore(":memory:", "dc")
    ing = Ingestor(settings, embedder(), Bm25SparseEncoder(), store, IngestState(settings.ingest.state_path))
    report = ing.ingest_paths([make_fixture_set(tmp / "protocollen")], ZORG)
    assert report.ok, report.to_dict()["failed"]
    yield ing
    ing.close()
    ing.store.close()


def _retriever(ing: Ingestor, current_only: bool = True) -> Retriever:
    settings = RetrievalSettings(min_dense_score=0.0, current_only=current_only)
    return Retriever(embedder(), Bm25SparseEncoder(), ing.store, settings)


def _docs(ing: Ingestor, query: str, current_only: bool = True) -> list[str]:
    hits = _retriever(ing, current_only).retrieve_raw(query, NURSE, limit=50)
    return [h.chunk.source for h in hits]


def test_metadata_from_front_matter_pdf_info_docx_core_and_rules(ingested: Ingestor) -> None:
    docs = {d.source: d.control for d in ingested.list_documents()}
    assert docs["handhygiene-v1.md"] == DocControl(
        owner="Hygiëne", version="1", status="vastgesteld", family="handhygiene", lifecycle="superseded")
    assert docs["handhygiene-v2.pdf"] == DocControl(
        owner="Kwaliteit", version="2", status="vastgesteld", valid_from="2024-01-01", family="handhygiene",
        lifecycle="superseded")
    assert docs["handhygiene-v3.docx"].version == "3"
    assert docs["handhygiene-v3.docx"].status == "vastgesteld"  # DOCX contentStatus "Final"
    assert docs["handhygiene-v3.docx"].lifecycle == "current"
    assert docs["isolatie.odt"].expires == "2026-06-01"  # from the vraagbaak.yaml rule
    assert docs["mrsa.md"].lifecycle == "vervallen"
    # and on every chunk's payload
    hits = _retriever(ingested, current_only=False).retrieve_raw("decubitus houding matras", NURSE, limit=50)
    deco = [h.chunk for h in hits if h.chunk.source == "decubitus.md"]
    assert deco and all(c.control.review_date == "2026-03-01" and c.control.owner == "Wondzorg" for c in deco)


def test_the_answer_comes_from_the_current_version_only(ingested: Ingestor) -> None:
    assert set(_docs(ingested, HANDS, current_only=False)) >= {
        "handhygiene-v1.md", "handhygiene-v2.pdf", "handhygiene-v3.docx"}
    current = _docs(ingested, HANDS)
    hand_versions = [s for s in current if s.startswith("handhygiene")]
    assert hand_versions and set(hand_versions) == {"handhygiene-v3.docx"}
    best = _retriever(ingested).search(HANDS, NURSE, top_k=1)
    assert best and "dertig seconden" in best[0].chunk.text


def test_expired_and_vervallen_protocols_do_not_answer(ingested: Ingestor) -> None:
    assert "isolatie.odt" in _docs(ingested, "isolatiekamer FFP2-masker", current_only=False)
    assert "isolatie.odt" not in _docs(ingested, "isolatiekamer FFP2-masker")
    assert "mrsa.md" in _docs(ingested, "MRSA eenpersoonskamer schort", current_only=False)
    assert "mrsa.md" not in _docs(ingested, "MRSA eenpersoonskamer schort")
    assert "decubitus.md" in _docs(ingested, "decubitus houding matras")  # overdue still answers


def test_erasing_the_current_version_lets_the_previous_one_answer(
    tmp_path: Path, ingested: Ingestor
) -> None:
    if not isinstance(ingested.store, EdgeStore):
        pytest.skip("one adapter is enough for the erase path; the filter itself ran on both")
    settings = make_settings(tmp_path)
    ing = Ingestor(settings, embedder(), Bm25SparseEncoder(), EdgeStore(tmp_path / "edge"),
                   IngestState(settings.ingest.state_path))
    try:
        root = make_fixture_set(tmp_path / "protocollen")
        assert ing.ingest_paths([root], ZORG).ok
        v3 = next(d.doc_id for d in ing.list_documents() if d.source == "handhygiene-v3.docx")
        ing.delete_document(v3)
        hands = [s for s in _docs(ing, HANDS) if s.startswith("handhygiene")]
        assert set(hands) == {"handhygiene-v2.pdf"}
        (root / "handhygiene-v1.md").write_text(  # v1 re-issued as version 4: it supersedes v2
            (root / "handhygiene-v1.md").read_text().replace("version: '1'", "version: '4'"))
        assert ing.ingest_paths([root / "handhygiene-v1.md"], ZORG).ok
        hands = [s for s in _docs(ing, HANDS) if s.startswith("handhygiene")]
        assert set(hands) == {"handhygiene-v1.md"}
    finally:
        ing.close()
        ing.store.close()


def test_bad_values_fail_that_document_with_a_clear_reason(tmp_path: Path) -> None:
    root = tmp_path / "set"
    root.mkdir()
    _md(root / "ok.md", "status: concept", "Goed", "Een geldig document over wondverzorging.")
    _md(root / "status.md", "status: klaar", "Status", "Tekst over infusen.")
    _md(root / "datum.md", "review_date: 31-02-2026", "Datum", "Tekst over katheters.")
    ing = Ingestor(make_settings(tmp_path), embedder(), Bm25SparseEncoder(), EdgeStore(tmp_path / "edge"),
                   IngestState(tmp_path / "state.sqlite"))
    try:
        report = ing.ingest_paths([root], ZORG)
    finally:
        ing.close()
        ing.store.close()
    reasons = {r.source: r.reason for r in report.failed}
    assert set(reasons) == {"status.md", "datum.md"}
    assert "unknown status 'klaar'; allowed: concept, vastgesteld, vervallen" in reasons["status.md"]
    assert "review_date '31-02-2026' is not a date" in reasons["datum.md"]
    assert [r.source for r in report.added] == ["ok.md"]


def test_a_bad_value_in_vraagbaak_yaml_fails_the_set_with_the_field_named(tmp_path: Path) -> None:
    from ingest.manifest import load_manifest

    (tmp_path / "vraagbaak.yaml").write_text("groups: [zorg]\nrules:\n  - match: a.md\n    status: oud\n")
    with pytest.raises(LabelError, match="unknown status 'oud'"):
        load_manifest(tmp_path)


def test_overdue_warning_in_the_questions_language() -> None:
    book = PromptBook.load(PROJECT_ROOT / "configs" / "prompts", "nl")
    cite = Citation(n=1, doc_id="d", title="Decubitus", chunk_id="c", score=1.0, snippet="",
                    control=DocControl(review_date="2026-03-01"))
    today = date(2026, 12, 1)
    assert overdue_notice([cite], book.for_language("nl"), today) == (
        "Let op: dit protocol had op 1 maart 2026 herzien moeten worden.")
    assert overdue_notice([cite], book.for_language("en"), today) == (
        "Note: this protocol should have been reviewed on 1 March 2026.")
    assert overdue_notice([cite], book.for_language("nl"), date(2026, 3, 1)) == ""  # due today: not overdue
    other = Citation(n=2, doc_id="e", title="Isolatie", chunk_id="c2", score=1.0, snippet="",
                     control=DocControl(review_date="2025-11-30"))
    both = overdue_notice([cite, other], book.for_language("nl"), today)
    assert both.splitlines() == [
        'Let op: het protocol "Decubitus" had op 1 maart 2026 herzien moeten worden.',
        'Let op: het protocol "Isolatie" had op 30 november 2025 herzien moeten worden.',
    ]


def test_due_listing(ingested: Ingestor) -> None:
    docs = [(d.doc_id, d.source, d.title, d.control) for d in ingested.list_documents()]
    listed = due(docs, within_days=30, today=date(2027, 1, 1))
    assert [(i.source, i.what, i.due, i.days) for i in listed] == [
        ("decubitus.md", "review", "2026-03-01", -306),
        ("isolatie.odt", "expires", "2026-06-01", -214),
        ("isolatie.odt", "review", "2027-01-15", 14),
    ]
    assert [i.what for i in due(docs, within_days=10, today=date(2027, 1, 1))] == ["review", "expires"]
    assert parse_window("30d") == 30 and parse_window("6w") == 42 and parse_window("3m") == 90
    with pytest.raises(ValueError, match="period"):
        parse_window("een maand")


def test_documents_due_cli(ingested: Ingestor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from serving.cli.main import app

    if not isinstance(ingested.store, EdgeStore):
        pytest.skip("the CLI reads the state only; once is enough")
    monkeypatch.setenv("VRAAGBAAK_INGEST__STATE_PATH", str(ingested.state.path))
    monkeypatch.setenv("VRAAGBAAK_AUDIT__PATH", str(tmp_path / "audit.jsonl"))
    from vraagbaak_core.egress import guard_scope

    with guard_scope():
        out = CliRunner().invoke(app, ["documents", "due", "--within", "400d", "--json"])
        bad = CliRunner().invoke(app, ["documents", "due", "--within", "soon"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert {(r["source"], r["what"]) for r in rows} == {
        ("decubitus.md", "review"), ("isolatie.odt", "expires"), ("isolatie.odt", "review")}
    assert all(r["overdue"] for r in rows if r["what"] == "expires")
    assert bad.exit_code == 2


def test_lifecycles_unit() -> None:
    def v(doc: str, **kw: str) -> Versioned:
        return Versioned(doc, doc, resolve_control([kw]))

    out = lifecycles([v("a", family="f", version="2.9", status="vastgesteld"),
                      v("b", family="F", version="2.10", status="vastgesteld"),
                      v("c", family="f", version="3", status="concept"),
                      v("x", version="1", status="vastgesteld"),
                      v("y", version="2", status="vastgesteld", supersedes="x")])
    assert out == {"a": "superseded", "b": "current", "c": "superseded", "x": "superseded", "y": "current"}
    # a family of concepts only: nothing is vastgesteld, nothing is superseded
    assert lifecycles([v("p", family="g", status="concept"), v("q", family="g", status="concept")]) == {
        "p": "current", "q": "current"}
