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
      - match: "protocollen/handhygiene-v4.pdf"   # document control (see ingest.doccontrol)
        version: "4"
        status: vastgesteld                    # concept | vastgesteld | vervallen
        review_date: 2027-03-01
        family: handhygiene
      - match: "dossiers/"
        patient_data: allowed                  # the patient-data guard is off for these files

Precedence, lowest first: ``ingest.default_classification`` from settings, the manifest's
top-level defaults, the command-line flags, then matching manifest rules in file order.
A document that ends up without groups is refused unless it is public (``--public`` or
``public: true``): no silent world-readable documents. Group names starting with ``__`` are
internal (``__public__``) and refused as labels, so only ``--public`` makes a document public.
Public documents get the group ``PUBLIC_GROUP`` and the classification ``openbaar`` unless the
layer that makes them public states another.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError, field_validator, model_validator

from ingest.errors import LabelError
from vraagbaak_core.types import CLASSIFICATIONS, PUBLIC_GROUP

MANIFEST_NAME = "vraagbaak.yaml"


def _check_classification(v: str | None) -> str | None:
    if v is not None and v not in CLASSIFICATIONS:
        raise ValueError(f"unknown classification {v!r}; allowed: {', '.join(CLASSIFICATIONS)}")
    return v


RESERVED_GROUP_PREFIX = "__"  # internal groups such as PUBLIC_GROUP; never given as a label


def _check_groups(v: list[str] | None) -> list[str] | None:
    if v is None:
        return None
    out = [g.strip() for g in v]
    if any(not g or "," in g for g in out):
        raise ValueError("group names must be non-empty and contain no commas")
    reserved = [g for g in out if g.startswith(RESERVED_GROUP_PREFIX)]
    if reserved:
        raise ValueError(
            f"group name {reserved[0]!r} is reserved (names starting with {RESERVED_GROUP_PREFIX!r} are "
            "internal); for a world-readable document use --public or `public: true`"
        )
    return out


class _LabelFields(BaseModel):
    model_config = {"extra": "forbid"}

    groups: list[str] | None = None
    classification: str | None = None
    public: bool | None = None
    # document control (ingest.doccontrol): checked here, merged with the file's own properties
    owner: str | None = None
    version: str | None = None
    status: str | None = None
    valid_from: str | date | None = None
    review_date: str | date | None = None
    expires: str | date | None = None
    family: str | None = None
    supersedes: list[str] | str | None = None
    # "allowed" switches the patient-data guard off for the files this layer covers
    patient_data: Literal["allowed", "guarded"] | None = None

    @field_validator("version", "family", "owner", mode="before")
    @classmethod
    def _as_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int | float) else v

    def control_fields(self) -> dict[str, Any]:
        from ingest.doccontrol import FIELDS, validate_fields

        raw = {k: getattr(self, k) for k in FIELDS if getattr(self, k) is not None}
        try:
            return validate_fields(raw)
        except LabelError as err:
            raise ValueError(str(err)) from None

    @model_validator(mode="after")
    def _valid_control(self) -> _LabelFields:
        self.control_fields()
        return self

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
    # document control from vraagbaak.yaml: the set's defaults and the matching rules' values
    control_defaults: tuple[tuple[str, Any], ...] = ()
    control_rules: tuple[tuple[str, Any], ...] = ()
    patient_data_allowed: bool = False

    @property
    def public(self) -> bool:
        return PUBLIC_GROUP in self.groups

    def fingerprint(self) -> str:
        parts: list[Any] = [sorted(self.groups), self.classification]
        if self.control_defaults or self.control_rules or self.patient_data_allowed:
            parts += [list(self.control_defaults), list(self.control_rules), self.patient_data_allowed]
        raw = json.dumps(parts, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def resolve_labels(
    rel_path: str, cli: Labels, manifest: Manifest | None, default_classification: str
) -> DocumentLabels:
    groups: list[str] | None = None
    classification: str | None = None
    public = False
    control_defaults: dict[str, Any] = manifest.control_fields() if manifest is not None else {}
    control_rules: dict[str, Any] = {}
    patient_data = manifest.patient_data if manifest is not None else None
    for rule in manifest.matching_rules(rel_path) if manifest is not None else []:
        control_rules.update(rule.control_fields())
        patient_data = rule.patient_data or patient_data
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
    return DocumentLabels(
        groups=final_groups, classification=classification or default_classification,
        control_defaults=tuple(sorted(control_defaults.items())),
        control_rules=tuple(sorted(control_rules.items())),
        patient_data_allowed=patient_data == "allowed",
    )
