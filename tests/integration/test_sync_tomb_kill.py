"""Deletes through a remote, with the pusher and the puller SIGKILLed at chosen steps (issue 26;
docs/sync.md, "Deletes"), on a real S3 server (``rclone serve s3`` on 127.0.0.1).

A push that writes a tombstone, killed anywhere (the delete's epoch key kept, the tombstone
committed to the outbox, half sent, an object deleted and not the other), is finished by the
next push: one tombstone naming the erased sessions, this device's objects of them gone, and
nothing left to send.  A pull that applies it, killed anywhere (the intent recorded, unpushed
work kept as a new session, one session erased, an object deleted), is finished by the next
pull: the sessions erased, the unpushed work kept exactly once, the puller's objects of them
gone, and a pull after that applies nothing.

The kill points are chosen by wrapping a step in a child process, never by timing: the child
kills itself with SIGKILL right after the step returned, as a crash would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sessionseal import PassphraseProvider, Vault, _device_enroll, _remotelog
from sessionseal.errors import SessionNotFound
from tests._infra import killpoint, syncscenario
from tests._infra.s3server import S3Server

pytestmark = pytest.mark.s3

PASSPHRASE = "sync tombstone kill test passphrase"
PREFIX = "tombkill"

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from tests._infra.killpoint import kill_after
    from sessionseal import Vault, _s3
    from sessionseal._vault import _devices, _erasure, _store, _sync, _syncapply

    path, what, where, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    owner, name = {"put": (_s3.S3Store, "put"), "delete": (_s3.S3Store, "delete"),
                   "cursor": (_sync, "write_cursor"), "keys": (_devices.Devices, "add_epoch_key"),
                   "save": (_store.SessionStore, "save"), "erase": (_erasure.Erasure, "shred_files"),
                   "state": (_syncapply, "write_state")}[where]
    kill_after(owner, name, n)
    with Vault.open(path, passphrase=os.environ["PASS"]) as v:
        v.remotes.push() if what == "push" else v.remotes.pull()
    sys.exit(3)  # not killed: the point was never reached
    """
)


def _session(title: str) -> dict[str, Any]:
    return {"title": title, "messages": [{"role": "user", "content": f"text of {title}"}]}


def _device(v: Vault) -> uuid.UUID:
    return v.remotes.devices.identity("cloud").device_id


def _open(path: Path) -> Vault:
    return Vault.open(path, passphrase=PASSPHRASE)


@pytest.fixture(scope="module")
def module_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One ``rclone serve s3`` for the module: each test puts back the remote it starts from."""
    with syncscenario.module_server(tmp_path_factory) as server:
        yield server


def _build(server: S3Server, root: Path) -> tuple[str, ...]:
    """A (first device) with four sessions, B enrolled and having pulled them and appended to
    the first (pushed); A then deletes the first two."""
    paths = root / "a", root / "b"
    url = f"s3://{server.bucket}/{PREFIX}"
    with (
        Vault.init(paths[0], key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as a,
        Vault.init(paths[1], key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as b,
    ):
        for v in (a, b):
            v.remotes.add("cloud", url, endpoint=server.endpoint)
        ids = [a.save(_session(f"s{i}")) for i in range(4)]
        a.remotes.push()
        step = _device_enroll.request(b)
        _device_enroll.accept(a, None, _device(b).hex, step.pairing_code or "")
        _device_enroll.finish(b)
        b.remotes.pull()
        b.append(ids[0], [{"role": "assistant", "content": "pushed by b"}])
        b.remotes.push()
        for sid in ids[:2]:
            a.delete(sid)
    (root / "doomed").write_text(" ".join(str(sid) for sid in ids[:2]))
    return "a", "b"


@pytest.fixture(scope="module")
def built(module_s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> syncscenario.Prepared:
    return syncscenario.prepared(module_s3, tmp_path_factory, PREFIX, lambda root: _build(module_s3, root))


@pytest.fixture
def s3_server(built: syncscenario.Prepared) -> S3Server:
    """The module's server (this module's tests start from :func:`built`'s remote)."""
    return built.server


@pytest.fixture
def setup(built: syncscenario.Prepared, tmp_path: Path, server_env: S3Server) -> tuple[Path, Path, list[uuid.UUID]]:
    """A copy of :func:`_build`'s vaults, the remote put back as it built it.  Yields both
    paths and the doomed ids."""
    paths = built.fresh(tmp_path)
    doomed = [uuid.UUID(s) for s in (built.template / "doomed").read_text().split()]
    return paths["a"], paths["b"], doomed


