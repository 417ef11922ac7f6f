"""Staff feedback on answers: ``POST /api/feedback``, its SQLite store, ``vraagbaak feedback export``."""
