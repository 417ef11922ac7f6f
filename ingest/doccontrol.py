"""Document-control metadata: owner, version, status, dates and family, as quality systems keep them.

Sources, lowest precedence first:

1. the top-level fields of ``vraagbaak.yaml`` (defaults for the whole set, e.g. ``owner``);
2. the document's own properties: PDF info (custom keys such as ``/Version``, ``/Status``,
   ``/ReviewDate``), DOCX core properties (``version``, ``contentStatus``) and custom properties,
   ODT user-defined metadata, Markdown front matter;
3. the ``vraagbaak.yaml`` rules that match the document's path (IT's explicit word).

Keys are read case-insensitively, in English or Dutch (``versie``, ``eigenaar``,
``herzieningsdatum``, ``vervaldatum`` ...). Dates are ``YYYY-MM-DD`` or ``DD-MM-YYYY``. A bad value
(an unparseable date, an unknown status) fails the document with a reason naming the field.

Lifecycle (who may answer): a ``vervallen`` document never answers; within a family (``family``
key, or linked by ``supersedes``) only the newest ``vastgesteld`` version answers, the rest are
``superseded``. Expiry is checked at query time (``retrieval.access.current_filter``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ingest.errors import LabelError
from vraagbaak_core.types import DOC_STATUSES, PUBLIC_GROUP, DocControl

FIELDS: tuple[str, ...] = (
    "owner", "version", "status", "valid_from", "review_date", "expires", "family", "supersedes",
)
DATE_FIELDS = ("valid_from", "review_date", "expires")

_ALIASES: dict[str, str] = {
    "owner": "owner", "eigenaar": "owner", "documenteigenaar": "owner", "document_owner": "owner",
    "version": "version", "versie": "version", "versienummer": "version",
    "status": "status", "content_status": "status", "contentstatus": "status", "documentstatus": "status",
    "valid_from": "valid_from", "validfrom": "valid_from", "geldig_vanaf": "valid_from",
    "ingangsdatum": "valid_from", "vastgesteld_op": "valid_from", "effective_date": "valid_from",
    "review_date": "review_date", "reviewdate": "review_date", "herzieningsdatum": "review_date",
    "herzien_op": "review_date", "revisiedatum": "review_date", "evaluatiedatum": "review_date",
    "expires": "expires", "expiry_date": "expires", "expiration_date": "expires",
    "vervaldatum": "expires", "geldig_tot": "expires", "verloopt": "expires",
    "family": "family", "familie": "family", "documentfamilie": "family", "document_family": "family",
    "document_id": "family", "documentnummer": "family", "identifier": "family",
    "supersedes": "supersedes", "vervangt": "supersedes", "replaces": "supersedes",
}
_STATUS_ALIASES: dict[str, str] = {
    "concept": "concept", "draft": "concept", "ontwerp": "concept",
    "vastgesteld": "vastgesteld", "approved": "vastgesteld", "final": "vastgesteld",
    "definitief": "vastgesteld", "geldig": "vastgesteld",
    "vervallen": "vervallen", "withdrawn": "vervallen", "obsolete": "vervallen", "ingetrokken": "vervallen",
}
_DMY = re.compile(r"^(\d{1,2})[-./](\d{1,2})[-./](\d{4})$")


class DocumentControlError(LabelError):
    """A document-control value that cannot be read; fails that one document."""


def normalise_key(key: str) -> str | None:
    k = re.sub(r"[\s\-]+", "_", key.strip().lstrip("/").strip()).lower()
    return _ALIASES.get(k) or _ALIASES.get(k.replace("_", ""))


def _camel_to_snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key.strip().lstrip("/"))


def properties_from(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The document-control fields among a file's properties (other keys are ignored)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = normalise_key(_camel_to_snake(str(key)))
        if name is None or value is None or (isinstance(value, str) and not value.strip()):
            continue
        out[name] = value
    return out


def parse_date(value: Any, field_name: str) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    try:
        if m := _DMY.match(text):
            return date(int(m.group(3)), int(m.group(2)), int(m.group(1))).isoformat()
        return date.fromisoformat(text[:10] if re.match(r"^\d{4}-\d\d-\d\dT", text) else text).isoformat()
    except ValueError:
        raise DocumentControlError(
            f"document control: {field_name} {text!r} is not a date (use YYYY-MM-DD or DD-MM-YYYY)"
        ) from None


def parse_status(value: Any) -> str:
    text = str(value).strip().lower()
    status = _STATUS_ALIASES.get(text)
    if status is None:
        raise DocumentControlError(
            f"document control: unknown status {str(value).strip()!r}; allowed: {', '.join(DOC_STATUSES)}"
        )
    return status


def _supersedes(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(s for s in (str(x).strip() for x in items) if s)


def validate_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Checked and normalised values (dates ISO, status canonical); raises DocumentControlError."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key in DATE_FIELDS:
            out[key] = parse_date(value, key)
        elif key == "status":
            out[key] = parse_status(value)
        elif key == "supersedes":
            out[key] = _supersedes(value)
        elif key in FIELDS:
            text = str(value).strip()
            if len(text) > 200:
                raise DocumentControlError(f"document control: {key} is longer than 200 characters")
            if text:
                out[key] = text
        else:
            raise DocumentControlError(f"document control: unknown field {key!r}; allowed: {', '.join(FIELDS)}")
    return out


def resolve_control(layers: Iterable[Mapping[str, Any]]) -> DocControl:
    """Merge the layers (lowest first), check them, and build the DocControl."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(validate_fields(layer))
    control = DocControl(**merged)
    if control.valid_from and control.expires and control.expires <= control.valid_from:
        raise DocumentControlError(
            f"document control: expires ({control.expires}) is not after valid_from ({control.valid_from})"
        )
    if control.status == "vervallen":
        control = DocControl(**{**merged, "lifecycle": "vervallen"})
    return control


