"""The answer check: each sentence of an answer against the sources it cites (numbers, units, negations, who).

``facts``: the normaliser and fact extraction; ``check``: alignment, comparison and the claims;
``protocol`` / ``router``: ``POST /api/answer-check`` for integrators. The chat service runs the same
check on every answer (``message.claims``).
"""
