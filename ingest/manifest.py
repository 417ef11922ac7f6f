"""Labels per document: access groups and classification, from CLI flags and ``vraagbaak.yaml``.

A document set may carry a small manifest file ``vraagbaak.yaml`` in its root folder::

    groups: [zorg]              # defaults for every file in the set
    classification: intern
    rules:                      # matched against the path relative to the root (last match wins)
      - match: "beleid/**"      # glob; a folder name ending in "/" matches everything under it
        groups: [ict, management]
        classification: vertrouwelijk
      - match: "publiek/"
        public: true

Precedence, lowest first: ``ingest.default_classification`` from settings, the manifest's
top-level defaults, the command-line flags, then matching manifest rules in file order.
A document that ends up without groups is refused unless it is public (``--public`` or
``public: true``): no silent world-readable documents. Public documents get the group
``PUBLIC_GROUP`` and the classification ``openbaar`` unless the layer that makes them public
states another.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError, field_validator

from ingest.errors import LabelError
from vraagbaak_core.types import CLASSIFICATIONS, PUBLIC_GROUP

MANIFEST_NAME = "vraagbaak.yaml"


def _check_classification(v: str | None) -> str | None:
    if v is not None and v not in CLASSIFICATIONS:
        raise ValueError(f"unknown classification {v!r}; allowed: {', '.join(CLASSIFICATIONS)}")
    return v


def _check_groups(v: list[str] | None) -> list[str] | None:
    if v is None:
        return None
    out = [g.strip() for g in v]
    if any(not g or "," in g for g in out):
        raise ValueError("group names must be non-empty and contain no commas")
    return out


class _LabelFields(BaseModel):
    model_config = {"extra": "forbid"}

    groups: list[str] | None = None
    classification: str | None = None
    public: bool | None = None

    @field_validator("classification")
    @classmethod
    def _known_classification(cls, v: str | None) -> str | None:
        return _check_classification(v)

    @field_validator("groups")
    @classmethod
    def _valid_groups(cls, v: list[str] | None) -> list[str] | None:
        return _check_groups(v)


class ManifestRule(_LabelFields):
    match: str


class Manifest(_LabelFields):
    rules: list[ManifestRule] = []

    def matching_rules(self, rel_path: str) -> list[ManifestRule]:
        return [r for r in self.rules if _matches(r.match, rel_path)]


def _matches(pattern: str, rel_path: str) -> bool:
    if pattern.endswith("/"):
        return rel_path.startswith(pattern)
    if fnmatch.fnmatchcase(rel_path, pattern):
        return True
    # "dir/**" also matches files directly in dir; "*.pdf" matches at any depth
    if pattern.endswith("/**") and rel_path.startswith(pattern[:-2]):
        return True
    return "/" not in pattern and fnmatch.fnmatchcase(rel_path.rsplit("/", 1)[-1], pattern)


def load_manifest(root: Path) -> Manifest | None:
    path = root / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return Manifest.model_validate(raw)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise LabelError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise LabelError(f"{path}: {problems}") from None


@dataclass(frozen=True)
class Labels:
    """Labels given for a whole run (the CLI's --groups/--classification/--public, an upload's form)."""

    groups: tuple[str, ...] = ()
    classification: str | None = None
    public: bool = False

    def __post_init__(self) -> None:
        try:
            _check_classification(self.classification)
            _check_groups(list(self.groups))
        except ValueError as err:
            raise LabelError(str(err)) from None


@dataclass(frozen=True)
class DocumentLabels:
    """The labels one document is stored with."""

    groups: tuple[str, ...]
    classification: str

    @property
    def public(self) -> bool:
        return PUBLIC_GROUP in self.groups

    def fingerprint(self) -> str:
        raw = json.dumps([sorted(self.groups), self.classification])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def resolve_labels(
    rel_path: str, cli: Labels, manifest: Manifest | None, default_classification: str
) -> DocumentLabels:
    groups: list[str] | None = None
    classification: str | None = None
    public = False
    layers: list[_LabelFields] = []
    if manifest is not None:
        layers.append(manifest)
    flags = _LabelFields(
        groups=list(cli.groups) or None, classification=cli.classification, public=cli.public or None
    )
    layers.append(flags)
    if manifest is not None:
        layers.extend(manifest.matching_rules(rel_path))
    for layer in layers:
        if layer.groups is not None:
            groups = layer.groups
        if layer.classification is not None:
            classification = layer.classification
        if layer.public is not None:
            public = layer.public
            if public and layer.classification is None:
                classification = "openbaar"  # made public here: world-readable unless this layer says so
    final_groups = tuple(dict.fromkeys(groups or ()))
    if public:
        final_groups = (PUBLIC_GROUP, *(g for g in final_groups if g != PUBLIC_GROUP))
        classification = classification or "openbaar"
    if not final_groups:
        raise LabelError(
            "no access groups: give --groups, a vraagbaak.yaml entry, "
            "or --public for a world-readable document"
        )
    return DocumentLabels(groups=final_groups, classification=classification or default_classification)
