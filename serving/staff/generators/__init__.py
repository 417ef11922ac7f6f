"""Generator adapters: ``extractive`` (sentences of the sources, the embedded default), ``transformers_local``
(in-process), ``openai_http`` (vLLM and other OpenAI-compatible servers); ``factory`` picks one, ``judges`` the
answerability judge."""
