"""Taking up another device's new epoch on pull, against a real S3 server (``rclone serve s3`` on
127.0.0.1; issue 26; docs/sync.md "Devices"; docs/design.md "Keys"; src/sessionseal/_vault/_syncepochs.py).

The spec: a device revocation on A makes epoch e+1, its key wrapped for every enrolled device but
the revoked one.  Another enrolled device B takes the key up on its next pull (or ``device
list``), but only once A's log, read under it, holds the ``epoch`` entry naming the key object's
hash and a head signed by A's enrolled key covers it; until then the key object is *pending*
(reported, not an error) and A's log is read up to that epoch.  B then pushes under e+1; both
its cursors still open.  The revoked device C finds no stanza: it applies what was written
before the revocation, and its pull says it was revoked (exit 19, one line).

Tamper cases: a key object a bucket planted (no key of its own; a stanza for B wrapping a key it
chose, and entries forged under that key chaining from A's real log) is never taken up, with or
without a head it signed itself, and with A's record's keys swapped for its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sessionseal import Vault, _device_enroll, _remotekeys, _remotelog, _s3, list_devices
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

PREFIX = "team/me"


def _vault(path: Path, server: S3Server, kr: MemoryKeyring) -> Vault:
    return syncvaults.vault(path, server, kr, PREFIX)


_device, _enrol, _save, _titles, _store = (
    syncvaults.device,
    syncvaults.enrol,
    syncvaults.save,
    syncvaults.titles,
    syncvaults.store,
)


#: A (the remote's first device, which pushed "a before"), B (enrolled by A; pushed "b before")
#: and C (enrolled by A), every one pulled: :func:`syncvaults.three`'s, restored.
kr, captured, three = synccapture.three_device_fixtures(PREFIX, b_pushes=True)


def _head_names(server: S3Server, dev: uuid.UUID) -> list[str]:
    base = f"{PREFIX}/d/{dev.hex}/head/"
    return sorted(k for k, _ in _store(server).list(base))


def test_a_revocation_is_taken_up_by_the_others_and_shuts_out_the_revoked(
    three: tuple[Vault, Vault, Vault], server_env: S3Server
) -> None:
    a, b, c = three
    assert {"a before", "b before"} <= _titles(c)
    _device_enroll.revoke(a, None, _device(c).hex)
    _save(a, "a after")
    assert a.remotes.push().epoch == 2
    # A dry run counts the epoch it would take up, and keeps nothing.
    dry = b.remotes.pull(dry_run=True)
    assert (dry.check.taken, dry.dry_run) == (1, True) and dry.entries >= 1
    assert set(b.remotes.devices.epoch_keys("cloud")) == {1} and "a after" not in _titles(b)
    # B takes epoch 2 up on its pull, then reads what A wrote under it.
    pulled = b.remotes.pull()
    assert pulled.check.taken == 1 and pulled.counts()["epochs_taken"] == 1
    assert set(b.remotes.devices.epoch_keys("cloud")) == {1, 2}
    assert b.remotes.devices.epoch_keys("cloud")[2] == a.remotes.devices.epoch_keys("cloud")[2]
    assert "a after" in _titles(b)
    assert b.remotes.pull().check.taken == 0  # held now: nothing to take up again
    # B's pushes seal under the newest epoch; its push and pull cursors still open.
    _save(b, "b after")
    pushed = b.remotes.push()
    assert (pushed.epoch, pushed.put) == (2, 1)
    assert b.remotes.push().put == 0
    a.remotes.pull()
    assert "b after" in _titles(a)
    # C keeps what it read before, is refused beyond, and says why.
    with pytest.raises(RemoteError, match="this device was revoked"):
        c.remotes.pull()
    assert set(c.remotes.devices.epoch_keys("cloud")) == {1}
    assert not {"a after", "b after"} & _titles(c)
    status = {e.device: e.status for e in list_devices(b).devices}
    assert status == {_device(a): "enrolled", _device(b): "enrolled", _device(c): "revoked"}
    mine = next(e for e in list_devices(c).devices if e.this_device)
    assert (mine.status, mine.revoked_by) == ("revoked", _device(a))


def test_an_epoch_whose_head_is_not_there_yet_is_pending_then_taken(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revocation whose entries are up but whose head is still uploading: B reads A's log up
    to the new epoch, reports the key object pending, and takes it once the head is there.
    While it is pending, each pull opens every entry it can open once (its check), never again
    for the proof: what the proof verified is kept in the pull cursor, and the next proof opens
    only what follows it (counted in entries opened, never timed)."""
    a, b, c = three
    _device_enroll.revoke(a, None, _device(c).hex)
    store = _store(server_env)
    newest = _head_names(server_env, _device(a))[-1]
    head = store.get(newest)
    store.delete(newest)  # the proof's head: not there yet
    result = b.remotes.pull()  # the first proof reads every log whole
    assert (result.check.taken, result.check.epochs_pending, result.counts()["blocked"]) == (0, 1, 1)
    assert set(b.remotes.devices.epoch_keys("cloud")) == {1}
    opened: dict[tuple[uuid.UUID, int], int] = {}
    real = _remotelog.open_entry

    def spy(data: bytes, keys: Any, remote: uuid.UUID, device: uuid.UUID, seq: int) -> _remotelog.Opened:
        opened[(device, seq)] = opened.get((device, seq), 0) + 1
        return real(data, keys, remote, device, seq)

    monkeypatch.setattr(_remotelog, "open_entry", spy)
    for _ in range(2):
        opened.clear()
        result = b.remotes.pull()
        assert (result.check.taken, result.check.epochs_pending) == (0, 1)
        assert len(opened) >= 5 and max(opened.values()) == 1  # before: every entry twice or more
    monkeypatch.setattr(_remotelog, "open_entry", real)
    store.put(newest, head)  # the head arrives: proved from the kept prefix and what follows it
    assert b.remotes.pull().check.taken == 1
    assert set(b.remotes.devices.epoch_keys("cloud")) == {1, 2}


