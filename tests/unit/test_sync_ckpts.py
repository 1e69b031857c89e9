"""Checkpoints through a remote (issue 26; docs/spec/remote-v1.md, "Checkpoints"; docs/sync.md),
against a real S3 server (``rclone serve s3`` on 127.0.0.1) with two enrolled devices, each with
its own vault and key store.

The spec: a push sends each checkpoint made since the last one as its document (a content
object) then a ``checkpoint.put`` entry, after its session's own entries in the same batch, with
the id UUIDv5(namespace, "<session>/checkpoint/<device>/<seq>"); a checkpoint deleted after it
was sent goes out as ``checkpoint.delete``.  A pull adds it through the vault's checkpoint write
(same document, name, reason and time), once whatever the pulls; removes it on a delete, and
never a checkpoint of its own; never sends it back.  A session erased takes its checkpoints with
it, on every device and on the server.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sessionseal import Vault, _fs, _remotelog
from sessionseal._vault._syncckpt import SETTLED_NS, checkpoint_id
from tests._infra import syncvaults as sv
from tests._infra.s3server import S3Server, start_s3_server
from tests.memkeyring import MemoryKeyring

pytestmark = pytest.mark.s3

PREFIX = "team/ckpts"
NAME = "before the zanzibar refactor"


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Vault, Vault, S3Server]]:
    """A (the remote's first device) and B, enrolled by A: made once for the module (an
    enrolment costs seconds), each test on a session of its own."""
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    root = tmp_path_factory.mktemp("vaults")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in server.env().items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        a = sv.vault(root / "a", server, MemoryKeyring(), PREFIX)
        b = sv.vault(root / "b", server, MemoryKeyring(), PREFIX)
        try:
            a.remotes.push()
            sv.enrol(a, b)
            yield a, b, server
        finally:
            a.close()
            b.close()
            server.stop()


@pytest.fixture
def two(devices: tuple[Vault, Vault, S3Server]) -> tuple[Vault, Vault, uuid.UUID]:
    """A and B, and a session of A's that B pulled."""
    a, b, _ = devices
    sid = a.save({"title": "work", "messages": [{"role": "user", "content": "first turn"}]})
    a.remotes.push()
    assert b.remotes.pull().put == 1
    return a, b, sid


@pytest.fixture
def s3_server(devices: tuple[Vault, Vault, S3Server]) -> S3Server:
    return devices[2]


def _log(v: Vault, server: S3Server) -> list[tuple[int, dict[str, Any]]]:
    device = sv.device(v)
    base = server.root / server.bucket / PREFIX / "d" / device.hex / "log"
    objects = {int(p.name, 16): p.read_bytes() for p in base.iterdir()}
    rid = v.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    held = v.remotes.devices.epoch_keys("cloud")
    return [(o.seq, o.entry) for o in _remotelog.read_log(objects, held, rid, device).entries]


def _objects(server: S3Server, device: uuid.UUID) -> set[str]:
    base = server.root / server.bucket / PREFIX / "d" / device.hex / "o"
    return {p.name for p in base.iterdir()} if base.is_dir() else set()


def _body(v: Vault, sid: uuid.UUID, ref: str | int) -> bytes:
    return v.parts.checkpoints.body(v.parts.keys.file_name(sid), sid, ref)[1]


def _names(v: Vault, sid: uuid.UUID) -> list[str]:
    return [c.name for c in v.checkpoints(sid)]


def test_a_checkpoint_reaches_the_other_device_once(two: tuple[Vault, Vault, uuid.UUID], s3_server: S3Server) -> None:
    a, b, sid = two
    made = a.checkpoint(sid, NAME)
    a.append(sid, [{"role": "assistant", "content": "after the checkpoint"}])
    dry = a.remotes.push(dry_run=True)
    assert (dry.checkpoints, dry.appended) == (1, 1)
    pushed = a.remotes.push()
    assert (pushed.checkpoints, pushed.checkpoints_deleted, pushed.appended) == (1, 0, 1)
    # After the session's own entry, in the same batch; its id names its own seq.
    (seq_a, append), (seq, put) = _log(a, s3_server)[-2:]
    assert (append["kind"], put["kind"], seq) == ("session.append", "checkpoint.put", seq_a + 1)
    assert put["checkpoint"] == str(checkpoint_id(sid, sv.device(a), seq))
    assert (put["name"], put["reason"], put["created_at"]) == (NAME, "manual", made.created_at)
    # The name rides inside the sealed entry: nothing on the server reads it.
    for path in (s3_server.root / s3_server.bucket).rglob("*"):
        if path.is_file():
            assert b"zanzibar" not in path.read_bytes()
    assert a.remotes.push().entries == 0  # sent once

    assert b.remotes.pull(dry_run=True).counts()["checkpoints"] == 1
    pulled = b.remotes.pull()
    assert (pulled.checkpoints, pulled.appended) == (1, 1)
    [cp] = b.checkpoints(sid)
    assert (cp.name, cp.reason, cp.created_at, cp.message_count) == (NAME, "manual", made.created_at, 1)
    assert _body(b, sid, NAME) == _body(a, sid, NAME)
    assert any(r.get("action") == "checkpoint.create" for r in b.audit_records())
    again = b.remotes.pull()
    assert (again.entries, again.checkpoints) == (0, 0)
    assert len(b.checkpoints(sid)) == 1
    # A pulled checkpoint is another device's: B never sends it, nor its local delete.
    assert b.remotes.push().checkpoints == 0
    b.delete_checkpoint(sid, NAME)
    assert b.remotes.push().entries == 0
    assert a.remotes.pull().checkpoints == 0 and _names(a, sid) == [NAME]
    # Numbers 1 and 2 both made again: the same numbers, other checkpoints.
    a.checkpoint(sid, "two")
    assert a.remotes.push().checkpoints == 1 and b.remotes.pull().checkpoints == 1
    for ref in (2, 1):
        a.delete_checkpoint(sid, ref)
    a.checkpoint(sid, "one again")
    a.checkpoint(sid, "two again")
    pushed = a.remotes.push()
    assert (pushed.checkpoints_deleted, pushed.checkpoints) == (2, 2)
    pulled = b.remotes.pull()
    assert (pulled.checkpoints_deleted, pulled.checkpoints) == (1, 2)  # B had deleted its copy of the first
    assert _names(b, sid) == ["one again", "two again"]