def _kill_at(path: Path, server: S3Server, what: str, where: str, n: int) -> None:
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    args = [sys.executable, "-c", CHILD, str(path), what, where, str(n)]
    done = subprocess.run(args, env=env, cwd=killpoint.ROOT, check=False, timeout=300)
    assert done.returncode == -signal.SIGKILL, f"the child was not killed at {where} #{n}"


def _log(v: Vault, server: S3Server) -> list[dict[str, Any]]:
    device = _device(v)
    base = server.root / server.bucket / PREFIX / "d" / device.hex / "log"
    objects = {int(p.name, 16): p.read_bytes() for p in base.iterdir()}
    rid = v.remotes.devices.identity("cloud").remote_id
    assert rid is not None
    held = v.remotes.devices.epoch_keys("cloud")
    return [o.entry for o in _remotelog.read_log(objects, held, rid, device).entries]


def _objects(server: S3Server, device: uuid.UUID) -> set[str]:
    base = server.root / server.bucket / PREFIX / "d" / device.hex / "o"
    return {p.name for p in base.iterdir()} if base.is_dir() else set()


def _named(log: list[dict[str, Any]], sessions: list[uuid.UUID]) -> set[str]:
    want = {str(s) for s in sessions}
    return {e["object"] for e in log if e.get("session") in want and "object" in e}


PUSH_POINTS = [
    ("keys", 1),  # the delete's epoch key kept, nothing committed
    ("cursor", 1),  # the tombstone committed to the outbox, nothing sent
    ("put", 2),  # the key object and the epoch entry sent, the tombstone not
    ("cursor", 2),  # all sent, no object deleted yet
    ("delete", 1),  # one object deleted, the other not, the record not forgotten
]


@pytest.mark.parametrize(("where", "n"), PUSH_POINTS, ids=[f"{w}-{n}" for w, n in PUSH_POINTS])
def test_a_push_killed_while_writing_a_tombstone_is_finished_by_the_next(
    setup: tuple[Path, Path, list[uuid.UUID]], s3_server: S3Server, where: str, n: int
) -> None:
    a_path, _, doomed = setup
    with _open(a_path) as a:
        named = _named(_log(a, s3_server), doomed)
        assert len(named) == 2 and named <= _objects(s3_server, _device(a))
    _kill_at(a_path, s3_server, "push", where, n)
    with _open(a_path) as a:
        a.remotes.push()
        log = _log(a, s3_server)
        tombs = [e for e in log if e["kind"] == "tombstone"]
        assert len(tombs) == 1 and sorted(tombs[0]["sessions"]) == sorted(str(s) for s in doomed)
        assert [e["reason"] for e in log if e["kind"] == "epoch"] == ["first", "delete"]
        assert not named & _objects(s3_server, _device(a))
        assert len(_objects(s3_server, _device(a))) == 4  # the live sessions' objects stay, and their rebase's
        again = a.remotes.push()
        assert (again.tombstoned, again.entries, again.objects_deleted) == (0, 0, 0)


PULL_POINTS = [
    ("state", 1),  # the intent to keep the unpushed work recorded, nothing written
    ("save", 1),  # the unpushed work kept as a new session, the session not erased
    ("erase", 1),  # both erased in one rotation, the first's files overwritten, the second's not
    ("delete", 1),  # both erased, the puller's own object deleted, the cursor not advanced
]


@pytest.mark.parametrize(("where", "n"), PULL_POINTS, ids=[f"{w}-{n}" for w, n in PULL_POINTS])
def test_a_pull_killed_while_applying_a_tombstone_is_finished_by_the_next(
    setup: tuple[Path, Path, list[uuid.UUID]], s3_server: S3Server, where: str, n: int
) -> None:
    a_path, b_path, doomed = setup
    with _open(a_path) as a:
        a.remotes.push()
        with _open(b_path) as b:
            b.append(doomed[0], [{"role": "assistant", "content": "not pushed yet"}])
            b_objects = _named(_log(b, s3_server), doomed)
            assert len(b_objects) == 1
    _kill_at(b_path, s3_server, "pull", where, n)
    with _open(b_path) as b:
        b.remotes.pull()
        for sid in doomed:
            with pytest.raises(SessionNotFound):
                b.load(sid)
        titles = sorted(s.title or "" for s in b.list())
        assert len(titles) == 3 and titles[2:] == ["s3"] and titles[1] == "s2"
        [kept] = [s for s in b.list() if s.title not in {"s2", "s3"}]
        doc = orjson.loads(b.load_json(kept.id))
        assert doc["messages"][-1]["content"][0]["text"] == "not pushed yet"
        assert not b_objects & _objects(s3_server, _device(b))
        assert b.remotes.pull().counts()["applied"] == 0
        assert b.remotes.push().put == 1  # the kept work, once
