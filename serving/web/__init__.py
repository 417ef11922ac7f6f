"""The two pages and their static assets: the staff page (``/``, ``/chat``) and ``/beheer`` for IT, privacy
officers and auditors (they share ``app.css``), and ``/api/config`` that tells both how to sign in. The
security headers of every response are ``serving.http.headers``."""
