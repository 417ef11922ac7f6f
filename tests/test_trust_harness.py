"""How benchmarks/trust.py judges answers (the figures of issue 17's "Done when"); not timing."""

from __future__ import annotations

import pytest

from benchmarks.hospital_set import Question, load_questions
from benchmarks.trust import (
    Reply,
    first_sentence,
    is_source,
    judge,
    percentile,
    precision_counts,
    states_visiting_hours,
    summarise,
)


def _q(kind: str = "table", facts: tuple[str, ...] = ("250 mg",)) -> Question:
    return Question(
        "q900",
        "Een kind weegt 20 kilo. Hoeveel paracetamol per keer?",
        kind,  # type: ignore[arg-type]
        "nl",
        ("pijn-paracetamol.pdf",),
        facts,
        "dev",
    )


def _reply(text: str, cited: list[str], abstained: bool = False, seconds: float = 1.0) -> Reply:
    return Reply(text, abstained, cited, {i + 1: c for i, c in enumerate(cited)}, seconds)


def test_right_needs_the_fact_and_the_right_document() -> None:
    good = judge(_q(), _reply("Lichaamsgewicht 17–25 kg — dosis per keer: 250 mg [1].", ["docs/pijn-paracetamol.pdf"]))
    assert good.right and good.right_doc and good.states_fact
    wrong_doc = judge(_q(), _reply("Geef 250 mg [1].", ["docs/delier.md"]))
    assert not wrong_doc.right and wrong_doc.states_fact and not wrong_doc.right_doc
    wrong_fact = judge(_q(), _reply("Geef 500 mg [1].", ["pijn-paracetamol.pdf"]))
    assert not wrong_fact.right and wrong_fact.right_doc
    refused = judge(_q(), _reply("Ik weet het niet.", [], abstained=True))
    assert not refused.right and not refused.answered


def test_unanswerable_is_right_only_when_it_abstains() -> None:
    q = _q("unanswerable", ())
    assert judge(q, _reply("Dat staat niet in de documenten.", [], abstained=True)).right
    assert not judge(q, _reply("Geef 1000 mg [1].", ["pijn-paracetamol.pdf"])).right


def test_source_paths_match_by_whole_name() -> None:
    assert is_source("pijn-paracetamol.pdf", ["pijn-paracetamol.pdf"])
    assert is_source("hospital\\docs\\pijn-paracetamol.pdf", ["pijn-paracetamol.pdf"])
    assert not is_source("oude-pijn-paracetamol.pdf", ["pijn-paracetamol.pdf"])


def test_summary_counts_per_kind_and_abstention_rates() -> None:
    qs = [_q("fact"), _q("fact"), _q("table"), _q("unanswerable", ()), _q("unanswerable", ())]
    replies = [
        _reply("250 mg [1]", ["pijn-paracetamol.pdf"], seconds=1.0),
        _reply("", [], abstained=True, seconds=2.0),
        _reply("250 mg [1]", ["pijn-paracetamol.pdf"], seconds=3.0),
        _reply("", [], abstained=True, seconds=4.0),
        _reply("1000 mg [1]", ["pijn-paracetamol.pdf"], seconds=5.0),
    ]
    s = summarise([judge(q, r) for q, r in zip(qs, replies, strict=True)])
    assert s["right_answers"] == {"n": 2, "of": 3, "rate": 2 / 3}
    assert s["right_by_kind"]["fact"]["n"] == 1 and s["right_by_kind"]["fact"]["of"] == 2
    assert s["right_by_kind"]["table"]["rate"] == 1.0
    assert s["right_by_kind"]["procedure"] == {"n": 0, "of": 0, "rate": None}
    assert s["abstention_unanswerable"]["rate"] == 0.5
    assert s["false_abstention_answerable"]["n"] == 1
    assert s["seconds_p50"] == 3.0 and s["seconds_p90"] == 5.0


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 11)], 90) == 9.0
    assert percentile([7.0], 90) == 7.0


def test_precision_counts_like_benchmarks_answers() -> None:
    reply = Reply(
        "Bezoek is welkom van 14:00 tot 20:00 uur [1]. Partners de hele dag [2]. Beide [1, 2].",
        False,
        ["publiek/bezoekregeling.md", "afdeling/kraam.md"],
        {1: "publiek/bezoekregeling.md", 2: "afdeling/kraam.md"},
    )
    assert precision_counts(reply, ["publiek/bezoekregeling.md"]) == (3, 1)
    assert precision_counts(Reply("", True, []), ["x"]) == (0, 0)


def test_demo_first_sentence_and_visiting_hours() -> None:
    text = "Op alle verpleegafdelingen is bezoek welkom van 14:00 tot 20:00 uur [1]. Kraam: 15:00 [2]."
    assert first_sentence(text) == "Op alle verpleegafdelingen is bezoek welkom van 14:00 tot 20:00 uur [1]."
    assert states_visiting_hours(first_sentence(text))
    assert not states_visiting_hours("Overig bezoek is welkom van 15:00 tot 17:00 uur [2].")


def test_reply_reads_the_chat_api_message() -> None:
    msg = {
        "content": "Geef 250 mg [2].",
        "abstained": False,
        "citations": [{"n": 2, "source": "pijn-paracetamol.pdf", "doc_id": "d2"}],
        "sources": [{"n": 1, "doc_id": "d1"}, {"n": 2, "doc_id": "d2"}],  # the wire's sources carry no path
    }
    r = Reply.of_message(msg, 0.5)
    assert r.cited == ["pijn-paracetamol.pdf"] and r.sources == {2: "pijn-paracetamol.pdf"} and r.seconds == 0.5
    assert precision_counts(r, ["pijn-paracetamol.pdf"]) == (1, 1)


@pytest.mark.parametrize("split", ["dev", "test"])
def test_every_split_has_every_kind(split: str) -> None:
    kinds = {q.kind for q in load_questions(split=split)}  # type: ignore[arg-type]
    assert kinds == {"fact", "table", "procedure", "cross-language", "unanswerable"}
