"""A pull SIGKILLed at chosen steps (issue 26; docs/sync.md, "Pull"): the next pull resumes and
leaves exactly the vault an uninterrupted pull leaves (the same sessions, byte for byte, forks
included, each at the same version), and the push after it sends the same thing: nothing
applied twice, nothing lost, nothing pulled sent back.

The kill points are chosen by wrapping a step in a child process (the n-th save, append,
push-cursor or pull-cursor replace), never by timing: the child kills itself with SIGKILL right
after the step returned, as a crash would.

Each scenario is built once per module (:func:`tests._infra.syncscenario.prepared`) and each
test kills a pull in a file copy of its device B: a copy's files have new inodes, and a vault
restored from a copy appends where the original would (docs/sync.md, "Backups"), so the
uninterrupted pull's result, taken once in another copy, is every test's reference.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal.models import Session
from tests._infra import killpoint, syncscenario
from tests._infra.s3server import S3Server
from tests._infra.syncscenario import Buckets, rclone_buckets

pytestmark = pytest.mark.s3
__all__ = ["rclone_buckets"]  # the fixture: one rclone server per module, a bucket per scenario

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


def _generations(path: Path) -> dict[str, int]:
    """Each session's container generation: a version rewritten again (a second save, a
    compaction) shows here even when its text is the same."""
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        return {str(s.id): s.generation for s in v.list(archived=None)}


def _records(path: Path) -> tuple[Counter[str], list[str]]:
    """The save records by session, and what verify finds (the full-text index's gaps included)."""
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        saves = Counter(str(r.get("session")) for r in v.audit_entries()[0] if r["action"] == "save")
        return saves, sorted(p.code for p in v.verify(read_data=True).problems)


def _two(server: S3Server, root: Path, prefix: str) -> tuple[Vault, Vault]:
    """A (the remote's first device) and B, holding A's epoch key, both with the remote."""
    a = Vault.init(root / "a", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14))
    b = Vault.init(root / "b", key_provider=PassphraseProvider(PASSPHRASE, log2_n=14))
    for v in (a, b):
        v.remotes.add("cloud", f"s3://{server.bucket}/{prefix}", endpoint=server.endpoint)
    return a, b


def _enrol(a: Vault, b: Vault) -> None:
    devices = a.remotes.devices
    b.remotes.devices.add_epoch_key(
        "cloud", 1, devices.epoch_key("cloud", 1), remote_id=devices.identity("cloud").remote_id
    )


def _build_appends(server: S3Server, root: Path) -> tuple[str, ...]:
    """Device B, which pulled A's first push and pushed, then A's second push (an append, a
    rename, a new session, an append to a session B appended to too: a fork) waiting for B."""
    a, b = _two(server, root, PREFIX)
    with a, b:
        ids = [a.save(_session(i)) for i in range(3)]
        a.remotes.push()
        _enrol(a, b)
        b.remotes.pull()
        b.remotes.push()
        a.append(ids[0], [{"role": "assistant", "content": "a's turn"}])
        a.rename(ids[1], "renamed on a")
        a.save(_session(3))
        a.append(ids[2], [{"role": "assistant", "content": "a's line"}])
        a.remotes.push()
        b.append(ids[2], [{"role": "assistant", "content": "b's line"}])
    return ("b",)


def _build_batch(server: S3Server, root: Path) -> tuple[str, ...]:
    """Device B, which pushed a session of its own, and A's push of six sessions B does not
    have: B's pull applies them as one batch (one recorded intent, docs/spec/remote-v1.md,
    "The pull cursor")."""
    a, b = _two(server, root, f"{PREFIX}-batch")
    with a, b:
        a.save(_session(0))
        a.remotes.push()
        _enrol(a, b)
        b.save(Session.model_validate({"title": "b's own", "messages": [{"role": "user", "content": "b"}]}))
        b.remotes.push()
        for i in range(6):
            a.save(Session.model_validate({"title": f"new {i}", "messages": [{"role": "user", "content": f"n{i}"}]}))
        a.remotes.push()
    return ("b",)


