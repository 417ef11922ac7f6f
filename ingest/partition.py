"""Stable hash partitions of the documents, so N ingest workers each take a share.

A document belongs to partition ``sha256(json([source_set, source])) mod N``: the same identity
the document id is made from (``ingest.pipeline.doc_id_for``: the source set's name and the path
inside it), hashed with sha256 (never Python's ``hash``, which is salted per process). So:

- every document is in exactly one of the N partitions (union = the whole, pairwise disjoint);
- a document's partition depends on its own identity only: adding, removing or renaming other
  files never moves it, and neither does moving the set to another folder (``--rebind``);
- every worker computes the same partitions without talking to the others.

Indices are 0-based, as Kubernetes' ``JOB_COMPLETION_INDEX`` of an Indexed Job: ``0/3``, ``1/3``
and ``2/3`` cover everything; ``3/3`` is refused. ``auto/N`` takes the index from the environment
variable ``JOB_COMPLETION_INDEX``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ingest.errors import LabelError

INDEX_ENV = "JOB_COMPLETION_INDEX"
MAX_PARTITIONS = 10_000
_SPEC = re.compile(r"^\s*(auto|\d+)\s*/\s*(\d+)\s*$")


def partition_of(source_set: str, source: str, count: int) -> int:
    """The 0-based partition of the document at ``source`` inside ``source_set``, of ``count``."""
    if count < 1:
        raise ValueError("count must be at least 1")
    key = json.dumps([source_set, source], ensure_ascii=False).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % count


@dataclass(frozen=True)
class Partition:
    """Partition ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARTITIONS:
            raise LabelError(f"--partition: the number of partitions must be 1 to {MAX_PARTITIONS}, not {self.count}")
        if not 0 <= self.index < self.count:
            raise LabelError(
                f"--partition {self.index}/{self.count}: the index is 0-based (as Kubernetes' "
                f"{INDEX_ENV}), so it must be 0 to {self.count - 1}"
            )

    def holds(self, source_set: str, source: str) -> bool:
        return partition_of(source_set, source, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_partition(spec: str, env: Mapping[str, str] | None = None) -> Partition:
    """``I/N`` (0-based) or ``auto/N`` (index from ``$JOB_COMPLETION_INDEX``) to a Partition."""
    m = _SPEC.match(spec)
    if m is None:
        raise LabelError(
            f"--partition {spec!r}: expected I/N, e.g. 0/4 (index 0 to N-1, 0-based as Kubernetes' "
            f"{INDEX_ENV}), or auto/N to take the index from ${INDEX_ENV}"
        )
    raw_index, count = m.group(1), int(m.group(2))
    if raw_index == "auto":
        value = (os.environ if env is None else env).get(INDEX_ENV)
        if value is None or not value.strip().isdigit():
            raise LabelError(
                f"--partition auto/{count}: ${INDEX_ENV} is "
                + ("not set" if value is None else f"{value!r}, not a number")
                + " (Kubernetes sets it in the pods of an Indexed Job); give the index: I/N"
            )
        raw_index = value.strip()
    return Partition(int(raw_index), count)


def check_prune_options(partition: Partition | None, *, prune: bool, prune_only: bool, dry_run: bool) -> None:
    """A prune compares the whole folder with the catalog, so it never runs inside one partition."""
    if prune and prune_only:
        raise LabelError("give --prune or --prune-only, not both")
    if partition is not None and (prune or prune_only or dry_run):
        raise LabelError(
            f"--partition {partition} cannot be combined with --prune, --prune-only or --dry-run: a prune "
            "compares the whole folder with the catalog, and one partition sees only its share; run "
            "`vraagbaak ingest DIR --prune-only` once, after every partition is done"
        )