def _plant_epoch(
    server: S3Server, victim: Vault, maker: Vault, *, sign: bytes | None = None, swap_record: bool = False
) -> bytes:
    """What a bucket without any key can do: a key object ``keys/00000003`` under *maker*'s
    prefix with a stanza for *victim* wrapping a key it chose, and entries forged under that key
    after *maker*'s real log (its last MAC is in the clear in its head), an ``epoch`` entry naming
    the object and a ``device.enroll`` of a device of its own; with *sign*, a head signed by that
    Ed25519 key, and with *swap_record*, *maker*'s record carrying that key.  Returns the key."""
    store = _store(server)
    rid = victim.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    me, dev = _device(victim), _device(maker)
    mine = victim.remotes.devices.identity("cloud")
    chosen = bytes(range(32))
    obj = _remotekeys.keys_object(rid, 3, dev, [_remotekeys.wrap_for_device(chosen, rid, 3, me, mine.x25519_public)])
    base = f"{PREFIX}/d/{dev.hex}/"
    store.put(base + f"keys/{3:08x}", obj)
    head = store.get(_head_names(server, dev)[-1])
    fixed = _remotelog.HEAD_FIXED.unpack_from(head)
    seq, prev, hlc = fixed[5], fixed[6], fixed[7]
    fake = _remotekeys.DeviceKeys.generate()
    forged: list[dict[str, object]] = [
        {"kind": "epoch", "epoch": 3, "keys": hashlib.sha256(obj).hexdigest(), "reason": "revoke"},
        {
            "kind": "device.enroll",
            "device": uuid.uuid4().hex,
            "x25519": base64.b64encode(fake.x25519_public).decode(),
            "ed25519": base64.b64encode(fake.ed25519_public).decode(),
            "keys": "00" * 32,
            "witness": {},
        },
    ]
    for entry in forged:
        seq += 1
        data, prev = _remotelog.seal_entry(
            chosen, rid, dev, epoch=3, seq=seq, prev=prev, entry={**entry, "hlc": f"{hlc + seq:016x}"}
        )
        store.put(base + f"log/{seq:016x}", data)
    if sign is not None:
        keys = _remotekeys.DeviceKeys(bytes(32), sign)
        store.put(
            base + f"head/{seq:016x}",
            _remotelog.sign_head(keys, rid, dev, epoch=3, seq=seq, mac=prev, hlc=hlc + seq, witness={}),
        )
        if swap_record:
            record = json.loads(store.get(base + "device"))
            record["ed25519"] = base64.b64encode(keys.ed25519_public).decode()
            store.put(base + "device", _remotelog.canonical(record))
    return chosen


@pytest.mark.parametrize("maker_is_first", [True, False])
def test_a_planted_key_object_without_a_signed_head_stays_pending(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, maker_is_first: bool
) -> None:
    a, b, _ = three
    maker, victim = (a, b) if maker_is_first else (b, a)
    _plant_epoch(server_env, victim, maker)
    result = victim.remotes.pull()
    assert (result.check.taken, result.check.epochs_pending) == (0, 1)
    assert set(victim.remotes.devices.epoch_keys("cloud")) == {1}
    assert next(d for d in result.check.devices if d.device == _device(maker)).blocked == 3
    status = {e.device: e.status for e in list_devices(victim).devices}
    assert len(status) == 3  # the forged enrolment is never read
    assert set(victim.remotes.devices.epoch_keys("cloud")) == {1}


