"""Locks: a live holder makes others time out with its pid named; a killed holder blocks no one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal.errors import LockTimeout

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.pwrite(fd, str(os.getpid()).encode(), 0)
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vault:
    monkeypatch.setenv("SESSIONSEAL_LOCK_TIMEOUT", "0.5")
    return Vault.init(tmp_path / "v", key_provider=PassphraseProvider("p", log2_n=14))


def _hold(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_timeout_names_the_holder_and_a_killed_holder_frees_the_lock(vault: Vault, tmp_path: Path) -> None:
    holder = _hold(tmp_path / "v" / "locks" / "vault.lock")
    try:
        # The lock's own deadline (0.5 s here) ended the wait; the message says so.
        with pytest.raises(LockTimeout, match=f"pid {holder.pid}.*waited 0.5 s"):
            vault.save({"title": "new session needs the vault lock"})
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    # The kernel dropped the dead holder's flock: no stale-lock cleanup needed.
    sid = vault.save({"title": "after the holder died"})
    assert vault.load(sid).title == "after the holder died"
    assert os.path.exists(tmp_path / "v" / "locks" / "vault.lock")
