"""Floors: what a reader knows a device's log reached, checked before anything is applied
(issue 26; docs/design.md "Detecting a log cut, edited, reordered or rolled back"; docs/spec/
remote-v1.md "Heads" and "Log entries"), against a real S3 server (``rclone serve s3`` on
127.0.0.1) with three devices, each with its own vault and key store.

- **Witnesses.** Every head a push writes carries, for each other device, the ``(seq, mac)``
  this device last applied of its log; a ``device.enroll`` entry carries the enroller's.  A
  device prefix rolled back below what another device witnessed is refused (exit 19, nothing
  applied), even by a reader that never saw the newer entries.
- **Stored floors.** A reader's own record of what it applied (its pull cursor) is a floor too:
  a device prefix rolled back whole, a tail cut, or an entry replaced at the same seq after this
  device applied it is refused in one line, with nothing applied and the vault unchanged.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from sessionseal import Vault, _remotelog, _s3
from sessionseal.cli import cli
from sessionseal.errors import RemoteError
from tests._infra import synccapture, syncvaults
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's server's fixtures)
    fixture_module_server,
    fixture_module_server_env,
    fixture_s3_server,
    fixture_server_env,
)
from tests.memkeyring import MemoryKeyring

PREFIX = "team/floors"


def _vault(path: Path, server: S3Server, kr: MemoryKeyring) -> Vault:
    return syncvaults.vault(path, server, kr, PREFIX)


_device, _enrol, _save, _titles, _store = (
    syncvaults.device,
    syncvaults.enrol,
    syncvaults.save,
    syncvaults.titles,
    syncvaults.store,
)


def _prefix(v: Vault) -> str:
    return f"{PREFIX}/d/{_device(v).hex}/"


def _snapshot(store: _s3.S3Store, v: Vault) -> dict[str, bytes]:
    return {k: store.get(k) for k, _ in store.list(_prefix(v))}


def _roll_back(store: _s3.S3Store, v: Vault, snap: dict[str, bytes]) -> None:
    """The bucket puts *v*'s whole prefix back as it was at *snap* (heads included)."""
    for k, _ in store.list(_prefix(v)):
        if k not in snap:
            store.delete(k)
    for k, data in snap.items():
        store.put(k, data)


def _local(v: Vault) -> tuple[set[str], dict[str, bytes]]:
    """What a refused pull must leave as it was: the sessions and the sync cursors."""
    sync = v.path / "sync"
    return _titles(v), {p.name: p.read_bytes() for p in sorted(sync.iterdir())} if sync.exists() else {}


#: A (the remote's first device, which pushed "a before"), B and C (enrolled by A), every one
#: pulled: :func:`syncvaults.three`'s, restored.
kr, captured, three = synccapture.three_device_fixtures(PREFIX)


def _newest_head(store: _s3.S3Store, v: Vault, rid: uuid.UUID) -> _remotelog.Head:
    newest = max(k for k, _ in store.list(_prefix(v) + "head/"))
    return _remotelog.open_head(store.get(newest), v.remotes.devices.identity("cloud").ed25519_public, rid, _device(v))


def test_heads_and_enrolments_carry_what_the_device_applied(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, tmp_path: Path
) -> None:
    a, b, _ = three
    store = _store(server_env)
    rid = a.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    _save(a, "a 1")
    a_seq = a.remotes.push().seq
    b.remotes.pull()
    _save(b, "b 1")
    b.remotes.push()
    head = _newest_head(store, b, rid)
    a_log = {int(k.rsplit("/", 1)[1], 16): store.get(k) for k, _ in store.list(_prefix(a) + "log/")}
    read = _remotelog.read_log(a_log, a.remotes.devices.epoch_keys("cloud"), rid, _device(a))
    assert head.witness[_device(a)] == (a_seq, read.entries[-1].mac)
    assert _device(b) not in head.witness  # a head never witnesses its own device
    # An enrolment carries the enroller's witness vector, as the spec's table says.
    enrolment = next(o.entry for o in read.entries if o.entry["kind"] == "device.enroll")
    assert enrolment["witness"] == {}  # A had applied nothing of anyone when it enrolled B
    with _vault(tmp_path / "d", server_env, MemoryKeyring()) as d:
        a.remotes.pull()
        _enrol(a, d)
        a_log = {int(k.rsplit("/", 1)[1], 16): store.get(k) for k, _ in store.list(_prefix(a) + "log/")}
        read = _remotelog.read_log(a_log, a.remotes.devices.epoch_keys("cloud"), rid, _device(a))
        last = read.entries[-1].entry
        assert last["kind"] == "device.enroll" and last["device"] == _device(d).hex
        b_seq = max(int(k.rsplit("/", 1)[1], 16) for k, _ in store.list(_prefix(b) + "log/"))
        assert last["witness"][_device(b).hex][0] == b_seq
        assert set(last["witness"]) == {_device(b).hex}  # C has no log: nothing of it applied