# ----------------------------------------------------------------- families and supersession


@dataclass(frozen=True)
class Versioned:
    doc_id: str
    source: str
    control: DocControl
    ingested_at: str = ""
    source_set: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Standing:
    """Where a document stands for answering as of a day: its lifecycle, and the day a newer version
    takes over from it (its ``valid_from``), which the query-time filter enforces on that day."""

    lifecycle: str
    until: str | None = None


def version_key(version: str | None) -> tuple[Any, ...]:
    """Natural order: "2.10" after "2.9", "v3" after "v2"; no version sorts first."""
    if not version:
        return ()
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in re.findall(r"\d+|[^\d\W]+", version))


def family_key(d: Versioned) -> tuple[str, ...] | None:
    """A family resolves within the document's own source set; ``family: GROUP:NAME`` names a family
    scope owned by a group, shared across source sets by the documents of that group only."""
    if not d.control.family:
        return None
    fam = d.control.family.strip().lower()
    group, sep, name = fam.partition(":")
    if sep and name and group in {g.lower() for g in d.groups}:
        return ("scope", group, name.strip())
    return ("set", d.source_set, fam)


def may_supersede(new: Versioned, old: Versioned) -> bool:
    """A document supersedes only documents whose groups all lie within its own (the public marker
    aside). Its own groups are ones the ingesting identity manages (the documents API refuses others),
    so a group can never retire another group's protocol."""
    return set(old.groups) - {PUBLIC_GROUP} <= set(new.groups) - {PUBLIC_GROUP}


def lifecycles(docs: Iterable[Versioned], today: date | None = None) -> dict[str, str]:
    """doc_id → ``current`` | ``superseded`` | ``vervallen`` for every document given, as of ``today``."""
    return {k: v.lifecycle for k, v in standings(docs, today).items()}


