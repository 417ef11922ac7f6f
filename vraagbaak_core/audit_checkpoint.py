"""The verified prefix of an audit chain: what lets the access report verify only what is new.

A checkpoint says "the first ``records`` entries of the chain at ``location``, up to ``position``, whose
(position, stored text) pairs hash to ``prefix_sha256``, verified whole: every seal and link; the head was
``head_sha256``; these ``open_access`` chat.access records had no outcome yet". It is sealed with the audit
key (HMAC-SHA256 over its canonical JSON, wrapped so no record or manifest seal can pass for it), so only a
holder of the key can write one; the sink keeps it beside the chain (:class:`AuditCheckpointStore`).

A report re-hashes the prefix's stored entries (cheap: no parsing, no HMAC), walks only the entries after
it with the full checks, and trusts the prefix only when the hash matches. The checkpoint also records
whether every prefix line reads the same by the plain text reader :func:`plain_field` as parsed (``plain``),
which is what lets the report skip parsing the prefix lines a filter cannot match.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson

from vraagbaak_core.audit import Sealer, utc_timestamp
from vraagbaak_core.types import AuditEntry

if TYPE_CHECKING:
    from vraagbaak_core.ports import AuditCheckpointStore

log = logging.getLogger(__name__)

FORMAT = "vraagbaak-audit-checkpoint"
VERSION = 1
PLAIN_FIELDS = ("timestamp", "user_id", "network_access_point")


@dataclass(frozen=True)
class Checkpoint:
    location: str  # the chain it is about (a copied checkpoint names another chain and is refused)
    key_id: str | None  # the key that sealed it and verified the prefix (None: an unkeyed chain)
    records: int
    position: int  # the last prefix entry's position (file line, database sequence number)
    prefix_sha256: str  # see PrefixDigest
    head_sha256: str
    open_access: tuple[str, ...]
    plain: bool  # every prefix line reads the same by plain_field and documents_plain as parsed
    verified_at: str

    def body(self) -> dict[str, Any]:
        d = asdict(self)
        d["open_access"] = list(self.open_access)
        return {"format": FORMAT, "version": VERSION, **d}


def _seal(sealer: Sealer, body: Mapping[str, Any]) -> str:
    return sealer.seal({FORMAT: body})


def dumps(cp: Checkpoint, sealer: Sealer) -> str:
    body = cp.body()
    return orjson.dumps({**body, "seal": _seal(sealer, body)}).decode("utf-8")


def loads(text: str, sealer: Sealer, location: str) -> Checkpoint | None:
    """The checkpoint, or None (with a warning) when it is unreadable, not sealed by this key, or about
    another chain: the report then verifies the whole chain, as without one."""
    try:
        d = orjson.loads(text)
        if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("version") != VERSION:
            raise ValueError("not a checkpoint")
        seal = str(d.pop("seal"))
        if not hmac.compare_digest(_seal(sealer, d), seal):
            log.warning("audit checkpoint for %s refused: its seal does not match (forged, edited, or another key)",
                        location)
            return None
        cp = Checkpoint(
            location=str(d["location"]), key_id=d["key_id"], records=int(d["records"]),
            position=int(d["position"]), prefix_sha256=str(d["prefix_sha256"]), head_sha256=str(d["head_sha256"]),
            open_access=tuple(str(x) for x in d["open_access"]), plain=d["plain"] is True,
            verified_at=str(d["verified_at"]),
        )
    except (ValueError, KeyError, TypeError) as err:
        log.warning("audit checkpoint for %s ignored: %s", location, err)
        return None
    if cp.key_id != sealer.key_id or cp.location != location:
        log.warning("audit checkpoint for %s refused: it is about %s under key %s", location, cp.location, cp.key_id)
        return None
    return cp


def load(store: AuditCheckpointStore, sealer: Sealer, location: str) -> Checkpoint | None:
    try:
        text = store.load_checkpoint()
    except OSError as err:
        log.warning("audit checkpoint for %s unreadable: %s", location, err)
        return None
    return None if text is None else loads(text, sealer, location)


def save(store: AuditCheckpointStore, cp: Checkpoint, sealer: Sealer) -> None:
    """Best effort: a checkpoint that cannot be stored only makes the next report slower."""
    try:
        store.save_checkpoint(dumps(cp, sealer))
    except OSError as err:
        log.warning("audit checkpoint for %s not stored: %s", cp.location, err)


class PrefixDigest:
    """What proves a prefix unchanged: sha256 over the stored texts (each followed by a newline) and sha256 over
    the positions (signed 64-bit, little-endian), combined with their count. Streamed entry by entry (the whole
    walk) or computed at once (:meth:`of`), to the same value. Only complete entries without a newline in their
    text can be checkpointed (:attr:`checkpointable`): a torn line or a line holding a newline is never part of
    a verified prefix, and the joined text then splits back into exactly the stored entries."""

    def __init__(self) -> None:
        self._text = hashlib.sha256()
        self._pos = hashlib.sha256()
        self.entries = 0
        self.position = 0
        self.checkpointable = True

    def add(self, e: AuditEntry) -> None:
        self._text.update(f"{e.raw}\n".encode())
        self._pos.update(e.position.to_bytes(8, "little", signed=True))
        self.entries += 1
        self.position = e.position
        if not e.complete or "\n" in e.raw:
            self.checkpointable = False

    def hexdigest(self) -> str:
        return hashlib.sha256(f"{self.entries}:{self._text.hexdigest()}:{self._pos.hexdigest()}".encode()).hexdigest()

    def feed(self, entries: Iterable[AuditEntry]) -> Iterator[AuditEntry]:
        for e in entries:
            self.add(e)
            yield e

    @classmethod
    def of(cls, positions: list[int], raws: list[str]) -> PrefixDigest:
        """The digest of complete entries at once; not :attr:`checkpointable` when a text holds a newline."""
        d = cls()
        text = "\n".join(raws) + "\n" if raws else ""
        d._text.update(text.encode())
        d._pos.update(array("q", positions).tobytes() if sys.byteorder == "little"
                      else b"".join(p.to_bytes(8, "little", signed=True) for p in positions))
        d.entries = len(raws)
        d.position = positions[-1] if positions else 0
        d.checkpointable = text.count("\n") == len(raws)
        return d


def plain_field(raw: str, key: str) -> str | None:
    """A record's top-level string field read from its stored text without parsing it, as this project
    writes records (compact JSON). Exact only for lines :func:`reads_plain` accepted."""
    pat = f'"{key}":"'
    i = raw.find(pat)
    if i < 0:
        return None
    j = i + len(pat)
    return raw[j:raw.find('"', j)]


def document_needle(doc: str) -> str:
    return f'"id":"{doc}"'


def reads_plain(raw: str, rec: Mapping[str, Any]) -> bool:
    """Whether :func:`plain_field` reads this line's filter fields as parsing does, and every document object's
    id appears as :func:`document_needle`: then a filter that the plain reading rules out cannot match."""
    for key in PLAIN_FIELDS:
        v = rec.get(key)
        if plain_field(raw, key) != (v if isinstance(v, str) else None):
            return False
    for o in rec.get("objects") or ():
        if isinstance(o, dict) and o.get("type") == "document" and document_needle(str(o.get("id"))) not in raw:
            return False
    return True


def checkpoint(location: str, sealer: Sealer, digest: PrefixDigest, head: str, open_access: Iterable[str],
               plain: bool) -> Checkpoint:
    return Checkpoint(location, sealer.key_id, digest.entries, digest.position, digest.hexdigest(), head,
                      tuple(open_access), plain, utc_timestamp())
