"""The automatic push after writes with real processes (issue 26; docs/sync.md, "Automatic
push"): the real ``sessionseal`` command on a keychain vault (a private, unlocked Secret
Service) and the real S3 server (``rclone serve s3`` on 127.0.0.1).  A save returns without
waiting, and the remote then holds the session (polled with a generous hang guard, never a
speed assumption); a burst of saves within the delay makes one push; a push that fails (no
credentials) is recorded, audited with ``auto``, and printed nowhere.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests._infra.keychain import SecretService
from tests._infra.s3server import S3Server
from tests._infra.syncscenario import rclone_buckets, s3_server
from tests.integration._cli import Ran, sessionseal

pytestmark = pytest.mark.s3
__all__ = ["rclone_buckets", "s3_server"]  # the fixtures: one rclone server per module, a bucket per test

#: Hang guards only: a background push starts Python, opens the vault and talks to the server.
HANG_GUARD = 180.0
DOC = '{"title": "auto %d", "messages": [{"role": "user", "content": "pushed by itself %d"}]}'


def _setup(ss: SecretService, server: S3Server, tmp_path: Path, delay: str) -> Callable[..., Ran]:
    vault = tmp_path / "vault"
    env = ss.env_for(home=tmp_path, SESSIONSEAL_VAULT=str(vault), **server.env())

    def run(*args: str, input: str | None = None, extra: dict[str, str] | None = None) -> Ran:
        return sessionseal(*args, env={**env, **(extra or {})}, input=input, timeout=120)

    assert run("init").code == 0
    added = run("remote", "add", "cloud", f"s3://{server.bucket}/auto", "--endpoint", server.endpoint)
    assert added.code == 0, added.err
    assert run("remote", "auto", "cloud", "on", "--delay", delay).code == 0
    return run


def _children(vault: Path) -> list[int]:
    """The background pushes of *vault* now running (from /proc: their command lines)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--auto" in argv and str(vault).encode() in argv:
            found.append(int(entry.name))
    return found


def _settled(run: Callable[..., Ran], vault: Path) -> dict[str, object]:
    """The remote's last automatic push outcome, once no background push runs any more."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        if not _children(vault):
            listed = json.loads(run("remote", "list", "--json").out)
            last = listed["remotes"][0]["last_auto_push"]
            if last is not None:
                return dict(last)
        time.sleep(0.25)
    raise AssertionError("the background push did not finish within the hang guard")


def _auto_records(run: Callable[..., Ran]) -> list[dict[str, object]]:
    out = run("audit", "show", "--json", "--action", "sync.push").out
    return [r for r in (json.loads(line) for line in out.splitlines()) if (r.get("detail") or {}).get("auto")]


def test_a_save_returns_and_the_remote_then_holds_the_session(
    secret_service: SecretService, s3_server: S3Server, tmp_path: Path
) -> None:
    run = _setup(secret_service, s3_server, tmp_path, "0.2")
    saved = run("save", "-", input=DOC % (1, 1))
    assert saved.code == 0, saved.err
    assert saved.err == "" or "push" not in saved.err.lower()  # nothing of the push in the agent's terminal
    last = _settled(run, tmp_path / "vault")
    assert last["outcome"] == "ok" and last["sessions"] == 1, last
    # Everything written is on the remote: a manual push has nothing left to send.
    left = json.loads(run("sync", "cloud", "--push", "--dry-run", "--json").out)
    assert left["sessions"] == 0 and left["entries"] == 0
    assert any(p.parent.name == "o" for p in (s3_server.root / s3_server.bucket).rglob("*") if p.is_file())
    [record] = _auto_records(run)
    assert record["outcome"] == "ok" and record["detail"]["sessions"] == 1  # type: ignore[index]
    assert run("verify").code == 0  # autopush.json and its lock are the vault's own


def test_a_save_does_not_wait_for_the_pending_push_and_later_writes_start_none(
    secret_service: SecretService, s3_server: S3Server, tmp_path: Path
) -> None:
    run = _setup(secret_service, s3_server, tmp_path, "3600")
    vault = tmp_path / "vault"
    try:
        assert run("save", "-", input=DOC % (1, 1)).code == 0  # returns: the push waits an hour
        [pending] = _children(vault)
        for i in range(2, 5):
            assert run("save", "-", input=DOC % (i, i)).code == 0
        assert _children(vault) == [pending], "a write while one is pending starts no other"
        assert run("remote", "auto", "cloud", "off").code == 0
    finally:
        for pid in _children(vault):
            os.kill(pid, signal.SIGKILL)


def test_a_burst_of_saves_within_the_delay_makes_one_push(
    secret_service: SecretService, s3_server: S3Server, tmp_path: Path
) -> None:
    run = _setup(secret_service, s3_server, tmp_path, "20")
    for i in range(5):
        assert run("save", "-", input=DOC % (i, i)).code == 0
    last = _settled(run, tmp_path / "vault")
    assert last["outcome"] == "ok", last
    records = _auto_records(run)
    # One push took them all (two, if this machine took over 20 s for five saves).
    assert 1 <= len(records) <= 2 and sum(r["detail"]["sessions"] for r in records) == 5  # type: ignore[index]
    left = json.loads(run("sync", "cloud", "--push", "--dry-run", "--json").out)
    assert left["sessions"] == 0


def test_a_push_without_credentials_fails_fast_is_recorded_and_printed_nowhere(
    secret_service: SecretService, s3_server: S3Server, tmp_path: Path
) -> None:
    run = _setup(secret_service, s3_server, tmp_path, "0")
    no_keys = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    saved = run("save", "-", input=DOC % (1, 1), extra=no_keys)
    assert saved.code == 0 and "credential" not in saved.err.lower()
    last = _settled(run, tmp_path / "vault")
    assert (last["outcome"], last["error"], last["exit_code"]) == ("error", "RemoteError", 19), last
    [record] = _auto_records(run)
    assert record["outcome"] == "error" and record["error"] == "RemoteError"
    listed = run("remote", "list")
    assert "FAILED (RemoteError, exit 19)" in listed.out


def test_a_background_push_on_a_locked_keychain_fails_fast_and_is_recorded(
    secret_service_factory: Callable[..., SecretService], s3_server: S3Server, tmp_path: Path
) -> None:
    # The keychain is locked after the write that started it (a screen lock, a logout): the
    # background process fails its open within the keychain's bound, never waits on a prompt.
    ss = secret_service_factory()
    run = _setup(ss, s3_server, tmp_path, "0")
    assert run("save", "-", input=DOC % (1, 1)).code == 0
    _settled(run, tmp_path / "vault")
    ss.lock()
    started = time.monotonic()
    background = run("sync", "--auto", extra={"SESSIONSEAL_NONINTERACTIVE": "1"})
    assert background.code == 5 and time.monotonic() - started < HANG_GUARD
    raw = json.loads((tmp_path / "vault" / "autopush.json").read_text())
    assert (raw["last"]["outcome"], raw["last"]["error"]) == ("error", "KeyUnavailable")
