"""The auditors' path over HTTP: the NEN 7513 access report (``router``), on the same service function as
``vraagbaak audit report`` (``vraagbaak_core.audit_report``)."""
