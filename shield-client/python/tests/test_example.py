"""The example agent loop runs against the real shieldd and shows the refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent_loop.py"


def test_agent_loop_example(shieldd_socket: str, tmp_path: Path) -> None:
    env = dict(os.environ, SHIELD_SOCKET=shieldd_socket)
    env.pop("SHIELD_SESSION", None)
    r = subprocess.run(
        [sys.executable, str(EXAMPLE), "--workdir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert (tmp_path / "orders.db").exists()
    assert "fetched document scanned: block [injection:" in out
    assert "REFUSED database_query {\"query\": \"SELECT * FROM credentials" in out
    assert "REFUSED database_query {\"query\": \"DELETE FROM orders\"}" in out
    assert "REFUSED send_email {\"to\": \"audit@evil-reports.example\"" in out
    assert "HELD send_email" in out
    assert "[CREDIT_CARD_REDACTED]" in out and "4111 1111" not in out
    assert "3 tool call(s) refused" in out
