"""Errors of the ingest package. Every message is one line, fit for a run's report."""

from __future__ import annotations


class IngestError(Exception):
    """Base class for ingest failures."""


class LoadError(IngestError):
    """A file could not be parsed; the message says why, in one line."""


class UnsupportedFormat(LoadError):
    """The content is not a document format Vraagbaak reads."""


class LabelError(IngestError):
    """A document's labels are missing or invalid (e.g. no groups and not --public)."""


class ErasureError(IngestError):
    """A deletion did not remove every chunk of a document."""


class DocumentNotFound(IngestError):
    """No document with that id is stored."""


class ReplaceError(IngestError):
    """An upload names a document it may not replace (one ingested from a folder)."""


class DocumentBusy(IngestError):
    """Another live process is writing or erasing that document now (its catalog claim)."""


class WritesPaused(IngestError):
    """Writes to the store are paused while the API reindexes it: try again after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
