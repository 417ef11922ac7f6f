"""The auditors' path: the NEN 7513 access report over HTTP (``router``, on the same service function as
``vraagbaak audit report``: ``vraagbaak_core.audit_report``), the running server's egress configuration
(``router``) and the egress proof of ``vraagbaak audit egress`` (``egress``)."""