@dataclass(frozen=True)
class Scenario:
    """A scenario as built (B's directory, the remote's objects), and what B's uninterrupted
    pull of it leaves: every session as stored, each one's generation, the save records and
    verify's findings (:func:`_records`)."""

    built: syncscenario.Prepared
    pulled: dict[str, Any]
    generations: dict[str, int]
    records: tuple[Counter[str], list[str]]

    def fresh(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        """A copy of B in *tmp_path*, the remote put back as built, its credentials set."""
        for name, value in self.built.server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        return self.built.fresh(tmp_path)["b"]


def _scenario(
    buckets: Buckets,
    factory: pytest.TempPathFactory,
    prefix: str,
    build: Callable[[S3Server, Path], tuple[str, ...]],
    counts: tuple[int, int, int, int],
) -> Scenario:
    """*build* run once (on a bucket of its own), and B's uninterrupted pull of it, in a copy,
    applying *counts* (put, appended, meta, forked)."""
    server = buckets.bucket()
    built = syncscenario.prepared(server, factory, prefix, lambda root: build(server, root))
    with pytest.MonkeyPatch.context() as mp:
        reference = Scenario(built, {}, {}, (Counter(), [])).fresh(factory.mktemp("reference"), mp)
        with Vault.open(reference, passphrase=PASSPHRASE) as v:
            result = v.remotes.pull()
            assert (result.put, result.appended, result.meta, result.forked) == counts
    return Scenario(built, _all(reference), _generations(reference), _records(reference))


@pytest.fixture(scope="module")
def appends(rclone_buckets: Buckets, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """:func:`_build_appends`'s scenario: B's pull puts one session, appends to one, renames one
    and forks one."""
    return _scenario(rclone_buckets, tmp_path_factory, PREFIX, _build_appends, (1, 1, 1, 1))


@pytest.fixture(scope="module")
def batch(rclone_buckets: Buckets, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """:func:`_build_batch`'s scenario: B's pull puts A's seven sessions as one batch."""
    return _scenario(rclone_buckets, tmp_path_factory, f"{PREFIX}-batch", _build_batch, (7, 0, 0, 0))


@pytest.fixture
def setup(appends: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Scenario]:
    """A copy of :func:`appends`'s B (the remote put back as built), and the scenario."""
    return appends.fresh(tmp_path, monkeypatch), appends


@pytest.fixture
def fresh(batch: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Scenario]:
    """A copy of :func:`batch`'s B (the remote put back as built), and the scenario."""
    return batch.fresh(tmp_path, monkeypatch), batch


def kill_at(path: Path, server: S3Server, where: str, n: int) -> None:
    """Run :data:`CHILD`'s pull in *path*, killed after the *n*-th call of *where*."""
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), where, str(n)], env=env, cwd=killpoint.ROOT, check=False, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, f"the child was not killed at {where} #{n}"


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
    setup: tuple[Path, Scenario], where: str, n: int, intent: bool
) -> None:
    path, scenario = setup
    kill_at(path, scenario.built.server, where, n)
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        resumed = v.remotes.pull()
        assert resumed.resumed == intent
        assert v.remotes.pull().counts()["applied"] == 0
    # The same sessions, forks included, each at the same version: nothing forked or rewritten twice.
    assert (_all(path), _generations(path)) == (scenario.pulled, scenario.generations)
    # The push after it sends B's own diverged turn only, as the reference's does.
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        pushed = v.remotes.push()
    assert (pushed.put, pushed.appended, pushed.meta) == (0, 1, 0)


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
    fresh: tuple[Path, Scenario], where: str, n: int, intent: bool
) -> None:
    path, batch = fresh
    kill_at(path, batch.built.server, where, n)
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        resumed = v.remotes.pull()
        assert resumed.resumed == intent
        assert (resumed.forked, v.remotes.pull().counts()["applied"]) == (0, 0)
    assert (_all(path), _generations(path)) == (batch.pulled, batch.generations)
    # Whatever step the kill cut, each session the batch saved has one save record and its
    # full-text record: a resumed pull makes the bookkeeping a cut flush did not.
    assert _records(path) == batch.records
    with Vault.open(path, passphrase=PASSPHRASE) as v:  # nothing pulled is sent back as B's own
        pushed = v.remotes.push()
    assert (pushed.put, pushed.appended, pushed.meta) == (0, 0, 0)
