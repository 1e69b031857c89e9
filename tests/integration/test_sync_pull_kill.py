"""A pull SIGKILLed at chosen steps (issue 26; docs/sync.md, "Pull"): the next pull resumes and
leaves exactly the vault an uninterrupted pull leaves (the same sessions, byte for byte, forks
included), and the push after it sends the same thing: nothing applied twice, nothing lost,
nothing pulled sent back.

The kill points are chosen by wrapping a step in a child process (the n-th save, append,
push-cursor or pull-cursor replace), never by timing: the child kills itself with SIGKILL right
after the step returned, as a crash would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal.models import Session
from tests._infra import killpoint
from tests._infra.s3server import S3Server
from tests._infra.syncscenario import rclone_buckets, s3_server

pytestmark = pytest.mark.s3
__all__ = ["rclone_buckets", "s3_server"]  # the fixtures: one rclone server per module, a bucket per test

PASSPHRASE = "sync pull kill test passphrase"
PREFIX = "pullkill"

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from tests._infra.killpoint import kill_after
    from sessionseal import Vault
    from sessionseal._vault import _indexcache, _store, _syncapply

    path, where, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

    owner, name = {"save": (_store.SessionStore, "save"), "append": (_store.SessionStore, "append"),
                   "state": (_syncapply, "write_state"), "cursor": (_syncapply, "write_cursor"),
                   "named": (_indexcache.IndexCache, "put_many")}[where]
    kill_after(owner, name, n)
    with Vault.open(path, passphrase=os.environ["PASS"]) as v:
        v.remotes.pull()
    sys.exit(3)  # not killed: the point was never reached
    """
)


#: Ids in the order A's second push sends them (a push goes by id): the put of session 3, the
#: append to 0, the rename of 1, the append to 2 (a fork on B).
IDS = {3: 1, 0: 2, 1: 3, 2: 4}


def _session(i: int) -> Session:
    return Session.model_validate(
        {"id": str(uuid.UUID(int=IDS[i])), "title": f"s{i}", "messages": [{"role": "user", "content": f"turn {i}"}]}
    )


def _all(path: Path) -> dict[str, Any]:
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        return {str(s.id): orjson.loads(v.load_json(s.id)) for s in v.list(archived=None)}


