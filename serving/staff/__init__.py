"""The staff path: the chat (``chat/``) and the answerers behind it (``generators/``), the answer check
(``answer_check/``), the question's patient-data guard (``question_guard``), a cited document's original
(``content``) and feedback on answers (``feedback/``). The page itself is ``serving/web``."""
