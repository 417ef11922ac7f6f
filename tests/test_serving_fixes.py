"""Also found by reading the code (issue 11): Dutch follow-ups glued to the previous question,
and the transformers generator ignoring ``stop``."""

from __future__ import annotations

import asyncio
from typing import Any

from serving.staff.chat.service import standalone_query
from vraagbaak_core.types import ChatMessage, GenerationParams


def _convo(*users: str) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for u in users:
        out += [ChatMessage("user", u), ChatMessage("assistant", "…")]
    return out[:-1]


def test_self_contained_dutch_follow_ups_are_not_glued() -> None:
    first = "Hoe vaak moet ik mijn handen desinfecteren tijdens een dienst?"
    standalone = [
        "Wat is het beleid voor bezoek op de intensive care afdeling?",
        "Welke medicatie krijgen ze na een heupoperatie op de afdeling orthopedie?",
        "Hoe meld ik een incident dat tijdens de nachtdienst gebeurde bij de VIM-commissie?",
        "Waar vind ik de formulieren die nodig zijn voor een opname in de GGZ-kliniek?",
        "Welke regels gelden er voor deze afdeling bij een uitbraak van norovirus volgens de richtlijn?",
        "What is the policy for visitors on the intensive care unit during the night shift?",
    ]
    for q in standalone:
        assert standalone_query(_convo(first, q)) == q, q


def test_real_follow_ups_still_borrow_the_previous_question() -> None:
    first = "Wat zijn de bijwerkingen van metoprolol bij oudere patiënten?"
    for q in ("Hoe lang duurt het voordat je daar iets van merkt bij patiënten met nierfalen?",
              "Moet de arts de dosering daarom aanpassen bij patiënten boven de tachtig jaar?",
              "Wat staat er in het protocol over de controle van de bloeddruk hiervan?"):
        assert standalone_query(_convo(first, q)) == f"{first} {q}", q
    # a qualifier takes the place of the one it replaces (serving.staff.chat.followup, issue 17)
    kids = "Wat zijn de bijwerkingen van metoprolol bij kinderen?"
    assert standalone_query(_convo(first, "En bij kinderen?")) == kids
    assert standalone_query(_convo(first, "En hoe zit het met kinderen onder de twaalf jaar in de kliniek?")) == (
        "Wat zijn de bijwerkingen van metoprolol bij kinderen onder de twaalf jaar in de kliniek?"
    )


def test_transformers_generator_honours_stop(generator: Any) -> None:
    msgs = [ChatMessage("user", "Noem de dagen van de week, gescheiden door komma's.")]
    full = asyncio.run(generator.generate(msgs, GenerationParams(max_tokens=40)))
    words = [w for w in full.replace(",", " ").split() if len(w) >= 3]
    assert len(words) >= 3, full
    stop = words[2]
    cut = full.index(stop)
    stopped = asyncio.run(generator.generate(msgs, GenerationParams(max_tokens=40, stop=(stop, "@@never@@"))))
    assert stopped == full[:cut] and stop not in stopped
    pieces: list[str] = []

    async def stream() -> None:
        async for p in generator.stream(msgs, GenerationParams(max_tokens=40, stop=(stop,))):
            pieces.append(p)

    asyncio.run(stream())
    assert "".join(pieces) == full[:cut]
