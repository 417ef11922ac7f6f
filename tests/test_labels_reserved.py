"""Reserved group names (issue 11, item 15): ``--groups __public__`` must not make a document public."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import LabelError
from ingest.manifest import Labels, load_manifest, resolve_labels
from vraagbaak_core.types import PUBLIC_GROUP


@pytest.mark.parametrize("group", [PUBLIC_GROUP, "__admin__", " __public__ "])
def test_reserved_group_names_are_refused_as_flags(group: str) -> None:
    with pytest.raises(LabelError, match="reserved"):
        Labels(groups=("zorg", group))


@pytest.mark.parametrize(
    "manifest",
    ["groups: [__public__]\n", "groups: [zorg]\nrules:\n  - match: 'x/'\n    groups: [__public__]\n"],
)
def test_reserved_group_names_are_refused_in_a_manifest(tmp_path: Path, manifest: str) -> None:
    (tmp_path / "vraagbaak.yaml").write_text(manifest, encoding="utf-8")
    with pytest.raises(LabelError, match="reserved"):
        load_manifest(tmp_path)


def test_only_public_makes_a_document_public() -> None:
    public = resolve_labels("a.md", Labels(public=True), None, "intern")
    assert public.groups == (PUBLIC_GROUP,) and public.public
    private = resolve_labels("a.md", Labels(groups=("zorg",)), None, "intern")
    assert not private.public
