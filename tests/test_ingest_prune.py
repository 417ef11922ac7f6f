"""--prune never loses a folder by accident (issue 11, item 1) and links never lead out of a root (item 4).

Before: a YAML typo in ``vraagbaak.yaml`` plus ``--prune`` printed "3 deleted, 3 failed"; an empty
or unmounted share was pruned to nothing; a symbolic link in a root was followed anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ingest_support import make_ingestor

from ingest.manifest import Labels
from ingest.pipeline import Ingestor

ZORG = Labels(groups=("zorg",))


@pytest.fixture(scope="module")
def ing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestor]:
    ingestor = make_ingestor(tmp_path_factory.mktemp("prune"))
    yield ingestor
    ingestor.close()
    ingestor.store.close()


def _folder(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        (root / f"p{i}.md").write_text(f"# Protocol {i}\n\nStap {i}: handen wassen en drogen.", encoding="utf-8")
    return root


def _stored(ing: Ingestor, root: Path) -> set[str]:
    return {r.source for r in ing.state.in_source_set(str(root.resolve())) if r.committed}


def test_a_manifest_typo_never_prunes_the_folder(ing: Ingestor, tmp_path: Path) -> None:
    root = _folder(tmp_path / "set", 3)
    (root / "vraagbaak.yaml").write_text("groups: [zorg]\n", encoding="utf-8")
    assert len(ing.ingest_paths([root], Labels()).added) == 3
    (root / "vraagbaak.yaml").write_text("groups: [zorg\nclassification: intern\n", encoding="utf-8")
    for force in (False, True):  # --force never overrides a manifest that failed
        report = ing.ingest_paths([root], Labels(), prune=True, force=force)
        assert not report.deleted and len(report.failed) == 3
        assert "not valid YAML" in (report.prune[0].refused or "")
    assert _stored(ing, root) == {"p0.md", "p1.md", "p2.md"}
    assert all(ing.store.count(r.doc_id) > 0 for r in ing.state.in_source_set(str(root)))


def test_an_empty_or_unmounted_share_is_not_pruned(ing: Ingestor, tmp_path: Path) -> None:
    root = _folder(tmp_path / "share", 3)
    ing.ingest_paths([root], ZORG)
    for f in root.iterdir():  # the share is not mounted: the mount point is an empty folder
        f.unlink()
    report = ing.ingest_paths([root], ZORG, prune=True)
    assert not report.deleted and "is the share mounted" in (report.prune[0].refused or "")
    assert len(_stored(ing, root)) == 3
    emptied = ing.ingest_paths([root], ZORG, prune=True, force=True)  # meant to be empty
    assert len(emptied.deleted) == 3 and not _stored(ing, root)


def test_a_folder_that_cannot_be_listed_is_not_pruned(
    ing: Ingestor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path / "listing", 2)
    (root / "sub").mkdir()
    (root / "sub" / "q.md").write_text("# Q\n\nIn een submap.", encoding="utf-8")
    ing.ingest_paths([root], ZORG)
    real_walk = os.walk

    def walk(top: Any, onerror: Any = None, followlinks: bool = False) -> Iterator[Any]:
        # scripted edge case: "sub" is unreadable (a test run as root cannot chmod it away)
        for dirpath, dirnames, filenames in real_walk(top, onerror=onerror, followlinks=followlinks):
            if Path(dirpath).name == "sub":
                onerror(PermissionError(13, "Permission denied", dirpath))
                continue
            yield dirpath, dirnames, filenames

    monkeypatch.setattr("ingest.pipeline.os.walk", walk)
    report = ing.ingest_paths([root], ZORG, prune=True, force=True)
    assert not report.deleted and "could not be listed" in (report.prune[0].refused or "")
    assert "sub/q.md" in _stored(ing, root)


def test_prune_over_the_share_limit_needs_force_and_dry_run_lists_it(ing: Ingestor, tmp_path: Path) -> None:
    root = _folder(tmp_path / "big", 10)
    ing.ingest_paths([root], ZORG)
    for i in (0, 1):
        (root / f"p{i}.md").unlink()
    within = ing.ingest_paths([root], ZORG, prune=True)  # 2 of 10 = 20%: not more than the limit
    assert sorted(r.source for r in within.deleted) == ["p0.md", "p1.md"] and not within.prune_refused
    for i in (2, 3, 4):
        (root / f"p{i}.md").unlink()
    (root / "nieuw.md").write_text("# Nieuw\n\nNieuw protocol.", encoding="utf-8")
    dry = ing.ingest_paths([root], ZORG, prune=True, dry_run=True)
    assert dry.prune[0].dry_run and sorted(dry.prune[0].remove) == ["p2.md", "p3.md", "p4.md"]
    assert "prune_max_fraction" in (dry.prune[0].refused or "")  # 3 of 8 = 38%
    assert not dry.results and len(_stored(ing, root)) == 8  # a dry run writes nothing
    refused = ing.ingest_paths([root], ZORG, prune=True)
    assert not refused.deleted and refused.prune_refused and [r.source for r in refused.added] == ["nieuw.md"]
    forced = ing.ingest_paths([root], ZORG, prune=True, force=True)
    assert sorted(r.source for r in forced.deleted) == ["p2.md", "p3.md", "p4.md"]
    assert _stored(ing, root) == {f"p{i}.md" for i in range(5, 10)} | {"nieuw.md"}


def test_links_are_not_followed_out_of_the_root(ing: Ingestor, tmp_path: Path) -> None:
    outside = tmp_path / "elders"
    outside.mkdir()
    (outside / "geheim.md").write_text("# Geheim\n\nWachtwoord van de beheerder: zwaardvis.", encoding="utf-8")
    (outside / "map").mkdir()
    (outside / "map" / "ook.md").write_text("# Ook\n\nOok geheim.", encoding="utf-8")
    root = _folder(tmp_path / "root", 1)
    (root / "lek.md").symlink_to(outside / "geheim.md")
    (root / "lekmap").symlink_to(outside / "map")
    (root / "alias.md").symlink_to(root / "p0.md")  # a link inside the root is fine
    report = ing.ingest_paths([root], ZORG)
    failed = {r.source: r.reason for r in report.failed}
    assert set(failed) == {"lek.md", "lekmap"} and all("outside" in v for v in failed.values())
    assert sorted(r.source for r in report.added) == ["alias.md", "p0.md"]
    explicit = ing.ingest_paths([root / "lek.md"], ZORG)  # named on the command line: refused too
    assert explicit.failed and "not followed" in explicit.failed[0].reason
    assert "lek.md" not in _stored(ing, root) and "lekmap/ook.md" not in _stored(ing, root)
