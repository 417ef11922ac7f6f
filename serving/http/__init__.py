"""What every route shares: authentication (``auth``, ``authfirst``, ``auth_failures``), body and rate limits
(``bodylimit``, ``limits``), the error envelope (``errors``), security headers (``headers``), client address and
origin (``proxies``, ``origin``), metrics, and the worker threads' priority (``priority``)."""
