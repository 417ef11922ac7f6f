"""``vraagbaak ingest --partition I/N`` (issue 14, item 3): N workers share a run, each document once.

The partition of a document is sha256 of its identity (source set + path inside it) mod N:
union = the whole, pairwise disjoint, and a file's partition never depends on other files. A
prune needs the whole listing, so it is refused with a partition and runs once afterwards
(``--prune-only``), with every safety rule of a normal prune.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest_support import make_ingestor

from ingest.errors import LabelError
from ingest.manifest import Labels
from ingest.partition import Partition, parse_partition, partition_of
from ingest.pipeline import Ingestor

ZORG = Labels(groups=("zorg",))
ROOT = Path(__file__).resolve().parents[1]


def _names(rng: random.Random, n: int) -> list[str]:
    parts = ["beleid", "protocollen", "GGZ", "verpleging", "ä", "zorg ", "Ŧest", "x"]
    return [
        "/".join(rng.choice(parts) for _ in range(rng.randint(0, 3))) + f"/doc-{i}-{rng.random():.6f}.pdf"
        for i in range(n)
    ]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_partitions_cover_everything_once(count: int) -> None:
    rng = random.Random(count)
    sets = ["/srv/intranet", "intranet", "handboek-ggz"]
    docs = [(rng.choice(sets), name) for name in _names(rng, 1200)]
    shares = [
        {d for d in docs if Partition(i, count).holds(*d)} for i in range(count)
    ]
    assert set().union(*shares) == set(docs)  # nothing left out
    assert sum(len(s) for s in shares) == len(docs)  # pairwise disjoint
    for share in shares:  # and roughly even (sha256 is uniform): within 25% of the mean
        assert abs(len(share) - len(docs) / count) <= 0.25 * len(docs) / count


def test_a_files_partition_depends_on_its_identity_only() -> None:
    rng = random.Random(7)
    old = [("intranet", n) for n in _names(rng, 300)]
    before = {d: partition_of(*d, 4) for d in old}
    grown = old + [("intranet", n) for n in _names(rng, 300)] + [("andere-set", n) for _, n in old]
    rng.shuffle(grown)
    after = {d: partition_of(*d, 4) for d in grown}
    assert all(after[d] == p for d, p in before.items())  # adding files moves none of the others
    # a fixed value: the hash is sha256 of the identity, the same on every machine and Python run
    assert partition_of("intranet", "beleid/handhygiene.pdf", 1000) == 316
    # the same path in another set is another document, and may be in another partition
    assert any(partition_of("a", n, 4) != partition_of("b", n, 4) for _, n in old)
    code = "from ingest.partition import partition_of; print(partition_of('intranet', 'beleid/handhygiene.pdf', 1000))"
    out = subprocess.run(  # another process, another PYTHONHASHSEED: the same answer
        [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "316"


def test_partition_specs() -> None:
    assert parse_partition("0/3") == Partition(0, 3)
    assert parse_partition(" 2 / 3 ") == Partition(2, 3)
    assert parse_partition("auto/4", env={"JOB_COMPLETION_INDEX": "3"}) == Partition(3, 4)
    with pytest.raises(LabelError, match=r"0-based .* must be 0 to 2"):
        parse_partition("3/3")
    with pytest.raises(LabelError, match="must be 1 to"):
        parse_partition("0/0")
    for bad in ("-1/3", "1", "1/3/4", "a/b", "", "1.5/3"):
        with pytest.raises(LabelError, match="expected I/N"):
            parse_partition(bad)
    with pytest.raises(LabelError, match=r"JOB_COMPLETION_INDEX is not set"):
        parse_partition("auto/4", env={})
    with pytest.raises(LabelError, match=r"'x', not a number"):
        parse_partition("auto/4", env={"JOB_COMPLETION_INDEX": "x"})
    with pytest.raises(LabelError, match="must be 0 to 3"):
        parse_partition("auto/4", env={"JOB_COMPLETION_INDEX": "4"})


@pytest.fixture(scope="module")
def ing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestor]:
    ingestor = make_ingestor(tmp_path_factory.mktemp("partition"))
    yield ingestor
    ingestor.close()
    ingestor.store.close()


def _write(root: Path, names: list[str]) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"# {name}\n\nWerkinstructie {name}: handen wassen en drogen.", encoding="utf-8")


def test_partitioned_runs_ingest_every_document_once_then_prune_once(ing: Ingestor, tmp_path: Path) -> None:
    root = tmp_path / "set"
    first = [f"p{i}.md" for i in range(5)] + ["sub/q.md"]
    _write(root, first)
    parts = [Partition(i, 3) for i in range(3)]
    added: list[str] = []
    for p in parts:
        report = ing.ingest_paths([root], ZORG, partition=p)
        assert not report.failed and report.partition == str(p)
        assert report.outside_partition + len(report.results) == len(first)
        assert all(p.holds(str(root.resolve()), r.source) for r in report.results)
        added += [r.source for r in report.added]
    assert sorted(added) == sorted(first)  # every document exactly once over the three workers
    stored = {r.source: r.doc_id for r in ing.state.in_source_set(str(root.resolve())) if r.committed}
    assert set(stored) == set(first)

    # files added: each worker takes only its new ones, the old ones stay where they were
    _write(root, ["p5.md", "p6.md"])
    again = [ing.ingest_paths([root], ZORG, partition=p) for p in parts]
    assert sorted(r.source for rep in again for r in rep.added) == ["p5.md", "p6.md"]
    assert sorted(r.source for rep in again for r in rep.unchanged) == sorted(first)

    # a prune inside a partition would remove the other partitions' documents: refused
    (root / "p0.md").unlink()
    for kw in ({"prune": True}, {"prune_only": True}, {"dry_run": True}):
        with pytest.raises(LabelError, match="run `vraagbaak ingest DIR --prune-only` once"):
            ing.ingest_paths([root], ZORG, partition=parts[0], **kw)  # type: ignore[arg-type]
    # once, after all partitions: ingests nothing, removes what is gone
    preview = ing.ingest_paths([root], ZORG, prune_only=True, dry_run=True)
    assert preview.prune[0].remove == ["p0.md"] and not preview.deleted
    (root / "p1.md").write_text("# p1\n\nGewijzigd, maar --prune-only ingest niets.", encoding="utf-8")
    pruned = ing.ingest_paths([root], ZORG, prune_only=True)
    assert [(r.source, r.status) for r in pruned.results] == [("p0.md", "deleted")]
    assert ing.store.count(stored["p0.md"]) == 0
    assert ing.state.find(str(root.resolve()), "p1.md") is not None


def test_prune_only_keeps_the_safety_rules(ing: Ingestor, tmp_path: Path) -> None:
    root = tmp_path / "share"
    _write(root, ["a.md", "b.md", "c.md"])
    ing.ingest_paths([root], ZORG)
    for f in root.iterdir():  # the share is not mounted
        f.unlink()
    refused = ing.ingest_paths([root], ZORG, prune_only=True)
    assert not refused.deleted and "is the share mounted" in (refused.prune[0].refused or "")
    _write(root, ["a.md"])  # two of three gone: over ingest.prune_max_fraction
    refused = ing.ingest_paths([root], ZORG, prune_only=True)
    assert not refused.deleted and "prune_max_fraction" in (refused.prune[0].refused or "")
    (root / "vraagbaak.yaml").write_text("groups: [zorg\n", encoding="utf-8")  # a manifest typo
    refused = ing.ingest_paths([root], ZORG, prune_only=True, force=True)
    assert not refused.deleted and "not valid YAML" in (refused.prune[0].refused or "")
    (root / "vraagbaak.yaml").unlink()
    forced = ing.ingest_paths([root], ZORG, prune_only=True, force=True)
    assert sorted(r.source for r in forced.deleted) == ["b.md", "c.md"]


def test_cli_refuses_bad_partitions_before_loading_anything(tmp_path: Path) -> None:
    env = {**os.environ, "VRAAGBAAK_DATA_DIR": str(tmp_path / "data")}
    env.pop("JOB_COMPLETION_INDEX", None)
    cli = [sys.executable, "-m", "serving.cli.main", "ingest", str(tmp_path)]
    for args, message in [
        (["--partition", "3/3"], "the index is 0-based"),
        (["--partition", "auto/3"], "JOB_COMPLETION_INDEX is not set"),
        (["--partition", "0/3", "--prune"], "--prune-only` once"),
    ]:
        proc = subprocess.run(cli + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in " ".join(proc.stderr.split()), (args, proc.stderr)
        assert not (tmp_path / "data").exists()  # nothing was opened or written
