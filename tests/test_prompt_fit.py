"""The prompt sent to a model server never exceeds its context window (issue 11, "also found").

The OpenAI-compatible generator counts with the served model's tokenizer: here the real SmolLM2
tokenizer as a configured local tokenizer (``generator.tokenizer``), no server needed to count. The
retriever is scripted: it returns as many long sources as the edge case needs. The same check
against a real vLLM server, which counts through its own ``/tokenize``, is in
tests/vllm/test_prompt_window_vllm.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.staff.chat.prompts import PromptBook
from serving.staff.chat.service import ChatService
from serving.staff.generators.openai_http import OpenAIHTTPGenerator
from vraagbaak_core.errors import PromptTooLong
from vraagbaak_core.settings import PROJECT_ROOT, Settings
from vraagbaak_core.types import ChatMessage, Chunk, GenerationParams, Hit, Identity, SearchFilter

TOKENIZER = PROJECT_ROOT / ".models" / "smollm2-135m-instruct"
WINDOW = 1024
PARAMS = GenerationParams(max_tokens=128)
STAFF = Identity("tester", frozenset({"staff"}), frozenset({"zorg"}))
SENTENCE = "Desinfecteer de handen dertig seconden met handalcohol voor en na elk patiëntcontact. "


class ManyLongSources:
    """A retriever that finds ``n`` long sources for any question (scripted edge case)."""

    def __init__(self, n: int, sentences: int) -> None:
        self.hits = [
            Hit(Chunk(f"c{i}", f"d{i}", 0, SENTENCE * sentences, f"Protocol {i}", f"p{i}.md"), 1.0 - i / 100)
            for i in range(n)
        ]

    def search(self, query: str, identity: Identity, request_filter: SearchFilter | None = None,
               top_k: int | None = None) -> list[Hit]:
        return self.hits[: top_k or len(self.hits)]


@pytest.fixture(scope="module")
def generator() -> OpenAIHTTPGenerator:
    if not (TOKENIZER / "tokenizer.json").is_file():
        pytest.fail(f"{TOKENIZER} is missing: run `vraagbaak models prepare`")
    # The server is never called: counting uses the configured local tokenizer.
    return OpenAIHTTPGenerator("http://127.0.0.1:9/v1", served_model_name="smollm2",
                               tokenizer_dir=TOKENIZER, context_window=WINDOW)


def service(generator: OpenAIHTTPGenerator, retriever: ManyLongSources) -> ChatService:
    prompts = PromptBook.load(PROJECT_ROOT / "configs" / "prompts", "nl")
    return ChatService(retriever, generator, prompts, top_k=8)


def conversation(turns: int, question: str = "Hoe lang moet ik handalcohol inwrijven?") -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for i in range(turns):
        out += [ChatMessage("user", f"Vraag {i}: " + SENTENCE * 8), ChatMessage("assistant", SENTENCE * 8)]
    return [*out, ChatMessage("user", question)]


def test_many_long_sources_and_a_long_conversation_fit_the_window(generator: OpenAIHTTPGenerator) -> None:
    chat = service(generator, ManyLongSources(8, sentences=12))
    prep = chat.prepare(conversation(4), STAFF, PARAMS)
    n = generator.count_tokens(prep.prompt)
    assert n <= WINDOW - PARAMS.max_tokens, f"prompt of {n} tokens sent to a {WINDOW}-token model"
    assert 1 <= len(prep.hits) < 8  # the lowest-ranked sources were dropped ...
    assert prep.hits[0].chunk.chunk_id == "c0"  # ... never the best one
    assert prep.prompt[0].role == "system" and prep.prompt[-1].role == "user"
    assert "Hoe lang moet ik handalcohol inwrijven?" in prep.prompt[-1].content


def test_old_turns_go_when_even_the_best_source_does_not_fit_beside_them(
    generator: OpenAIHTTPGenerator,
) -> None:
    chat = service(generator, ManyLongSources(3, sentences=25))
    prep = chat.prepare(conversation(4), STAFF, PARAMS)
    assert generator.count_tokens(prep.prompt) <= WINDOW - PARAMS.max_tokens
    assert len(prep.hits) == 1
    assert len(prep.prompt) < 2 + 4  # system + question + fewer than the 4 history messages kept


def test_a_question_that_cannot_fit_is_refused_not_sent(generator: OpenAIHTTPGenerator) -> None:
    chat = service(generator, ManyLongSources(3, sentences=4))
    with pytest.raises(PromptTooLong, match="question is too long") as err:
        chat.prepare(conversation(0, SENTENCE * 60), STAFF, PARAMS)
    assert err.value.tokens > err.value.budget == WINDOW - PARAMS.max_tokens
    # a question that fits alone, but not beside its best source, is refused too (never sent ungrounded)
    long_source = service(generator, ManyLongSources(2, sentences=30))
    with pytest.raises(PromptTooLong, match="best source"):
        long_source.prepare(conversation(2, SENTENCE * 25), STAFF, PARAMS)
    # without retrieval (passthrough) the conversation is checked just the same
    with pytest.raises(PromptTooLong):
        chat.prepare(conversation(0, SENTENCE * 60), STAFF, PARAMS, use_retrieval=False)


def test_settings_name_the_served_models_tokenizer_not_the_embedded_model(tmp_path: Path) -> None:
    base = {"data_dir": str(tmp_path), "generator": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}}
    counted_by_server = OpenAIHTTPGenerator.from_settings(Settings(**base))
    assert counted_by_server._tokenizer is None  # /tokenize on the server, not SmolLM2's directory
    local = Settings(**base | {"generator": base["generator"] | {"tokenizer": str(TOKENIZER)}})
    assert OpenAIHTTPGenerator.from_settings(local)._tokenizer is not None