def test_a_planted_key_object_with_a_head_of_its_own_is_refused(
    three: tuple[Vault, Vault, Vault], server_env: S3Server
) -> None:
    a, b, _ = three
    _plant_epoch(server_env, b, a, sign=bytes(range(1, 33)))
    with pytest.raises(RemoteError, match="head is not one it signed"):
        b.remotes.pull()
    assert set(b.remotes.devices.epoch_keys("cloud")) == {1}


@pytest.mark.parametrize("maker_is_first", [True, False])
def test_a_planted_key_object_with_the_record_swapped_is_never_taken(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, maker_is_first: bool
) -> None:
    """The bucket swaps the maker's record for one with its own Ed25519 key and signs a head
    with it: the key differs from the one the maker's enrolment (or, for the first device, its
    opening entry) names, so the proof fails and the key is not kept."""
    a, b, _ = three
    maker, victim = (a, b) if maker_is_first else (b, a)
    _plant_epoch(server_env, victim, maker, sign=bytes(range(1, 33)), swap_record=True)
    result = victim.remotes.pull()  # the swapped record signs the newest head: the log reads
    assert (result.check.taken, result.check.epochs_pending) == (0, 1)
    assert set(victim.remotes.devices.epoch_keys("cloud")) == {1}
    status = {e.device: e.status for e in list_devices(victim).devices}
    assert status[_device(maker)] == "invalid"  # its record's keys are not its enrolment's
    assert set(victim.remotes.devices.epoch_keys("cloud")) == {1}


