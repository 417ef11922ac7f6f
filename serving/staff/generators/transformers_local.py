"""In-process transformers generator: the embedded default, on CPU, greedy by default."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from vraagbaak_core.errors import GeneratorError
from vraagbaak_core.modelpaths import resolve_model_dir
from vraagbaak_core.settings import Settings
from vraagbaak_core.types import ChatMessage, GenerationParams

log = logging.getLogger(__name__)


class TransformersGenerator:
    """Implements ``vraagbaak_core.ports.Generator`` with a local causal LM.

    One generation runs at a time per process (a CPU model gains nothing from more);
    the serving layer bounds the queue in front of it.
    """

    def __init__(
        self, model_dir: Path, context_window: int, no_repeat_ngram_size: int = 4,
        repetition_penalty: float = 1.1,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:  # pragma: no cover - core dependency
            raise ImportError("the transformers generator needs `transformers` and `torch`") from err
        self._torch = torch
        self.model_dir = model_dir
        self._tokenizer: Any = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self._model: Any = AutoModelForCausalLM.from_pretrained(
            model_dir, local_files_only=True, dtype=torch.float32
        )
        self._model.eval()  # type: ignore[no-untyped-call]
        model_max = int(getattr(self._model.config, "max_position_embeddings", context_window))
        self._context_window = min(context_window, model_max)
        self._lock = threading.Lock()
        # running generations and their cancel flags: aclose() stops and joins them, and they are not
        # daemon threads, so the interpreter waits for them too (a daemon thread still inside a torch
        # op at interpreter exit aborts the process: "terminate called without an active exception")
        self._running: dict[threading.Thread, threading.Event] = {}
        self._running_lock = threading.Lock()
        # The repetition guard: a small model left alone loops ("hebben het hebben het ...").
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.repetition_penalty = repetition_penalty
        log.info("generator %s loaded (context %d)", model_dir.name, self._context_window)

    @classmethod
    def from_settings(cls, settings: Settings) -> TransformersGenerator:
        g = settings.generator
        return cls(resolve_model_dir(str(settings.resolve(g.model_path))), g.context_window,
                   g.no_repeat_ngram_size, g.repetition_penalty)

    @property
    def model_name(self) -> str:
        return self.model_dir.name

    @property
    def context_window(self) -> int:
        return self._context_window

    def _prompt_ids(self, messages: Sequence[ChatMessage]) -> Any:
        conv = [{"role": m.role, "content": m.content} for m in messages]
        return self._tokenizer.apply_chat_template(
            conv, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return int(self._prompt_ids(messages)["input_ids"].shape[-1])

    def count_text_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _generate_kwargs(self, inputs: Any, params: GenerationParams, streamer: Any, stop: Any) -> dict[str, Any]:
        from transformers import StoppingCriteriaList

        kwargs: dict[str, Any] = dict(
            **inputs,
            max_new_tokens=params.max_tokens,
            pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([stop]),
        )
        if self.no_repeat_ngram_size > 0:
            kwargs["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        if self.repetition_penalty > 1.0:
            kwargs["repetition_penalty"] = self.repetition_penalty
        if params.temperature > 0:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    async def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        parts = [piece async for piece in self.stream(messages, params)]
        return "".join(parts)

    async def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> AsyncIterator[str]:
        from transformers import StoppingCriteria, TextIteratorStreamer

        cancelled = threading.Event()

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return cancelled.is_set()

        loop = asyncio.get_running_loop()
        inputs = await loop.run_in_executor(None, self._prompt_ids, messages)  # chat template: blocking
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self._generate_kwargs(inputs, params, streamer, _Cancel())
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self._lock, self._torch.inference_mode():
                    try:
                        self._model.generate(**kwargs)
                    except BaseException as err:  # noqa: BLE001 - surfaced to the caller below
                        failure.append(err)
                        streamer.end()  # type: ignore[no-untyped-call]
            finally:
                with self._running_lock:
                    self._running.pop(threading.current_thread(), None)

        thread = threading.Thread(target=run, name="generate")
        with self._running_lock:
            self._running[thread] = cancelled
        thread.start()
        sentinel = object()
        it = iter(streamer)
        stops = _StopFilter(params.stop)
        try:
            while True:
                piece = await loop.run_in_executor(None, next, it, sentinel)
                if piece is sentinel:
                    break
                if piece:
                    out = stops.feed(str(piece))
                    if out:
                        yield out
                    if stops.stopped:
                        cancelled.set()  # a stop sequence ends the generation, as in the OpenAI API
                        break
            if failure and not stops.stopped:
                raise GeneratorError(f"generation failed: {failure[0]}")
            tail = stops.finish()
            if tail:
                yield tail
        finally:
            cancelled.set()

    async def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        """Stop the generations still running (each stops at its next token) and wait for them."""
        await asyncio.get_running_loop().run_in_executor(None, self.stop_all)

    def stop_all(self) -> None:
        with self._running_lock:
            running = list(self._running.items())
        for _, cancelled in running:
            cancelled.set()
        for thread, _ in running:
            thread.join()


class _StopFilter:
    """Cuts streamed text at the first stop sequence (excluded), holding back a tail that could
    still become one, so no part of a stop sequence is ever shown."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [x for x in stops if x]
        self.hold = max((len(x) for x in self.stops), default=1) - 1
        self.buf = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if not self.stops:
            return piece
        self.buf += piece
        cut = min((i for i in (self.buf.find(x) for x in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self.buf = self.buf[:cut], ""
            return out
        safe = len(self.buf) - self.hold
        out, self.buf = (self.buf[:safe], self.buf[safe:]) if safe > 0 else ("", self.buf)
        return out

    def finish(self) -> str:
        out, self.buf = ("" if self.stopped else self.buf), ""
        return out