@pytest.fixture
def setup(s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, S3Server]:
    """Device B, which pulled A's first push and pushed, then A's second push (an append, a
    rename, a new session, an append to a session B appended to too: a fork) waiting for B."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    url = f"s3://{s3_server.bucket}/{PREFIX}"
    with (
        Vault.init(tmp_path / "a", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as a,
        Vault.init(tmp_path / "b", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as b,
    ):
        for v in (a, b):
            v.remotes.add("cloud", url, endpoint=s3_server.endpoint)
        ids = [a.save(_session(i)) for i in range(3)]
        a.remotes.push()
        devices = a.remotes.devices
        b.remotes.devices.add_epoch_key(
            "cloud", 1, devices.epoch_key("cloud", 1), remote_id=devices.identity("cloud").remote_id
        )
        b.remotes.pull()
        b.remotes.push()
        a.append(ids[0], [{"role": "assistant", "content": "a's turn"}])
        a.rename(ids[1], "renamed on a")
        a.save(_session(3))
        a.append(ids[2], [{"role": "assistant", "content": "a's line"}])
        a.remotes.push()
        b.append(ids[2], [{"role": "assistant", "content": "b's line"}])
    reference = tmp_path / "reference"
    shutil.copytree(tmp_path / "b", reference)
    with Vault.open(reference, passphrase=PASSPHRASE) as v:
        result = v.remotes.pull()
        assert (result.put, result.appended, result.meta, result.forked) == (1, 1, 1, 1)
    return tmp_path / "b", reference, s3_server


POINTS = [
    # (step, n, whether the kill left a write's intent recorded)
    ("state", 1, True),  # the intent of the put recorded, the write not done
    ("save", 1, True),  # the new session saved, nothing recorded after it
    ("cursor", 1, True),  # the put marked as pushed, the pull cursor not advanced
    ("state", 2, False),  # the put recorded as applied
    ("append", 1, True),  # the append done, nothing recorded after it
    ("append", 2, True),  # the rename done (a metadata group), nothing recorded after it
    ("save", 2, True),  # the fork made, nothing recorded after it
]


@pytest.mark.parametrize(("where", "n", "intent"), POINTS, ids=[f"{p[0]}-{p[1]}" for p in POINTS])
def test_a_pull_killed_at_a_step_resumes_to_the_same_vault(
    setup: tuple[Path, Path, S3Server], where: str, n: int, intent: bool
) -> None:
    path, reference, server = setup
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), where, str(n)], env=env, cwd=killpoint.ROOT, check=False, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, f"the child was not killed at {where} #{n}"
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        resumed = v.remotes.pull()
        assert resumed.resumed == intent
        assert v.remotes.pull().counts()["applied"] == 0
    assert _all(path) == _all(reference)
    # The push after it sends B's own diverged turn only, as the reference's does.
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        pushed = v.remotes.push()
    assert (pushed.put, pushed.appended, pushed.meta) == (0, 1, 0)


@pytest.fixture
def fresh(s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, S3Server]:
    """Device B, which pushed a session of its own, and A's push of six sessions B does not
    have: B's pull applies them as one batch (one recorded intent, docs/spec/remote-v1.md,
    "The pull cursor")."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    url = f"s3://{s3_server.bucket}/{PREFIX}-batch"
    with (
        Vault.init(tmp_path / "a", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as a,
        Vault.init(tmp_path / "b", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as b,
    ):
        for v in (a, b):
            v.remotes.add("cloud", url, endpoint=s3_server.endpoint)
        a.save(_session(0))
        a.remotes.push()
        devices = a.remotes.devices
        b.remotes.devices.add_epoch_key(
            "cloud", 1, devices.epoch_key("cloud", 1), remote_id=devices.identity("cloud").remote_id
        )
        b.save(Session.model_validate({"title": "b's own", "messages": [{"role": "user", "content": "b"}]}))
        b.remotes.push()
        for i in range(6):
            a.save(Session.model_validate({"title": f"new {i}", "messages": [{"role": "user", "content": f"n{i}"}]}))
        a.remotes.push()
    reference = tmp_path / "reference"
    shutil.copytree(tmp_path / "b", reference)
    with Vault.open(reference, passphrase=PASSPHRASE) as v:
        assert v.remotes.pull().put == 7
    return tmp_path / "b", reference, s3_server


BATCH_POINTS = [
    # B's pull writes its cursor after its own entries (#1), after A's epoch entry (#2), with
    # the batch's intent (#3: A's seven puts), and after the batch (#4).
    ("state", 3, True),  # the batch's intent recorded, nothing saved
    ("save", 4, True),  # four of the batch's sessions written to temp files, none named yet
    ("named", 1, True),  # every file named and listed; no full-text record, mark or audit record
    ("cursor", 1, True),  # every session saved and marked as pushed, the pull cursor not advanced
    ("state", 4, False),  # the batch recorded as applied
]


@pytest.mark.parametrize(("where", "n", "intent"), BATCH_POINTS, ids=[f"{p[0]}-{p[1]}" for p in BATCH_POINTS])
def test_a_pull_killed_inside_a_batch_of_new_sessions_resumes_to_the_same_vault(
    fresh: tuple[Path, Path, S3Server], where: str, n: int, intent: bool
) -> None:
    path, reference, server = fresh
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), where, str(n)], env=env, cwd=killpoint.ROOT, check=False, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, f"the child was not killed at {where} #{n}"
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        resumed = v.remotes.pull()
        assert resumed.resumed == intent
        assert (resumed.forked, v.remotes.pull().counts()["applied"]) == (0, 0)
    assert _all(path) == _all(reference)
    # Whatever step the kill cut, each session the batch saved has one save record and its
    # full-text record: a resumed pull makes the bookkeeping a cut flush did not.
    assert _records(path) == _records(reference)
    with Vault.open(path, passphrase=PASSPHRASE) as v:  # nothing pulled is sent back as B's own
        pushed = v.remotes.push()
    assert (pushed.put, pushed.appended, pushed.meta) == (0, 0, 0)


def _records(path: Path) -> tuple[Counter[str], list[str]]:
    """The save records by session, and what verify finds (the full-text index's gaps included)."""
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        saves = Counter(str(r.get("session")) for r in v.audit_entries()[0] if r["action"] == "save")
        return saves, sorted(p.code for p in v.verify(read_data=True).problems)
