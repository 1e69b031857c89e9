"""A pusher SIGKILLed at chosen steps (issue 26; docs/sync.md, "Push"): the next push resumes
and the device's log on the real S3 server (``rclone serve s3``) reads as one valid chain, with
every session in it exactly once, nothing lost and nothing sent twice under one name.  On moto
(which honours ``If-None-Match``) the resent names meet a 412 and are read back and compared.

The kill points are chosen by wrapping the step in a child process (the n-th PUT, the n-th
replace of the cursor, the making of the keys), never by timing: the child kills itself with
SIGKILL right after the step returned, as a crash or an OOM kill would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal.models import Session
from tests._infra import killpoint
from tests._infra.s3server import S3Server, both_servers
from tests._infra.synclog import read_pushed, server_files
from tests._infra.syncscenario import rclone_buckets, s3_server
from tests.integration._cli import sessionseal

__all__ = ["rclone_buckets", "s3_server"]  # the fixtures: one rclone server per module, a bucket per test

PASSPHRASE = "sync kill test passphrase"
PREFIX = "kill"
SESSIONS = 5

#: The child: a push of batches of two sessions, killed right after the n-th call of one step.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from tests._infra.killpoint import kill_after
    from sessionseal import Vault, _s3
    from sessionseal._vault import _devices, _sync

    path, where, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    _sync.BATCH_SESSIONS = 2

    owner, name = {"put": (_s3.S3Store, "put"), "cursor": (_sync, "write_cursor"),
                   "keys": (_devices.Devices, "start_remote")}[where]
    kill_after(owner, name, n)
    with Vault.open(path, passphrase=os.environ["PASS"]) as v:
        v.remotes.push()
    sys.exit(3)  # not killed: the point was never reached
    """
)


def _session(i: int) -> Session:
    return Session.model_validate({"title": f"s{i}", "messages": [{"role": "user", "content": f"turn {i} " * 40}]})


@pytest.fixture
def setup(s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, S3Server]:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        v.remotes.add("cloud", f"s3://{s3_server.bucket}/{PREFIX}", endpoint=s3_server.endpoint)
        for i in range(SESSIONS):
            v.save(_session(i))
    return path, s3_server


def _kill_at(path: Path, server: S3Server, where: str, n: int) -> None:
    env = {**os.environ, **server.env(), "PASS": PASSPHRASE}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), where, str(n)], env=env, cwd=killpoint.ROOT, check=False, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, f"the child was not killed at {where} #{n}"


# The first push of five sessions in batches of two: its first commit's outbox (the device
# record, the key object, the epoch entry, its head: PUTs 1-4); two objects (5, 6); the batch's
# outbox (two entries, a head: 7-9); and so on.  Cursor replaces: 1 and 2 for the first commit
# (written, cleared), 3 and 4 for the first batch.
POINTS = [
    # (step, n, names the resumed push sends again from the outbox, objects nothing names)
    ("keys", 1, 0, 0),  # the keys made, nothing on the remote, no cursor
    ("put", 1, 4, 0),  # the device record sent, the rest of the outbox not
    ("put", 4, 4, 0),  # the first outbox sent, the cursor not cleared
    ("put", 5, 0, 1),  # an object sent, its entry never committed: sent again under a new name
    ("put", 8, 3, 0),  # mid-outbox of a batch
    ("cursor", 1, 4, 0),  # the first commit recorded, nothing sent
    ("cursor", 3, 3, 0),  # a batch recorded, its entries not sent
    ("cursor", 4, 0, 0),  # a batch sent and cleared
]


#: On moto, which honours If-None-Match, the points whose resend meets names already written
#: (412, then read back and compared): the record, a whole outbox, half a batch's.
MOTO_POINTS = {("put", 1), ("put", 4), ("put", 8)}
CASES = [("rclone", *p) for p in POINTS] + [("moto", *p) for p in POINTS if p[:2] in MOTO_POINTS]


