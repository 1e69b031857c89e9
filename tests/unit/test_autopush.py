"""The automatic push after writes (issue 26; docs/sync.md, "Automatic push"): off by default,
on per remote (keychain vaults only), one pending background push at a time, and a background
push that cannot open the vault (no keychain reachable) fails fast and says so in ``remote
list``, never in the writer's terminal.  Against the real server and keychain:
tests/integration/test_autopush.py."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sessionseal import KeychainProvider, Vault
from sessionseal._vault import _autopush
from sessionseal.cli import cli
from sessionseal.errors import InvalidInput
from sessionseal.models import Session

#: A hang guard only: the background process's keychain bound is 4 s; Python's start under load.
HANG_GUARD = 120.0


@pytest.fixture
def auto_vault(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Vault:
    # The background process cannot reach the test's in-memory keychain, nor the machine's:
    # its open fails, fast, which is what these tests look at.
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    vault.remotes.add("cloud", "s3://bucket/auto", check=False)
    return vault


def _session(i: int) -> Session:
    return Session.model_validate({"title": f"t{i}", "messages": [{"role": "user", "content": f"turn {i}"}]})


def _hold(v: Vault) -> int:
    fd = os.open(v.path / "locks" / _autopush.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _wait_for_outcome(v: Vault) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        status = v.remotes.auto_status()
        if status:
            return status
        time.sleep(0.1)
    raise AssertionError("no background push outcome within the hang guard")


def test_off_by_default_a_write_starts_nothing(auto_vault: Vault) -> None:
    auto_vault.save(_session(1))
    assert auto_vault.parts.autopush.spawned == 0
    assert not (auto_vault.path / "locks" / _autopush.LOCK_FILE).exists()
    [remote] = auto_vault.remotes.list()
    assert remote.auto_push is None
    # The config is written as before the field existed while no remote has it on.
    assert (
        b"auto_push"
        not in auto_vault.config().model_dump_json(exclude={"remotes": {"__all__": {"auto_push"}}}).encode()
    )


def test_on_a_write_starts_one_background_push_and_none_while_one_is_pending(auto_vault: Vault) -> None:
    remote = auto_vault.remotes.auto("cloud", on=True, delay=0)
    assert remote.auto_push == 0.0 and auto_vault.remotes.list()[0].auto_push == 0.0
    fd = _hold(auto_vault)  # a pending background push holds the lock through its delay
    try:
        for i in range(5):
            auto_vault.save(_session(i))
        assert auto_vault.parts.autopush.spawned == 0
    finally:
        os.close(fd)
    auto_vault.save(_session(9))
    assert auto_vault.parts.autopush.spawned == 1
    # Reads start nothing.
    auto_vault.list()
    assert auto_vault.parts.autopush.spawned == 1


def test_a_background_push_that_cannot_open_the_vault_fails_fast_and_is_reported(
    auto_vault: Vault, tmp_path: Path
) -> None:
    auto_vault.remotes.auto("cloud", on=True, delay=0)
    started = time.monotonic()
    auto_vault.save(_session(1))
    assert time.monotonic() - started < HANG_GUARD  # the save never waits for the push
    status = _wait_for_outcome(auto_vault)
    assert status[""]["outcome"] == "error" and status[""]["error"] == "KeyUnavailable"
    assert status[""]["exit_code"] == 5
    # Nothing but the class, the code and the time is kept: no message, no name.
    raw = json.loads((auto_vault.path / _autopush.AUTO_FILE).read_text())
    assert set(raw["last"]) == {"at", "outcome", "error", "exit_code"}
    # The vault's own files: verify knows them.
    assert [p for p in auto_vault.verify().problems if "autopush" in p.path] == []


def test_auto_push_is_refused_for_a_passphrase_vault(tmp_path: Path) -> None:
    with Vault.init(tmp_path / "pv", key_provider="passphrase", passphrase="a long enough passphrase") as v:
        v.remotes.add("cloud", "s3://bucket/x", check=False)
        with pytest.raises(InvalidInput, match="keychain vault"):
            v.remotes.auto("cloud", on=True)
        assert v.remotes.auto("cloud", on=False).auto_push is None


@pytest.mark.parametrize("delay", [-1.0, 3601.0, float("nan")])
def test_a_delay_out_of_range_is_refused(auto_vault: Vault, delay: float) -> None:
    with pytest.raises(InvalidInput, match="delay"):
        auto_vault.remotes.auto("cloud", on=True, delay=delay)
    assert auto_vault.remotes.list()[0].auto_push is None


def test_no_such_remote(auto_vault: Vault) -> None:
    with pytest.raises(InvalidInput, match="no remote of that name"):
        auto_vault.remotes.auto("other", on=True)


def test_the_cli_turns_it_on_and_off_and_remote_list_shows_it(
    vault_path: Path, provider: KeychainProvider, memory_keyring: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(vault_path))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert runner.invoke(cli, ["remote", "add", "cloud", "s3://bucket/x", "--no-check"]).exit_code == 0
    on = runner.invoke(cli, ["remote", "auto", "cloud", "on", "--delay", "2.5", "--json"])
    assert on.exit_code == 0, on.output
    assert json.loads(on.stdout)["auto_push"] == 2.5
    listed = json.loads(runner.invoke(cli, ["remote", "list", "--json"]).stdout)
    assert listed["remotes"][0]["auto_push"] == 2.5 and listed["remotes"][0]["last_auto_push"] is None
    human = runner.invoke(cli, ["remote", "list"])
    assert "auto push: on, 2.5 s after a write; none ran yet" in human.stdout
    assert runner.invoke(cli, ["remote", "auto", "cloud", "off"]).exit_code == 0
    assert json.loads(runner.invoke(cli, ["remote", "list", "--json"]).stdout)["remotes"][0]["auto_push"] is None
    bad = runner.invoke(cli, ["remote", "auto", "cloud", "on", "--delay", "-3"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    missing = runner.invoke(cli, ["remote", "auto", "nope", "on"])
    assert missing.exit_code == 8
    records = [
        json.loads(line)
        for line in runner.invoke(cli, ["audit", "show", "--json", "--action", "remote.auto"]).stdout.splitlines()
    ]
    assert [r["detail"]["on"] for r in records if r["outcome"] == "ok"] == [True, False]
