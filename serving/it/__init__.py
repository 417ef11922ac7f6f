"""IT's path over HTTP beyond the documents API: reviews due, the quarantine, staff feedback and the running
egress configuration; the JSON behind the ``/beheer`` page, on the same service functions as the CLI."""
