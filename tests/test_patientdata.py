"""The patient-data guard (issue 13): BSN with the elfproef, patient numbers, birth dates near names,
names/addresses with deduce; quarantine in the parser worker, the report, the audit, release."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.patient_docs import bsn, generate
from ingest_support import make_settings
from retrieval_fixtures import embedder

from ingest.loaders.markdown import MarkdownLoader
from ingest.manifest import Labels
from ingest.patientdata import GuardConfig, PatientDataGuard, elfproef
from ingest.pipeline import Ingestor
from ingest.quarantine import QuarantineError
from ingest.state import IngestState
from retrieval.analysis import Bm25SparseEncoder
from retrieval.stores.edge import EdgeStore
from serving.it.ingest_audit import audit_results
from vraagbaak_core.audit import AuditLog
from vraagbaak_core.settings import PatientDataSettings

pytest.importorskip("deduce", reason="scripts/install-deduce installs the guard's name recogniser")

DEFAULTS = PatientDataSettings()


@pytest.fixture(scope="module")
def guard() -> PatientDataGuard:
    return PatientDataGuard(GuardConfig(DEFAULTS.threshold, tuple(DEFAULTS.patient_number_patterns)))


def test_elfproef() -> None:
    assert elfproef("111222333") and elfproef("123456782")
    assert not elfproef("123456789") and not elfproef("000000000") and not elfproef("12345678")


@pytest.mark.parametrize("written", ["123456782", "1234 56 782", "123.456.782", "123 456 782"])
def test_bsn_in_the_usual_spacings_is_found(guard: PatientDataGuard, written: str) -> None:
    found = guard.scan(f"Betreft de heer Visser, BSN {written}, opname.")
    assert found.counts.get("bsn") == 1 and found.over(1.0)
    assert "123" not in found.summary()  # kinds and counts only


def test_clean_protocol_with_bsn_word_phones_tables_and_order_numbers_passes(guard: PatientDataGuard) -> None:
    text = (
        "Controleer altijd het BSN op het polsbandje. Bel Cardiologie via 030-250 9111.\n"
        "| Paracetamol | 500 mg | 4 dd | 3000 mg |\n| Morfine | 10 mg | 6 dd | 60 mg |\n"
        "Artikelnummer 123456789, ordernummer 987 654 321. Opgesteld door dr. A. de Vries op 12-03-2024."
    )
    found = guard.scan(text)
    assert not found.over(1.0), found.summary()
    assert found.counts.get("bsn", 0) == 0


def test_birth_date_near_a_name_and_name_with_address(guard: PatientDataGuard) -> None:
    assert guard.scan("Patiënt Jan Jansen (geb. 12-03-1961) is opgenomen.").counts.get("birth_date") == 1
    assert guard.scan("Sanne de Boer, 4-7-1988, krijgt antibiotica.").counts.get("birth_date") == 1
    addr = guard.scan("Ontslagbrief voor Pieter Bakker, Kerkstraat 12, 3511 AB Utrecht.")
    assert addr.counts.get("person_with_address", 0) >= 1 and addr.over(1.0)
    assert guard.scan("Naam: Wilma Smit, patiëntnummer 7654321.").counts.get("patient_number") == 1


def test_generated_documents_are_classified(guard: PatientDataGuard) -> None:
    """A slice of the generated dev split (the benchmark runs the full test split)."""
    loader = MarkdownLoader()
    docs = generate(seed=1, n=40)
    wrong = [d.name for d in docs if guard.scan(loader.load(d.text.encode(), d.name).text).over(1.0) != d.positive]
    assert not wrong


# --- end to end: the parser worker quarantines, the report and audit say so, release lets it in ---


@pytest.fixture
def ing(tmp_path: Path) -> Iterator[Ingestor]:
    settings = make_settings(tmp_path, patient_data=PatientDataSettings())
    ingestor = Ingestor(settings, embedder(), Bm25SparseEncoder(), EdgeStore(tmp_path / "edge"),
                        IngestState(settings.ingest.state_path))
    yield ingestor
    ingestor.close()
    ingestor.store.close()


def test_quarantine_in_the_worker_report_audit_and_release(ing: Ingestor, tmp_path: Path) -> None:
    import random

    root = tmp_path / "map"
    (root / "dossiers").mkdir(parents=True)
    number = bsn(random.Random(7))
    (root / "brief.md").write_text(f"# Brief\n\nBetreft mevrouw S. de Vries, BSN {number}, opname op de IC.\n")
    (root / "protocol.md").write_text("# Protocol\n\nControleer het BSN van de patiënt op het polsbandje.\n")
    (root / "dossiers" / "export.md").write_text(f"# Export\n\nPatiënt J. Jansen, BSN {number}.\n")
    (root / "vraagbaak.yaml").write_text("groups: [zorg]\nrules:\n  - match: dossiers/\n    patient_data: allowed\n")
    report = ing.ingest_paths([root], Labels())
    status = {r.source: r.status for r in report.results}
    assert status == {"brief.md": "quarantined", "protocol.md": "added", "dossiers/export.md": "added"}
    brief = next(r for r in report.results if r.source == "brief.md")
    assert "bsn: 1" in brief.reason and number not in brief.reason and "de Vries" not in brief.reason
    assert report.to_dict()["quarantined"][0]["source"] == "brief.md"
    assert all(d.source != "brief.md" for d in ing.list_documents())  # not indexed

    audit = AuditLog(tmp_path / "audit.jsonl")
    audit_results(audit, ing, report.results, user_id="os:it", network_access_point="local:test")
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    refused = [r for r in records if r.get("outcome") == "refused"]
    assert len(refused) == 1 and "brief.md" in json.dumps(refused[0]) and number not in json.dumps(records)

    entries = ing.quarantine.list()
    assert [(e.source, e.counts.get("bsn")) for e in entries] == [("brief.md", 1)]
    with pytest.raises(QuarantineError, match="reason"):
        ing.quarantine.release(entries[0].id, by="os:privacy", reason=" ")
    ing.quarantine.release(entries[0].id, by="os:privacy", reason="eigen afdelingsbrief, groep zorg")
    again = ing.ingest_paths([root], Labels())
    assert {r.source: r.status for r in again.results}["brief.md"] == "added"
    assert ing.quarantine.list() == []
    (root / "brief.md").write_text(f"# Brief\n\nNieuwe brief voor dhr. K. Bos, BSN {number}.\n")
    changed = ing.ingest_paths([root], Labels())  # changed content: scanned again, the old one stays
    res = next(r for r in changed.results if r.source == "brief.md")
    assert res.status == "quarantined" and "earlier version stays" in res.reason


def test_deduce_loads_in_a_fresh_process_with_the_collector_left_on() -> None:
    """deduce's tables are unpickled with the garbage collector off (7.1 s -> 1.4 s: every parser
    worker and API process pays it), and the collector is on again afterwards, the tables frozen."""
    import subprocess
    import sys

    code = ("import gc, time; from ingest.patientdata import load_deduce; t = time.perf_counter(); d = load_deduce(); "
            "print(gc.isenabled(), gc.get_freeze_count() > 100000, load_deduce() is d, "
            "d.deidentify('Jan Jansen kwam binnen.').annotations is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["True", "True", "True", "True"], out.stderr[-2000:]


def test_the_guard_loads_deduce_without_the_tables_it_never_uses() -> None:
    """The guard's copy of deduce's lookup tables (scripts/install-deduce, write_guard_tables) leaves out
    the institution tables (a third of the cache), and names and streets are still found with it."""
    import deduce

    from ingest.patientdata import UNUSED_TABLES, _guard_cache_dir, load_deduce

    assert (_guard_cache_dir(deduce) / "cache" / "lookup_structs.pickle").is_file(), "run scripts/install-deduce"
    d = load_deduce()
    assert str(d.cache_path).endswith("vraagbaak-guard")

    def size(table: object) -> int:
        return len(table.children) if hasattr(table, "children") else len(table.items())  # type: ignore[attr-defined]

    assert all(size(d.lookup_structs[name]) == 0 for name in UNUSED_TABLES)
    assert size(d.lookup_structs["first_name"]) > 20 and size(d.lookup_structs["street"]) > 20
    guard = PatientDataGuard(GuardConfig())
    parts = guard.spans("Mevrouw Jansen woont aan de Kerkstraat 12 in Utrecht.")
    assert parts["person"] and parts["address"], parts