def test_a_prefix_rolled_back_below_a_witness_is_refused_by_a_reader_that_never_saw_it(
    three: tuple[Vault, Vault, Vault], server_env: S3Server
) -> None:
    a, b, c = three
    store = _store(server_env)
    snap = _snapshot(store, a)
    _save(a, "a 1")
    seq = a.remotes.push().seq
    b.remotes.pull()  # B applies A's newer entries, and its next head witnesses them
    _save(b, "b 1")
    b.remotes.push()
    _roll_back(store, a, snap)
    before = _local(c)
    with pytest.raises(RemoteError, match=f"below entry {seq}"):
        c.remotes.pull()  # C never read A's entries after the snapshot
    assert _local(c) == before  # nothing applied: not even B's new session
    for k, _ in store.list(_prefix(a)):  # the whole prefix removed: B's witness still names it
        store.delete(k)
    with pytest.raises(RemoteError, match="gone from the remote"):
        c.remotes.pull()
    assert _local(c) == before


def test_a_rolled_back_prefix_a_cut_tail_or_a_replaced_entry_is_refused_by_what_the_reader_applied(
    three: tuple[Vault, Vault, Vault], server_env: S3Server
) -> None:
    """Nobody witnessed A's newer entries but B, which applied them: B's own record refuses."""
    a, b, _ = three
    store = _store(server_env)
    snap = _snapshot(store, a)
    sync_before = {p.name: p.read_bytes() for p in (a.path / "sync").iterdir()}
    _save(a, "a 1")
    _save(a, "a 2")
    a.remotes.push()
    after = _snapshot(store, a)
    b.remotes.pull()
    assert {"a 1", "a 2"} <= _titles(b)
    before = _local(b)
    # The whole prefix rolled back, heads and all.
    _roll_back(store, a, snap)
    with pytest.raises(RemoteError, match="no longer holds the entry this vault applied"):
        b.remotes.pull()
    assert _local(b) == before
    # The whole prefix gone, record and all.
    for k in after:
        store.delete(k)
    with pytest.raises(RemoteError, match="gone from the remote"):
        b.remotes.pull()
    assert _local(b) == before
    # The tail cut: the last entry and its head gone.
    _roll_back(store, a, after)
    last_log = max(k for k in after if "/log/" in k)
    last_head = max(k for k in after if "/head/" in k)
    store.delete(last_log)
    store.delete(last_head)
    with pytest.raises(RemoteError, match="no longer holds the entry this vault applied"):
        b.remotes.pull()
    assert _local(b) == before
    # An entry replaced at the same seq: A's vault state and prefix put back older (a restore
    # from backup), then A pushes something else, as a new entry at the seq B applied.
    _roll_back(store, a, snap)
    for name, data in sync_before.items():
        (a.path / "sync" / name).write_bytes(data)
    _save(a, "a other")
    a.remotes.push()
    with pytest.raises(RemoteError, match="no longer holds the entry this vault applied"):
        b.remotes.pull()
    assert _local(b) == before
    assert "a other" not in _titles(b)


def test_the_refusal_is_one_line_and_exit_19(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, kr: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionseal import _keystore

    a, b, _ = three
    store = _store(server_env)
    snap = _snapshot(store, a)
    _save(a, "a 1")
    a.remotes.push()
    b.remotes.pull()
    _roll_back(store, a, snap)
    path = b.path
    b.close()
    monkeypatch.setattr(_keystore, "_select_backend", lambda interactive: kr)
    res = CliRunner().invoke(cli, ["--vault", str(path), "sync", "--pull"])
    assert res.exit_code == 19 and res.stderr.count("\n") == 1 and "rolled back" in res.stderr, res.stderr
