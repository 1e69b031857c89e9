"""A rebase carries its log's checkpoints (issue 26; docs/spec/remote-v1.md, "Rebase and
retirement" and "Checkpoints"; src/sessionseal/_vault/_syncckpt.py), against ``rclone serve s3``.

The spec: a device that joins after a retirement reads each log from its ``rebase`` (it holds no
key of the entries before it), so the ``checkpoint.put`` entries pushed before the rebase are
not there for it.  The rebase restates them: every checkpoint its writer put of a session the
rebase restates and has not deleted, with the same id, name, reason and time, its document
sealed again under the rebase's epoch (the old objects go with the old epoch).  The late joiner
gets them, once each; a ``checkpoint.delete`` after the rebase finds the one the rebase put and
removes it there, as on a device that read the put itself.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from sessionseal import Vault, _remotelog
from sessionseal.errors import RemoteError
from tests._infra.s3server import S3Server
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)
from tests._infra.syncvaults import device, enrol, save, vault
from tests.memkeyring import MemoryKeyring

PREFIX = "rebase-ckpts"


def _log(v: Vault, server: S3Server) -> list[_remotelog.Opened]:
    return _log_of(v, server, PREFIX)


def _log_of(v: Vault, server: S3Server, prefix: str) -> list[_remotelog.Opened]:
    base = server.root / server.bucket / prefix / "d" / device(v).hex / "log"
    objects = {int(p.name, 16): p.read_bytes() for p in base.iterdir()}
    rid = v.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    held = v.remotes.devices.epoch_keys("cloud")
    start = _remotelog.read_start(objects, held)
    return list(_remotelog.read_log(objects, held, rid, device(v), start=start).entries)


def _ckpts(v: Vault, sid: uuid.UUID) -> dict[str, bytes]:
    fname = v.parts.keys.file_name(sid)
    return {c.name: v.parts.checkpoints.body(fname, sid, c.name)[1] for c in v.checkpoints(sid)}


def _puts(entries: list[_remotelog.Opened]) -> dict[str, dict[str, Any]]:
    return {o.entry["checkpoint"]: o.entry for o in entries if o.entry.get("kind") == "checkpoint.put"}


def test_a_late_joiner_gets_the_checkpoints_pushed_before_the_retirement_and_their_deletes(
    tmp_path: Path, server_env: S3Server
) -> None:
    a, b, d = (vault(tmp_path / n, server_env, MemoryKeyring(), PREFIX) for n in "abd")
    try:
        sid = a.save({"title": "work", "messages": [{"role": "user", "content": "first turn"}]})
        save(a, "doomed")
        a.checkpoint(sid, "one")
        a.append(sid, [{"role": "assistant", "content": "second turn"}])
        a.checkpoint(sid, "two")
        a.remotes.push()
        put = _puts(_log(a, server_env))
        assert len(put) == 2
        enrol(a, b)
        b.remotes.pull()
        b.checkpoint(sid, "b's own")  # B's: B's log, never A's rebase
        # A's delete makes epoch 2; A's rebase restates its two checkpoints (not B's).
        [doomed] = [s.id for s in a.list() if s.title == "doomed"]
        a.delete(doomed)
        assert a.remotes.push().rebased == 1
        [rebase] = [o.entry for o in _log(a, server_env) if o.entry.get("kind") == "rebase"]
        carried = {r["checkpoint"]: r for r in rebase["checkpoints"]}
        assert set(carried) == set(put)
        for cid, r in carried.items():
            same = ("session", "name", "reason", "created_at")
            assert {k: r[k] for k in same} == {k: put[cid][k] for k in same}
            assert r["object"] != put[cid]["object"]  # sealed again, under epoch 2
        # B rebases too; then A retires epoch 1 (its old objects go: the rebase's stay).
        b.remotes.pull()
        b.remotes.push()
        assert a.remotes.pull().counts()["epochs_held"] == [2]
        # D joins now: it holds epoch 2 only, reads A's log from its rebase, gets both.
        enrol(a, d)
        pulled = d.remotes.pull()
        assert d.remotes.devices.epoch_keys("cloud").keys() == {2}
        mine = _ckpts(a, sid)
        assert _ckpts(d, sid) == {**mine, "b's own": _ckpts(b, sid)["b's own"]}
        assert pulled.checkpoints == 3
        assert d.remotes.pull().checkpoints == 0  # once each
        # A deletes "one": D removes it, as B does (B read the put itself); "two" stays.
        a.delete_checkpoint(sid, "one")  # not the highest: its number is not taken again
        assert a.remotes.push().checkpoints_deleted == 1
        for v in (b, d):
            assert v.remotes.pull().checkpoints_deleted == 1
            assert set(_ckpts(v, sid)) == {"two", "b's own"}
            assert _ckpts(v, sid)["two"] == mine["two"]
    finally:
        for v in (a, b, d):
            v.close()


def test_a_rebase_whose_checkpoints_are_out_of_shape_is_refused_in_one_line(
    tmp_path: Path, server_env: S3Server
) -> None:
    """An enrolled device's rebase restating something that is no checkpoint: the pull that
    reads the log from it says the entry is malformed (exit 19) and adds no checkpoint."""
    a, d = (vault(tmp_path / n, server_env, MemoryKeyring(), PREFIX + "-bad") for n in "ad")
    try:
        sid = a.save({"title": "work", "messages": [{"role": "user", "content": "first turn"}]})
        a.remotes.push()
        [doc] = [o.entry for o in _log_of(a, server_env, PREFIX + "-bad") if o.entry.get("kind") == "session.put"]
        record = {k: doc[k] for k in ("session", "object", "size", "meta")} | {"events": 0}
        bad = {"kind": "rebase", "epoch": 1, "sessions": [record], "carried": [], "checkpoints": [str(sid)]}
        a.parts.sync.commit_entries(a.remotes.devices.remote("cloud"), [bad], [])
        enrol(a, d)
        with pytest.raises(RemoteError, match="is a malformed rebase") as refused:
            d.remotes.pull()
        assert refused.value.exit_code == 19
        assert d.checkpoints(sid) == []
    finally:
        for v in (a, d):
            v.close()
