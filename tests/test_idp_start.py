"""The test OpenID provider's start: a provider that hangs before it listens is killed and started once
more, not waited on for ever (a fresh-clone CI hung 6 minutes on Node 20 before it was killed by hand).

The hang is scripted (the edge case); the second start is the real provider (npm ``oidc-provider``).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import idp_support
import pytest
from idp_support import IDP_USERS, SERVER, RealIdp, node_ready

HANGS_ONCE = """import * as fs from 'node:fs';
const marker = process.argv[2] + '.tried';
if (!fs.existsSync(marker)) {
  fs.writeFileSync(marker, '1');
  setInterval(() => {}, 1000);  // says nothing, as the hung provider did
} else {
  await import(%s);
}
"""


def test_a_provider_that_hangs_at_start_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    why = node_ready()
    if why:
        pytest.fail(why)
    script = SERVER.parent / f"hangs-once-{tmp_path.name}.mjs"  # beside the server: its node_modules resolve
    script.write_text(HANGS_ONCE % repr(SERVER.as_uri()), encoding="utf-8")
    try:
        monkeypatch.setattr(idp_support, "SERVER", script)
        monkeypatch.setattr(idp_support, "START_TIMEOUT_S", 5.0)
        with RealIdp(tmp_path / "idp", users=IDP_USERS) as idp:
            assert idp.proc is not None and idp.proc.poll() is None and idp.pki is not None
            r = httpx.get(f"{idp.issuer}/.well-known/openid-configuration", verify=str(idp.pki.ca_cert), timeout=10)
            assert r.status_code == 200 and r.json()["issuer"] == idp.issuer
        assert "no 'ready' within 5.0 s: killed, starting again" in (tmp_path / "idp" / "idp.log").read_text()
    finally:
        script.unlink(missing_ok=True)
