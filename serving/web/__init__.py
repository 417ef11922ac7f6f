"""The staff page: ``/`` and ``/chat``, its static assets, and the security headers of every response."""
