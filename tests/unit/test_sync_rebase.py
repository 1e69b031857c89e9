"""Rebasing under a delete's epoch and retiring the old epoch's key (issue 26; docs/sync.md,
"Deletes"; docs/spec/remote-v1.md, "Rebase and retirement"), against a real S3 server
(``rclone serve s3`` on 127.0.0.1), each device with its own vault and key store.

The spec: after a device holds the new epoch a delete made, its next push writes a ``rebase``
entry re-sealing every live session its log serves under that epoch.  Once every enrolled,
unrevoked device has rebased, has applied the others' logs past their rebases and is witnessed
past its own, each device deletes its own objects that only old entries name, its old key
objects and enrolment objects, and drops the old key from its store: an old object the bucket
kept is then unreadable with anything any device holds.  A device that has not rebased holds
retirement back; a revoked one does not.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sessionseal import Vault, _crypto, _device_enroll, _device_list, _remotekeys, _remotelog
from sessionseal.errors import IntegrityError, RemoteError
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)
from tests._infra.syncvaults import device, enrol, save, store, titles, vault
from tests.memkeyring import MemoryKeyring

pytestmark = pytest.mark.s3

SECRET = "ornithorhynchus"


def _prefix(server: S3Server, prefix: str, dev: uuid.UUID) -> Path:
    return server.root / server.bucket / prefix / "d" / dev.hex


def _names(server: S3Server, prefix: str, dev: uuid.UUID, kind: str) -> set[str]:
    base = _prefix(server, prefix, dev) / kind
    return {p.name for p in base.iterdir()} if base.is_dir() else set()


def _unreadable(v: Vault, maker: uuid.UUID, name: str, data: bytes) -> None:
    """*data* (an object of *maker*'s the bucket kept) opens under none of *v*'s keys, whatever
    epoch its header claims: every epoch key *v* holds, through every derivation."""
    devices = v.remotes.devices
    rid = devices.identity("cloud").remote_id
    assert rid is not None
    held = devices.epoch_keys("cloud")
    with pytest.raises(RemoteError):
        _remotelog.open_object(name, data, held, rid, maker)
    header = data[: _remotelog.OBJECT_HEADER.size]
    nonce = header[-12:]
    for key in held.values():
        for label in ("object", "log", "log mac"):
            with pytest.raises(IntegrityError):
                _crypto.decrypt(_remotekeys.derive(key, rid, maker, label), nonce, data[len(header) :], header)


def test_delete_rebase_retire_with_an_offline_then_revoked_device_and_a_late_joiner(
    tmp_path: Path, server_env: S3Server
) -> None:
    prefix = "rebase"
    a, b, c, d = (vault(tmp_path / n, server_env, MemoryKeyring(), prefix) for n in "abcd")
    try:
        a.save({"title": "doomed", "messages": [{"role": "user", "content": f"the word is {SECRET}"}]})
        save(a, "kept")
        a.remotes.push()
        enrol(a, b)
        enrol(a, c)
        assert b.remotes.pull().put == 2
        da, db, dc = device(a), device(b), device(c)
        # The bucket keeps a copy of every object of epoch 1 (versioning, a lock, a backup).
        kept_by_bucket = {
            n: (_prefix(server_env, prefix, da) / "o" / n).read_bytes() for n in _names(server_env, prefix, da, "o")
        }
        assert len(kept_by_bucket) == 2
        [doomed] = [s.id for s in a.list() if s.title == "doomed"]
        a.delete(doomed)
        pushed = a.remotes.push()
        assert (pushed.tombstoned, pushed.epoch, pushed.rebased) == (1, 2, 1)
        # B erases, then rebases (its log opens with its rebase: it had sent nothing before).
        assert b.remotes.pull().erased == 1
        assert b.remotes.push().rebased == 0
        # C is offline and has not rebased: epoch 1 stays, on every device.
        waiting = a.remotes.pull().counts()
        assert (waiting["epochs_retired"], waiting["retire_waiting"]) == (0, {dc.hex: "rebase"})
        assert waiting["epochs_held"] == [1, 2]
        # A revokes C (epoch 3): a revoked device holds nothing back.
        _device_enroll.revoke(a, None, dc.hex)
        assert a.remotes.push().rebased == 1  # A's rebase at epoch 3
        b.remotes.pull()
        b.remotes.push()
        pulled = a.remotes.pull().counts()
        assert (pulled["retired_below"], pulled["epochs_retired"], pulled["epochs_held"]) == (3, 2, [3])
        # "kept"'s epoch-1 and epoch-2 objects, and "doomed"'s (gone already: a delete of a gone name counts)
        assert pulled["retired_objects_deleted"] == 3
        assert _names(server_env, prefix, da, "keys") == {f"{3:08x}"}
        assert _names(server_env, prefix, da, "enroll") == set()
        assert not (_names(server_env, prefix, da, "o") & set(kept_by_bucket))
        # B waits until A's head witnesses B's rebase: A's next push writes one.
        assert b.remotes.pull().counts()["retire_waiting"] == {da.hex: "witness"}
        save(a, "after")
        a.remotes.push()
        done = b.remotes.pull().counts()  # B retired epoch 1 already, once A rebased at 3
        assert (done["retired_below"], done["epochs_held"]) == (3, [3])
        # What the bucket kept of epoch 1 opens on neither device.
        for v in (a, b):
            for name, data in kept_by_bucket.items():
                _unreadable(v, da, name, data)
        retired = [r["detail"] for r in b.audit_records() if r.get("action") == "sync.retire"]
        assert sum(r["epochs_retired"] for r in retired) == 2
        # Sync goes on, every log read from its rebase; device list shows who rebased.
        save(b, "from b")
        b.remotes.push()
        assert a.remotes.pull().put == 1
        listed = {e.device: (e.status, e.rebased) for e in _device_list.list_devices(a, "cloud").devices}
        assert listed == {da: ("enrolled", 3), db: ("enrolled", 3), dc: ("revoked", 0)}
        # A device that joins now holds epoch 3 only and gets every session from the rebases on.
        enrol(b, d)
        d.remotes.pull()
        assert d.remotes.devices.epoch_keys("cloud").keys() == {3}
        assert titles(d) == titles(a) == titles(b) == {"kept", "after", "from b"}
        # A delete now: its key wrapped for B and D as the rebases' carried enrolments say, and
        # proved to them by A's log read from its rebase (its first entry carried there).
        [after] = [s.id for s in a.list() if s.title == "after"]
        a.delete(after)
        assert a.remotes.push().epoch == 4
        for v in (b, d):
            got = v.remotes.pull().counts()
            assert (got["epochs_taken"], got["erased"]) == (1, 1)
        assert titles(d) == titles(b) == {"kept", "from b"}
        # A delete whose head is still uploading when D pulls: pending, D's proof keeping what
        # it verified of each log, A's from its rebase (the enrolments it carries kept with it);
        # once the heads are there, the next pull proves the key from that prefix.
        bucket = store(server_env)
        before = {k for k, _ in bucket.list(f"{prefix}/d/{da.hex}/head/")}
        [from_b] = [s.id for s in a.list() if s.title == "from b"]
        a.delete(from_b)
        assert a.remotes.push().epoch == 5
        withheld = {k: bucket.get(k) for k, _ in bucket.list(f"{prefix}/d/{da.hex}/head/") if k not in before}
        for k in withheld:
            bucket.delete(k)
        got = d.remotes.pull().counts()
        assert (got["epochs_taken"], got["epochs_pending"]) == (0, 1)
        for k, data in withheld.items():
            bucket.put(k, data)
        got = d.remotes.pull().counts()
        assert (got["epochs_taken"], got["epochs_pending"], got["erased"]) == (1, 0, 1)
    finally:
        for v in (a, b, c, d):
            v.close()
