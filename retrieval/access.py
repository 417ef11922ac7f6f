"""The access filter every search carries, built from the caller's identity on the server side.

A chunk is visible when it shares a group with the caller (every caller is in
``PUBLIC_GROUP``) and its classification level is at most the caller's clearance. A
filter that a request asks for is intersected with this one, never substituted for it.
"""

from __future__ import annotations

from datetime import date, timedelta

from vraagbaak_core.types import (
    PUBLIC_GROUP,
    Identity,
    MatchAny,
    RangeLte,
    SearchFilter,
    classification_level,
    day_number,
)


def access_filter(identity: Identity) -> SearchFilter:
    """Groups ∪ {PUBLIC_GROUP} and classification_level ≤ level(clearance).

    Raises ValueError for an unknown clearance label (never widens to "everything").
    """
    groups = tuple(sorted(set(identity.groups) | {PUBLIC_GROUP}))
    level = classification_level(identity.clearance)
    return SearchFilter(
        must=(MatchAny(key="groups", values=groups), RangeLte(key="classification_level", value=level))
    )


def restrict(identity: Identity, request_filter: SearchFilter | None) -> SearchFilter:
    """The access filter intersected with what the request asks for."""
    return access_filter(identity).intersect(request_filter)


def current_filter(today: date | None = None) -> SearchFilter:
    """Only documents that may answer: not ``vervallen``, not superseded, not expired, already valid
    (``valid_from`` reached) and not yet replaced by a newer version whose day has come (``until``).

    Written as exclusions (``must_not``), so chunks without document-control fields (documents
    that state none, or an index from before these fields) keep answering. A document expires at
    the start of its ``expires`` day.
    """
    today = today or date.today()
    return SearchFilter(
        must_not=(
            MatchAny(key="lifecycle", values=("superseded", "vervallen")),
            RangeLte(key="expires_day", value=day_number(today.isoformat())),
            RangeLte(key="until_day", value=day_number(today.isoformat())),
            # valid_from after today: -valid_from <= -(tomorrow)
            RangeLte(key="starts_day_neg", value=-day_number((today + timedelta(days=1)).isoformat())),
        )
    )


def may_see(identity: Identity, groups: tuple[str, ...] | list[str], classification: str) -> bool:
    """The rule of :func:`access_filter` for one document's labels (e.g. to serve its original).

    An unknown label on either side is not visible (never widens).
    """
    try:
        level = classification_level(identity.clearance)
        doc_level = classification_level(classification)
    except ValueError:
        return False
    visible_groups = set(identity.groups) | {PUBLIC_GROUP}
    return bool(visible_groups & set(groups)) and doc_level <= level