def test_a_deletes_push_while_a_key_object_is_pending_reads_the_others_logs_once(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete's push takes up the others' new epochs first, as a pull does; a key object
    that never gets its proof (planted here) stays pending, and its proof is tried at every such
    push.  What the proof verified is kept in the pull cursor, as a pull keeps it: the next
    delete's push opens each entry of the other devices' logs once (the check), never again for
    the proof; and its rebase reads its own log without fetching again what the check fetched
    (counted in entries opened and GETs, never timed)."""
    a, b, _ = three
    _plant_epoch(server_env, b, a)
    first, second = b.save({"title": "one"}), b.save({"title": "two"})
    b.remotes.push()
    b.delete(first)
    assert b.remotes.push().tombstoned == 1  # the first proof reads every log whole
    opened: dict[tuple[uuid.UUID, int], int] = {}
    real = _remotelog.open_entry

    def spy(data: bytes, keys: Any, remote: uuid.UUID, device: uuid.UUID, seq: int) -> _remotelog.Opened:
        opened[(device, seq)] = opened.get((device, seq), 0) + 1
        return real(data, keys, remote, device, seq)

    fetched: list[str] = []
    get = _s3.S3Store.get

    def counted(self: _s3.S3Store, key: str) -> bytes:
        fetched.append(key)
        return get(self, key)

    monkeypatch.setattr(_remotelog, "open_entry", spy)
    monkeypatch.setattr(_s3.S3Store, "get", counted)
    b.delete(second)
    pushed = b.remotes.push()
    assert (pushed.tombstoned, pushed.rebased) == (1, 1)  # the rebase restates "b before"
    others = {k: n for k, n in opened.items() if k[0] != _device(b)}
    assert len(others) >= 3 and max(others.values()) == 1  # before: every entry twice
    own = [k for k in fetched if f"/d/{_device(b).hex}/log/" in k]
    assert len(own) >= 5 and len(own) == len(set(own))  # before: the rebase fetched them all again
    monkeypatch.setattr(_remotelog, "open_entry", real)
    monkeypatch.setattr(_s3.S3Store, "get", get)
    assert a.remotes.pull().check.taken == 2  # both deletes' epochs reach A all the same
    assert set(b.remotes.devices.epoch_keys("cloud")) == {1, 4, 5}


def test_the_revoked_device_is_told_in_one_line_with_exit_19(
    three: tuple[Vault, Vault, Vault], kr: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionseal import _keystore

    a, _, c = three
    _device_enroll.revoke(a, None, _device(c).hex)
    _save(a, "a after")
    a.remotes.push()
    path = c.path
    c.close()
    monkeypatch.setattr(_keystore, "_select_backend", lambda interactive: kr)
    res = CliRunner().invoke(cli, ["--vault", str(path), "sync", "--pull", "--json"])
    assert res.exit_code == 19, res.stderr
    assert res.stdout == "" and res.stderr.count("\n") == 1 and "revoked" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_revoked_devices_entries_after_its_revocation_are_refused(
    three: tuple[Vault, Vault, Vault], server_env: S3Server
) -> None:
    """ "After" is what the revoker had applied of C when it revoked it (the ``device.revoke``
    entry's ``witness``), never C's own clock, which C sets: C's entries beyond it are refused
    (counted, not applied) on every reader, the revoker's included."""
    a, b, c = three
    _save(c, "c before")
    c_seq = c.remotes.push().seq
    a.remotes.pull()  # A applies C's entries up to c_seq ...
    _device_enroll.revoke(a, None, _device(c).hex)  # ... and revokes it, witnessing that
    rid = a.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    store = _store(server_env)
    base = f"{PREFIX}/d/{_device(a).hex}/log/"
    logs = {int(k.rsplit("/", 1)[1], 16): store.get(k) for k, _ in store.list(base)}
    read = _remotelog.read_log(logs, a.remotes.devices.epoch_keys("cloud"), rid, _device(a))
    revoke = read.entries[-1]
    assert revoke.entry["kind"] == "device.revoke" and revoke.epoch == revoke.entry["epoch"] == 2
    assert revoke.entry["witness"][0] == c_seq
    # C does not know yet: it goes on pushing under the epoch it holds.
    _save(c, "c after")
    assert c.remotes.push().epoch == 1
    for reader in (b, a):
        result = reader.remotes.pull()
        assert result.refused >= 1 and result.counts()["refused"] == result.refused
        assert "c before" in _titles(reader) and "c after" not in _titles(reader)
    assert {e.device: e.status for e in list_devices(b).devices}[_device(c)] == "revoked"


def test_a_revoked_device_can_neither_cut_the_others_logs_nor_enrol_a_device_of_its_own(
    three: tuple[Vault, Vault, Vault],
    server_env: S3Server,
    tmp_path: Path,
    kr: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After its cutoff, a revoked device's heads witness nothing (a witness of entries never
    written would make another device's log look cut) and its entries enrol no one.  (Its own
    ``--accept`` refuses, seeing a newer epoch without a key for it: the one below skips that
    check, as a modified client would.)"""
    a, b, c = three
    a.remotes.pull()
    _device_enroll.revoke(a, None, _device(c).hex)
    rid = a.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    _save(c, "c after")
    c.remotes.push()
    store = _store(server_env)
    me = _device(c)
    base = f"{PREFIX}/d/{me.hex}/"
    logs = {int(k.rsplit("/", 1)[1], 16): store.get(k) for k, _ in store.list(base + "log/")}
    last = _remotelog.read_log(logs, c.remotes.devices.epoch_keys("cloud"), rid, me).entries[-1]
    head = _remotelog.sign_head(
        c.remotes.devices.identity("cloud").keys,
        rid,
        me,
        epoch=last.epoch,
        seq=last.seq,
        mac=last.mac,
        hlc=1,
        witness={_device(b): (10**6, bytes(32))},
    )
    store.put(base + f"head/{last.seq:016x}", head)
    with _vault(tmp_path / "x", server_env, kr) as puppet:
        step = _device_enroll.request(puppet)
        with pytest.raises(RemoteError, match="without a key for this device"):
            _device_enroll.accept(c, None, _device(puppet).hex, step.pairing_code or "")
        monkeypatch.setattr(_device_enroll, "_take_up_first", lambda config, store, devices, refuse: 0)
        _device_enroll.accept(c, None, _device(puppet).hex, step.pairing_code or "")
        result = b.remotes.pull()  # C's witness of B is not taken as a floor
        assert result.refused >= 1 and "c after" not in _titles(b)
        status = {e.device: e.status for e in list_devices(b).devices}
        assert status[_device(c)] == "revoked" and status[_device(puppet)] == "not-enrolled"


def test_the_command_says_what_is_pending_and_what_was_taken_up(
    three: tuple[Vault, Vault, Vault], server_env: S3Server, kr: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessionseal import _keystore

    a, b, c = three
    _device_enroll.revoke(a, None, _device(c).hex)
    store = _store(server_env)
    newest = _head_names(server_env, _device(a))[-1]
    head = store.get(newest)
    store.delete(newest)
    path = b.path
    b.close()
    monkeypatch.setattr(_keystore, "_select_backend", lambda interactive: kr)
    runner = CliRunner()
    res = runner.invoke(cli, ["--vault", str(path), "sync", "--pull"])
    assert res.exit_code == 0, res.stderr
    assert "1 new epoch keys not proved yet (pending)" in res.stderr
    assert "read up to its entries of epoch 2" in res.stderr
    store.put(newest, head)
    res = runner.invoke(cli, ["--vault", str(path), "sync", "--pull", "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["epochs_taken"], doc["epochs_pending"], doc["blocked"]) == (1, 0, 0)
    assert {d["blocked"] for d in doc["logs"]} == {0}
