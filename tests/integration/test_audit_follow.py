"""``audit show --follow`` as a real process (docs/reports.md): it prints what other processes
write, every record once and in order across the log's rotation, and SIGTERM or SIGINT end it
with exit 0."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from sessionseal import PassphraseProvider, Vault

PASS = "correct horse battery staple"
TIMEOUT = 120.0  # only a hung process reaches it: nothing here depends on the machine's speed

WRITER = """
import sys
from pathlib import Path
from sessionseal import PassphraseProvider, Vault

path = Path(sys.argv[1])
with Vault.open(path, key_provider=PassphraseProvider(sys.argv[2])) as v:
    v.save({"title": "followed", "messages": []})
    # list records until the current file has been rotated, then a few more after it.
    after = 0
    while after < 5:
        v.list()
        if any(p.name.startswith("audit-") for p in (path / "audit").iterdir()):
            after += 1
    print(max(r["seq"] for r in v.audit_entries()[0] if isinstance(r.get("seq"), int)))
"""


def _env(path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSEAL_")}
    env.update(
        SESSIONSEAL_VAULT=str(path),
        SESSIONSEAL_PASSPHRASE=PASS,
        SESSIONSEAL_NONINTERACTIVE="1",
        SESSIONSEAL_CACHE_DIR=os.environ.get("SESSIONSEAL_CACHE_DIR", ""),
    )
    return env


def _lines(stream: IO[bytes]) -> queue.Queue[bytes]:
    q: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        for line in stream:
            q.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return q


def _until(proc: subprocess.Popen[bytes], q: queue.Queue[bytes], seen: list[dict[str, Any]], done: Any) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done(seen):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"the follower did not print what was expected; it printed {len(seen)} records")
        try:
            seen.append(json.loads(q.get(timeout=min(left, 0.5))))
        except queue.Empty:
            if proc.poll() is not None and q.empty():
                pytest.fail(f"the follower exited ({proc.returncode}) after {len(seen)} records")


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(PASS, log2_n=14)) as v:
        config = v.config().model_dump(mode="json")
        config["audit"]["rotate_bytes"] = 64 * 1024  # the least allowed: a rotation is quick to reach
        v.set_config(config)
    return path


def _follow(path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sessionseal", "audit", "show", "--follow", "--json", "--interval", "0.1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=_env(path),
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.mark.slow  # a few hundred records to reach a rotation
def test_follow_prints_every_new_record_once_across_rotation_and_stops_on_sigterm(vault_path: Path) -> None:
    proc = _follow(vault_path)
    try:
        assert proc.stdout is not None
        q = _lines(proc.stdout)
        seen: list[dict[str, Any]] = []
        # Its own open is the last record it found at start: it is following from there.
        _until(proc, q, seen, lambda s: any(r["action"] == "open" and r["pid"] == proc.pid for r in s))
        writer = subprocess.run(
            [sys.executable, "-c", WRITER, str(vault_path), PASS],
            capture_output=True,
            env=_env(vault_path),
            timeout=TIMEOUT,
            check=True,
        )
        last = int(writer.stdout.decode().split()[-1])
        assert any(p.name.startswith("audit-") for p in (vault_path / "audit").iterdir())  # it rotated
        _until(proc, q, seen, lambda s: any(r.get("seq") == last for r in s))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        _stop(proc)
    seqs = [r["seq"] for r in seen]
    assert seqs == list(range(1, last + 1))  # each once, in order, none lost at the rotation
    assert all(r["verified"] for r in seen)
    assert any(r["action"] == "save" and r.get("session") for r in seen)  # a new session's id: keys read afresh
    assert b"Traceback" not in err


def test_sigint_ends_the_tail_with_exit_0_and_the_filters_hold(vault_path: Path) -> None:
    proc = _follow(vault_path, "--action", "save")
    try:
        assert proc.stdout is not None
        q = _lines(proc.stdout)
        with Vault.open(vault_path, key_provider=PassphraseProvider(PASS)) as v:
            v.list()
            sid = v.save({"title": "x", "messages": []})
        seen: list[dict[str, Any]] = []
        _until(proc, q, seen, lambda s: len(s) >= 1)
        assert [(r["action"], r["session"]) for r in seen] == [("save", str(sid))]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert b"Traceback" not in err and b"Aborted" not in err
    finally:
        _stop(proc)