@pytest.mark.parametrize(
    ("s3_backend", "where", "n", "resent", "orphans"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES]
)
def test_a_push_killed_at_a_step_resumes_to_one_valid_chain(
    setup: tuple[Path, S3Server], where: str, n: int, resent: int, orphans: int
) -> None:
    path, server = setup
    _kill_at(path, server, where, n)
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        result = v.remotes.push()
        assert result.resent == resent
        ident = v.remotes.devices.identity("cloud")
        ids = {str(s.id) for s in v.list()}
        pushed = read_pushed(server, PREFIX, ident.device_id, ident.keys)
        puts = Counter(e["session"] for e in pushed.entries if e["kind"] == "session.put")
        assert puts == Counter(dict.fromkeys(ids, 1)), "every session exactly once"
        assert pushed.kinds().count("epoch") == 1
        for e in pushed.entries:
            if e["kind"] == "session.put":
                assert pushed.object(e["object"]) == v.load_json(e["session"])
        assert result.seq == pushed.head.seq == len(pushed.entries)
        named = {e["object"] for e in pushed.entries if "object" in e}
        assert len(pushed.names("o") - named) == orphans
        # Nothing left over: a push now sends nothing, and an appended turn goes out as one segment.
        files = server_files(server)
        assert v.remotes.push().bytes == 0 and server_files(server) == files
        sid = next(iter(ids))
        v.append(sid, [{"role": "assistant", "content": "after the crash"}])
        assert v.remotes.push().appended == 1
        last = read_pushed(server, PREFIX, ident.device_id, ident.keys).entries[-1]
        assert last["kind"] == "session.append" and last["session"] == sid and last["base"] == 0


@both_servers
def test_a_first_push_whose_record_was_lost_keeps_the_key_object_it_sent(setup: tuple[Path, S3Server]) -> None:
    # Killed after the device record and the epoch key object went out, then the vault's record
    # of the push is lost (a restored backup): the next push must not write that name again with
    # other bytes (the wrap is random); it checks the object holds its key and names it.
    path, server = setup
    _kill_at(path, server, "put", 2)
    [cursor] = (path / "sync").iterdir()
    cursor.unlink()
    [key_file] = [k for k in server.objects() if "/keys/" in k]
    sent = server.read(key_file)
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        assert v.remotes.push().first
        ident = v.remotes.devices.identity("cloud")
        pushed = read_pushed(server, PREFIX, ident.device_id, ident.keys)
    assert server.read(key_file) == sent  # the same bytes: the epoch entry names that object
    assert pushed.kinds() == ["epoch", *["session.put"] * SESSIONS]


@pytest.mark.parametrize("s3_backend", ["moto"])
def test_a_second_copy_pushing_as_this_device_is_refused_where_if_none_match_is_honoured(
    setup: tuple[Path, S3Server], tmp_path: Path
) -> None:
    # A copy of the vault (a backup restored beside it) commits a batch as entry 7 and is killed
    # before sending it; the original then pushes its own entry 7. The copy's resend of its
    # outbox meets moto's 412 on entry 7, reads it back, finds other bytes: refused in one line,
    # nothing more sent, and the original's log still reads whole. (rclone ignores the header and
    # would let the resend win: there the readers' chain check is what sees it.)
    path, server = setup
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        assert v.remotes.push().seq == 6  # the epoch entry and five sessions
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    with Vault.open(copy, passphrase=PASSPHRASE) as v:
        v.save(_session(100))
    _kill_at(copy, server, "cursor", 1)
    with Vault.open(path, passphrase=PASSPHRASE) as v:
        v.save(_session(101))
        assert v.remotes.push().seq == 7
        ident = v.remotes.devices.identity("cloud")
    before = {k: server.read(k) for k in server.objects()}
    env = {"SESSIONSEAL_VAULT": str(copy), "SESSIONSEAL_PASSPHRASE": PASSPHRASE, "HOME": str(tmp_path), **server.env()}
    ran = sessionseal("sync", "--push", env=env, timeout=300)
    assert ran.code == 19 and ran.err.count("\n") == 1, ran.err
    assert "entry 7 of this device's log is on the remote already with other bytes" in ran.err
    assert {k: server.read(k) for k in server.objects()} == before
    pushed = read_pushed(server, PREFIX, ident.device_id, ident.keys)
    assert pushed.kinds() == ["epoch", *["session.put"] * (SESSIONS + 1)]
