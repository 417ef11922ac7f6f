"""No patient data stored from questions: every question passes the documents' patient-data guard
(``ingest.patientdata``) before anything stores it (the audit chain, the feedback receipts).

``audit.question_text`` says what is kept: ``redacted`` (the default: BSN with elfproef, patient
numbers, birth dates, names, addresses and phone numbers replaced by typed placeholders, the counts
per kind alongside), ``none`` (no text) or ``full`` (verbatim). Whatever the mode, a question that holds
patient data gets a notice on the page: Vraagbaak is not meant for patient data (the answer still
comes). Logs never carry question text.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ingest.patientdata import GuardConfig, PatientDataGuard
from vraagbaak_core.settings import Settings

PATIENT_DATA_NOTICE = (
    "Uw vraag lijkt patiëntgegevens te bevatten (zoals een BSN, naam of geboortedatum). Vraagbaak is niet "
    "bedoeld voor patiëntgegevens: stel uw vraag zonder gegevens die tot een patiënt te herleiden zijn. "
    "Wat u vroeg is zonder die gegevens vastgelegd."
)


@dataclass(frozen=True)
class GuardedText:
    """What may be stored of one text, and what the guard found in it (counts per kind, never values)."""

    stored: str | None
    counts: dict[str, int] = field(default_factory=dict)
    patient_data: bool = False

    @property
    def notice(self) -> str | None:
        return PATIENT_DATA_NOTICE if self.patient_data else None

    def audit_extra(self) -> dict[str, object]:
        """The counts of what was replaced, for the audit record (empty when nothing was)."""
        return {"question_redactions": dict(self.counts)} if self.counts and self.stored is not None else {}


class QuestionGuard:
    """Built once per process (deduce's lookup tables take seconds to load, on first use)."""

    def __init__(self, settings: Settings) -> None:
        pd = settings.ingest.patient_data
        self.mode = settings.audit.question_text
        self._config = GuardConfig(threshold=pd.threshold, patient_number_patterns=tuple(pd.patient_number_patterns),
                                   names=pd.names)
        self._guard: PatientDataGuard | None = None
        self._lock = threading.Lock()

    def _scanner(self) -> PatientDataGuard:
        with self._lock:
            if self._guard is None:
                self._guard = PatientDataGuard(self._config)
            return self._guard

    def check(self, text: str) -> GuardedText:
        """The text as ``audit.question_text`` allows it to be stored. Blocking (deduce): a worker thread."""
        red = self._scanner().redact(text)
        stored = {"none": None, "redacted": red.text, "full": text}[self.mode]
        return GuardedText(stored, red.counts if self.mode == "redacted" else {}, red.patient_data)

    def free_text(self, text: str) -> str:
        """Other free text about to be stored (a feedback comment, an answer that may repeat the question):
        verbatim with ``full``, else redacted (a comment is the feedback itself, so ``none`` keeps it too,
        redacted)."""
        return text if self.mode == "full" else self._scanner().redact(text).text