def test_a_delete_reaches_the_other_device_and_never_a_local_checkpoint(
    two: tuple[Vault, Vault, uuid.UUID], s3_server: S3Server
) -> None:
    a, b, sid = two
    a.checkpoint(sid, "shared")
    a.remotes.push()
    b.remotes.pull()
    b.checkpoint(sid, "later")  # B's own, under number 2 there
    # A deletes its checkpoint 1 and makes another, which takes number 1 again: another checkpoint.
    a.delete_checkpoint(sid, "shared")
    assert a.checkpoint(sid, "later").number == 1
    pushed = a.remotes.push()
    assert (pushed.checkpoints_deleted, pushed.checkpoints) == (1, 1)
    kinds = [e["kind"] for _, e in _log(a, s3_server)[-2:]]
    assert kinds == ["checkpoint.delete", "checkpoint.put"]

    pulled = b.remotes.pull()
    assert (pulled.checkpoints_deleted, pulled.checkpoints) == (1, 1)
    # B's own "later" stays; A's, of the same name, is added beside it under a free name.
    assert _names(b, sid) == ["later", "later.2"]
    assert [c.reason for c in b.checkpoints(sid)] == ["manual", "manual"]
    assert b.remotes.push().checkpoints == 1  # B's own goes out; A's is A's
    assert a.remotes.pull().checkpoints == 1
    assert sorted(_names(a, sid)) == ["later", "later.2"]
    # A delete from A naming B's own checkpoint (an id A never put) removes nothing on B.
    [(_, own)] = [(q, e) for q, e in _log(b, s3_server) if e["kind"] == "checkpoint.put"][-1:]
    forged = {"kind": "checkpoint.delete", "session": str(sid), "checkpoint": own["checkpoint"]}
    a.parts.sync.commit_entries(a.parts.sync.pick("cloud"), [forged], [])
    refused = b.remotes.pull()
    assert (refused.checkpoints_deleted, refused.skipped) == (0, 1)
    assert _names(b, sid) == ["later", "later.2"]


def test_a_checkpoint_of_a_deleted_session_is_gone_everywhere(
    two: tuple[Vault, Vault, uuid.UUID], s3_server: S3Server
) -> None:
    a, b, sid = two
    a.checkpoint(sid, "kept until the delete")
    a.remotes.push()
    named = {e["object"] for _, e in _log(a, s3_server) if e.get("session") == str(sid) and "object" in e}
    assert len(named) == 2 and named <= _objects(s3_server, sv.device(a))
    assert b.remotes.pull().checkpoints == 1
    a.checkpoint(sid, "never sent")
    a.delete(sid)
    pushed = a.remotes.push()
    assert (pushed.tombstoned, pushed.checkpoints, pushed.objects_deleted) == (1, 0, 2)
    assert not named & _objects(s3_server, sv.device(a))
    assert not any(e["kind"].startswith("checkpoint") for _, e in _log(a, s3_server)[-2:])

    pulled = b.remotes.pull()
    assert (pulled.erased, pulled.checkpoints) == (1, 0)
    assert b.parts.checkpoints.files(b.parts.keys.file_name(sid)) == []


def test_a_push_reads_no_checkpoint_header_while_checkpoints_stay_as_they_were(
    two: tuple[Vault, Vault, uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint makes no new version of its session, so a push looks at the checkpoint
    files; once a push found them all as its cursor says, and ``checkpoints/`` has not changed
    for longer than a file system's timestamp tick, the next push reads no header at all; a
    checkpoint made or replaced since (the directory's times move) is found as before.
    (Counted in checkpoint files opened, never timed; the wait is for the directory's times to
    settle, see _syncckpt._stamp.)"""
    a, b, sid = two
    a.checkpoint(sid, "one")
    assert a.remotes.push().checkpoints == 1
    opened: list[str] = []
    real = _fs.Dir.reader

    def spy(self: _fs.Dir, name: str) -> Any:
        if self.path.name == "checkpoints":
            opened.append(name)
        return real(self, name)

    monkeypatch.setattr(_fs.Dir, "reader", spy)
    settled = os.stat(a.path / "checkpoints").st_ctime_ns + SETTLED_NS
    time.sleep(max(0.0, (settled - time.time_ns()) / 1e9) + 0.2)
    assert a.remotes.push().entries == 0 and opened  # found as the cursor says: stamped
    opened.clear()
    for _ in range(2):
        assert a.remotes.push().entries == 0
        assert opened == []
    # Number 1 deleted and made again right away: the directory's times moved, so it is looked at.
    a.delete_checkpoint(sid, "one")
    assert a.checkpoint(sid, "one again").number == 1
    pushed = a.remotes.push()
    assert (pushed.checkpoints_deleted, pushed.checkpoints) == (1, 1)
    opened.clear()
    assert a.remotes.push().entries == 0 and opened  # not settled yet: every header read, as before
    assert b.remotes.pull().checkpoints_deleted == 1
    assert _names(b, sid) == ["one again"]