def standings(docs: Iterable[Versioned], today: date | None = None) -> dict[str, Standing]:
    """Every document's :class:`Standing` as of ``today``.

    Within a family (see :func:`family_key`, joined with the documents a ``supersedes`` names in the
    same source set) the newest ``vastgesteld`` version already valid answers; an older one is
    ``superseded`` if the newer one may supersede it (:func:`may_supersede`). A version whose
    ``valid_from`` lies ahead stays ``current`` but does not answer before that day (query-time filter);
    the version it replaces keeps answering until then (``until``) and stops on that day, no re-ingest.
    """
    docs = list(docs)
    day = (today or date.today()).isoformat()
    by_ref: dict[tuple[str, str], Versioned] = {}
    by_id = {d.doc_id: d for d in docs}
    for d in docs:
        by_ref[(d.source_set, d.source)] = d
    out = {d.doc_id: ("vervallen" if d.control.status == "vervallen" else "current") for d in docs}
    until: dict[str, str] = {}

    def in_force(d: Versioned) -> bool:
        return not d.control.valid_from or d.control.valid_from <= day

    def takes_over(new: Versioned, old: Versioned) -> None:
        if in_force(new):
            if out[old.doc_id] == "current":
                out[old.doc_id] = "superseded"
        elif new.control.valid_from and (old.doc_id not in until or new.control.valid_from < until[old.doc_id]):
            until[old.doc_id] = new.control.valid_from

    parent: dict[str, str] = {d.doc_id: d.doc_id for d in docs}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    first_of_family: dict[tuple[str, ...], str] = {}
    for d in docs:
        key = family_key(d)
        if key is not None:
            if key in first_of_family:
                union(d.doc_id, first_of_family[key])
            else:
                first_of_family[key] = d.doc_id
    links: list[tuple[Versioned, Versioned]] = []
    for d in docs:
        for ref in d.control.supersedes:
            old = (by_ref.get((d.source_set, ref)) or by_ref.get((d.source_set, ref.lstrip("./")))
                   or (by_id.get(ref) if ref in by_id and by_id[ref].source_set == d.source_set else None))
            if old is not None and old.doc_id != d.doc_id and may_supersede(d, old):
                union(d.doc_id, old.doc_id)
                if d.control.status == "vastgesteld":
                    links.append((d, old))
    families: dict[str, list[Versioned]] = {}
    for d in docs:
        families.setdefault(find(d.doc_id), []).append(d)

    def rank(d: Versioned) -> tuple[Any, ...]:
        return (version_key(d.control.version), d.control.valid_from or "", d.ingested_at)

    for members in families.values():
        established = [d for d in members if d.control.status == "vastgesteld"]
        if len(members) < 2 or not established:
            continue
        for d in members:  # each document, by the newer versions that may supersede it (its own groups)
            newer = [e for e in established if e.doc_id != d.doc_id and may_supersede(e, d)
                     and (d.control.status != "vastgesteld" or rank(e) > rank(d))]
            for e in newer:
                takes_over(e, d)
    for new, old in links:
        takes_over(new, old)
    return {d.doc_id: Standing(out[d.doc_id], until.get(d.doc_id) if out[d.doc_id] == "current" else None)
            for d in docs}


def review_overdue(control: DocControl, today: date | None = None) -> bool:
    return bool(control.review_date) and date.fromisoformat(str(control.review_date)) < (today or date.today())


# ----------------------------------------------------------------- what the quality officer must review


@dataclass(frozen=True)
class DueItem:
    doc_id: str
    source: str
    title: str
    owner: str | None
    version: str | None
    what: str  # "review" | "expires" | "takes_over" (a new version's first day) | "replaced" (an old one's last)
    due: str  # ISO date
    days: int  # days from today; negative: overdue

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id, "source": self.source, "title": self.title, "owner": self.owner,
            "version": self.version, "what": self.what, "due": self.due, "days": self.days,
            "overdue": self.days < 0,
        }


def parse_window(text: str) -> int:
    """``30d``, ``6w``, ``3m`` (30-day months) or a plain number of days → days."""
    m = re.fullmatch(r"\s*(\d{1,4})\s*([dwm]?)\s*", text.lower())
    if m is None:
        raise ValueError(f"cannot read {text!r} as a period; use e.g. 30d, 6w or 3m")
    return int(m.group(1)) * {"": 1, "d": 1, "w": 7, "m": 30}[m.group(2)]


def due(
    docs: Iterable[tuple[str, str, str, DocControl]], within_days: int, today: date | None = None
) -> list[DueItem]:
    """Documents (doc_id, source, title, control) whose review or expiry falls before today + window,
    overdue ones included, and the upcoming switch-overs: a version whose ``valid_from`` lies ahead
    (``takes_over``) and the version it replaces on that day (``replaced``); vervallen and superseded
    documents need no review. Soonest first."""
    today = today or date.today()
    out: list[DueItem] = []
    for doc_id, source, title, c in docs:
        if c.lifecycle != "current":
            continue
        ahead = c.valid_from if c.valid_from and c.valid_from > today.isoformat() else None
        for what, when in (("review", c.review_date), ("expires", c.expires), ("takes_over", ahead),
                           ("replaced", c.until)):
            if not when:
                continue
            days = (date.fromisoformat(when) - today).days
            if days <= within_days and (what in ("review", "expires") or days >= 0):
                out.append(DueItem(doc_id, source, title, c.owner, c.version, what, when, days))
    return sorted(out, key=lambda d: (d.days, d.source))
