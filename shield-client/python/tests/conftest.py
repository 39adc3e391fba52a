"""Fixtures: a REAL `shieldd serve` for the whole test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from shield_client import Shield, ShieldUnavailable

REPO = Path(__file__).resolve().parents[3]
POLICY = REPO / "policies" / "support-agent.yaml"


@pytest.fixture(scope="session")
def shieldd_socket() -> Iterator[str]:
    """Start `shieldd serve` on a socket in a temp dir; stop it after."""
    binary = os.environ.get("SHIELDD_BIN") or str(REPO / "target" / "debug" / "shieldd")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"shieldd binary not found at {binary}: build it (cargo build -p shieldd) or set SHIELDD_BIN")
    tmp = tempfile.mkdtemp(prefix="shield-py-")
    sock = os.path.join(tmp, "scan.sock")
    log = open(os.path.join(tmp, "shieldd.log"), "w+b")
    proc = subprocess.Popen(
        [binary, "serve", "--socket", sock, "--policy", str(POLICY)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        probe = Shield(sock, timeout=5)
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"shieldd serve exited with {proc.returncode}: {log.read().decode(errors='replace')}")
            try:
                if os.path.exists(sock):
                    probe.ping()
                    break
            except ShieldUnavailable:
                pass
            if time.monotonic() > deadline:
                pytest.fail("shieldd serve did not answer ping within 30 s")
            time.sleep(0.05)
        probe.close()
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def shield(shieldd_socket: str) -> Iterator[Shield]:
    """A fail-closed client of the session's shieldd."""
    s = Shield(shieldd_socket)
    yield s
    s.close()


@pytest.fixture
def missing_socket(tmp_path: Path) -> str:
    """A socket path where nothing listens."""
    return str(tmp_path / "nobody-here.sock")
