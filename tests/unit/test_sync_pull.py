"""``sessionseal sync --pull``, its checking part (issue 26; docs/sync.md, "Pull"): every device's
log on a real S3 server (``rclone serve s3`` on 127.0.0.1, and moto for the tests marked
``both_servers``) is read and checked against its record, signed head and MAC chain; a bucket
that removes, moves, edits or cuts entries, or forges a head, is refused in one line (exit 19);
an entry still in flight is left for later; the check is audited.  Applying what was checked: tests/unit/test_sync_apply.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, Vault
from sessionseal.cli import cli
from sessionseal.errors import RemoteError
from sessionseal.models import Session
from tests._infra.s3server import S3Server, both_servers
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)

PREFIX = "team"


def _session(title: str) -> Session:
    return Session.model_validate({"title": title, "messages": [{"role": "user", "content": "text"}]})


class _Bucket:
    """The bucket as its operator (or an adversary) changes it: through the server, without the
    client's ``If-None-Match`` (which moto would honour)."""

    def __init__(self, server: S3Server) -> None:
        self.server = server

    def get(self, key: str) -> bytes:
        return self.server.read(key)

    def put(self, key: str, data: bytes) -> None:
        self.server.write(key, data)

    def delete(self, key: str) -> None:
        self.server.remove(key)


@pytest.fixture
def two(
    s3_server: S3Server, tmp_path: Path, provider: KeychainProvider, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Vault, Vault, _Bucket]]:
    """Two devices on one remote, each having pushed: the first made epoch 1, the second was
    given its key (what enrolment will do)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    url = f"s3://{s3_server.bucket}/{PREFIX}"
    first = Vault.init(tmp_path / "first", key_provider=provider)
    second = Vault.init(tmp_path / "second", key_provider=provider)
    try:
        for v in (first, second):
            v.remotes.add("cloud", url, endpoint=s3_server.endpoint)
        for i in range(3):
            first.save(_session(f"first {i}"))
        first.remotes.push()
        devices = first.remotes.devices
        second.remotes.devices.add_epoch_key(
            "cloud", 1, devices.epoch_key("cloud", 1), remote_id=devices.identity("cloud").remote_id
        )
        second.save(_session("second"))
        second.remotes.push()
        yield first, second, _Bucket(s3_server)
    finally:
        first.close()
        second.close()


def _log(v: Vault, seq: int | None = None) -> str:
    device = v.remotes.devices.identity("cloud").device_id
    base = f"{PREFIX}/d/{device.hex}/log/"
    return base if seq is None else base + f"{seq:016x}"


@both_servers
def test_every_device_log_checks_out_then_is_applied(two: tuple[Vault, Vault, _Bucket]) -> None:
    first, second, _ = two
    result = second.remotes.pull()
    check = result.check
    by_device = {d.device: d for d in check.devices}
    mine = by_device[second.remotes.devices.identity("cloud").device_id]
    theirs = by_device[first.remotes.devices.identity("cloud").device_id]
    assert mine.mine and not theirs.mine
    assert (theirs.entries, theirs.seq, theirs.head, theirs.pending) == (4, 4, 4, False)
    assert theirs.kinds == {"epoch": 1, "session.put": 3}
    assert mine.kinds == {"session.put": 1}
    assert check.counts() == {
        "devices": 2,
        "entries": 5,
        "pending": 0,
        "blocked": 0,
        "epochs_taken": 0,
        "epochs_pending": 0,
        "wraps_taken": 0,
        "wraps_refused": 0,
    }
    assert (result.counts()["applied"], result.put) == (3, 3)
    assert len(second.list()) == 4


@both_servers
def test_a_bucket_that_removes_moves_edits_or_cuts_entries_is_refused(two: tuple[Vault, Vault, _Bucket]) -> None:
    first, second, store = two
    entry2, entry3 = store.get(_log(first, 2)), store.get(_log(first, 3))
    damage: list[tuple[str, Callable[[], None], Callable[[], None], str]] = [
        ("gap", lambda: store.delete(_log(first, 2)), lambda: store.put(_log(first, 2), entry2), "gap"),
        ("moved", lambda: store.put(_log(first, 2), entry3), lambda: store.put(_log(first, 2), entry2), "entry 2"),
        (
            "edited",
            lambda: store.put(_log(first, 2), entry2[:-1] + bytes([entry2[-1] ^ 1])),
            lambda: store.put(_log(first, 2), entry2),
            "entry 2",
        ),
    ]
    for name, do, undo, says in damage:
        do()
        with pytest.raises(RemoteError, match=says):
            second.remotes.pull()
        undo()
        assert second.remotes.pull().counts()["entries"] == 5, name
    # The tail cut below what the device's signed head names: a rollback.
    last = store.get(_log(first, 4))
    store.delete(_log(first, 4))
    with pytest.raises(RemoteError, match="below entry 4"):
        second.remotes.pull()
    store.put(_log(first, 4), last)
    # A head that is not the device's own signature.
    device = first.remotes.devices.identity("cloud").device_id
    head_key = f"{PREFIX}/d/{device.hex}/head/{4:016x}"
    head = store.get(head_key)
    store.put(head_key, head[:-1] + bytes([head[-1] ^ 1]))
    with pytest.raises(RemoteError, match="head is not one it signed"):
        second.remotes.pull()
    store.put(head_key, head)
    # An entry after the head that does not open yet: in flight, left for later.
    store.put(_log(first, 5), b"half an upload")
    assert {d.pending for d in second.remotes.pull().check.devices} == {True, False}


def test_a_device_without_keys_cannot_check(
    s3_server: S3Server, vault_path: Path, provider: KeychainProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    with Vault.init(vault_path, key_provider=provider) as v:
        v.remotes.add("cloud", f"s3://{s3_server.bucket}/x", endpoint=s3_server.endpoint)
        with pytest.raises(RemoteError, match="holds no key"):
            v.remotes.pull()


@both_servers
def test_the_command_checks_in_one_line_and_is_audited(
    two: tuple[Vault, Vault, _Bucket], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, store = two
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(second.path))
    keyring_vault = second.path
    second.close()  # the command opens it itself
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli, list(args), catch_exceptions=False)

    assert run("sync", "--push", "--pull").exit_code == 2
    ok = run("sync", "--pull", "--json")
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert (doc["applied"], doc["devices"], doc["entries"], doc["put"]) == (3, 2, 5, 3)
    assert {d["this_device"] for d in doc["logs"]} == {True, False}
    text = run("sync", "--pull")
    assert text.exit_code == 0 and "applied 0 sessions, 0 appends" in text.stderr
    store.delete(_log(first, 2))
    refused = run("sync", "--pull")
    assert refused.exit_code == 19 and refused.stderr.count("\n") == 1 and "gap" in refused.stderr
    records = [json.loads(line) for line in (keyring_vault / "audit" / "audit.log").read_text().splitlines()]
    pulls = [r["outcome"] for r in records if r["action"] == "sync.pull"]
    assert pulls == ["ok", "ok", "error"]
    assert all("cloud" not in json.dumps(r) and PREFIX not in json.dumps(r) for r in records)
