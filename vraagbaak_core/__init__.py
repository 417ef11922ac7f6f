"""Vraagbaak's shared core: domain types, ports and settings.

Everything else imports from here; this package imports nothing of ``retrieval``,
``ingest`` or ``serving``.
"""

__version__ = "0.1.0"
