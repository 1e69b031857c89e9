"""Real processes: concurrent writers never corrupt a session; a SIGKILL mid-write leaves old or new."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault, errors

SRC = str(Path(__file__).resolve().parents[2] / "src")
PASSPHRASE = "process tests"

WRITER = textwrap.dedent(
    """
    import sys, uuid
    from sessionseal import Vault
    path, sid, tag, n, size = sys.argv[1], uuid.UUID(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    with Vault.open(path, passphrase=sys.argv[6]) as v:
        for i in range(n):
            text = f"{tag}-{i} " + "x" * size
            v.save({"id": str(sid), "title": f"{tag}-{i}", "messages": [{"role": "user", "content": text}]})
            print(f"{tag}-{i}", flush=True)
    """
)


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)).close()
    return path


def _child(code: str, *args: object) -> subprocess.Popen[str]:
    """A Python child running *code* with *args* (strings) against this checkout."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _writer(path: Path, sid: uuid.UUID, tag: str, n: int, size: int) -> subprocess.Popen[str]:
    return _child(WRITER, path, sid, tag, n, size, PASSPHRASE)


def test_concurrent_writers_of_one_session(vault_path: Path) -> None:
    sid, n = uuid.uuid4(), 25
    procs = [_writer(vault_path, sid, f"p{k}", n, 20_000) for k in range(3)]
    written: set[str] = set()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        written.update(out.split())
    assert len(written) == 3 * n
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        [summary] = v.list()
        session = v.load(sid)
    assert session.title in written
    assert session.messages[0].content[0].text.startswith(session.title + " ")  # type: ignore[union-attr]
    # Each save read the generation under the session lock: no two writers shared one.
    assert summary.generation == 3 * n
    assert not [f for f in (vault_path / "sessions").iterdir() if f.name.startswith(".tmp-")]


def test_sigkill_mid_write_leaves_the_old_or_the_new_version(vault_path: Path) -> None:
    rng = random.Random(2)
    sid = uuid.uuid4()
    stored: str | None = None  # the version found after the previous round
    acknowledged = 0
    for round_ in range(12):
        proc = _writer(vault_path, sid, f"r{round_}", 1000, 400_000)
        time.sleep(rng.uniform(0.15, 0.6))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        acked = out.split()
        acknowledged += len(acked)
        # The stored version is this round's last acknowledged save (or, if it acknowledged
        # none, what was stored before it), or the save in flight after that one.
        expected = (acked[-1] if acked else stored, f"r{round_}-{len(acked)}")
        with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
            try:
                title: str | None = v.load(sid).title  # never an integrity error
            except errors.SessionNotFound:
                title = None  # nothing committed yet
        assert title in expected, (title, expected)
        stored = title
    assert acknowledged


APPENDER = textwrap.dedent(
    """
    import sys, uuid
    from sessionseal import Vault
    path, sid, tag, size = sys.argv[1], uuid.UUID(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    with Vault.open(path, passphrase=sys.argv[5]) as v:
        for i in range(100000):
            v.append(sid, [{"role": "user", "content": f"{tag}-{i} " + "y" * size}])
            print(f"{tag}-{i}", flush=True)
    """
)


def test_sigkill_mid_append_loses_no_acknowledged_turn(vault_path: Path) -> None:
    """Children append turns and are killed at random moments (issue 7): every append that
    returned before the kill is there afterwards, in order, and the session opens cleanly."""
    rng = random.Random(7)
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        sid = v.save({"title": "live", "messages": []})
    acknowledged: list[str] = []
    for round_ in range(10):
        # Large turns in some rounds: a kill then lands inside a write more often.
        size = rng.choice([50, 20_000, 300_000])
        proc = _child(APPENDER, vault_path, sid, f"r{round_}", size, PASSPHRASE)
        time.sleep(rng.uniform(0.3, 0.9))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        acknowledged.extend(out.split())
        with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
            stored = [m.content[0].text.split(" ", 1)[0] for m in v.load(sid).messages]  # type: ignore[union-attr]
            [summary], problems = v.list_with_problems()
        assert not problems
        # Every acknowledged turn, in order; at most one more (in flight when killed, then committed).
        assert stored[: len(acknowledged)] == acknowledged
        assert len(stored) - len(acknowledged) <= 1
        acknowledged = stored
        assert summary.message_count == len(stored)
    assert len(acknowledged) > 10


RECORDER = textwrap.dedent(
    """
    import sys, time, uuid
    from sessionseal import Vault
    path, sid, tag = sys.argv[1], uuid.UUID(sys.argv[2]), sys.argv[3]
    with Vault.open(path, passphrase=sys.argv[4]) as v:
        rec = v.record(sid, autosave=0.05)
        reported = 0
        for i in range(100000):
            rec.append_message("user", f"{tag}-{i} " + "q" * 2000)
            if rec.flushed != reported:  # the autosave thread appended: these events are on disk
                reported = rec.flushed
                print(reported, flush=True)
            time.sleep(0.002)
    """
)


def test_sigkill_of_an_autosaving_recorder_loses_nothing_it_flushed(vault_path: Path) -> None:
    """A recorder autosaving from its thread is killed at random moments (issue 7): every event
    an autosave wrote before the kill is there afterwards, in order, and the session opens."""
    rng = random.Random(11)
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        sid = v.save({"title": "recorded", "messages": []})
    before = 0
    for round_ in range(8):
        proc = _child(RECORDER, vault_path, sid, f"r{round_}", PASSPHRASE)
        time.sleep(rng.uniform(0.4, 1.2))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        flushed = max((int(n) for n in out.split()), default=0)
        with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
            texts = [m.content[0].text.split(" ", 1)[0] for m in v.load(sid).messages]  # type: ignore[union-attr]
            _, problems = v.list_with_problems()
        assert not problems
        mine = texts[before:]
        assert len(mine) >= flushed  # every event an autosave acknowledged
        assert mine == [f"r{round_}-{i}" for i in range(len(mine))]  # in order, none lost in between
        before = len(texts)
    assert before > 20


CHECKPOINTER = textwrap.dedent(
    """
    import sys, uuid
    from sessionseal import Vault
    path, sid, tag = sys.argv[1], uuid.UUID(sys.argv[2]), sys.argv[3]
    with Vault.open(path, passphrase=sys.argv[4]) as v:
        for i in range(100000):
            v.append(sid, [{"role": "user", "content": f"{tag}-{i} " + "c" * 50_000}])
            cp = v.checkpoint(sid, f"{tag}-{i}")
            print(f"c{cp.number}", flush=True)
            if i % 3 == 2:
                saved = v.restore_checkpoint(sid, cp.number - 1)
                print(f"r{saved.number}", flush=True)
    """
)


def test_sigkill_mid_checkpoint_or_restore_loses_nothing(vault_path: Path) -> None:
    """Children checkpoint and restore in a loop and are killed at random moments (issue 7):
    afterwards the session opens, and every checkpoint that was acknowledged is there whole."""
    rng = random.Random(13)
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        sid = v.save({"title": "checkpointed", "messages": []})
    acknowledged: set[int] = set()
    for round_ in range(6):
        proc = _child(CHECKPOINTER, vault_path, sid, f"r{round_}", PASSPHRASE)
        time.sleep(rng.uniform(0.4, 1.2))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        acknowledged.update(int(w[1:]) for w in out.split())
        with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
            v.load(sid)
            _, problems = v.list_with_problems()
            numbers = [cp.number for cp in v.checkpoints(sid)]
            # Each acknowledged checkpoint opens whole (forked, then the fork deleted).
            for n in sorted(acknowledged)[-2:]:
                v.delete(v.fork(sid, checkpoint=n))
        assert not problems
        assert acknowledged <= set(numbers)
    assert len(acknowledged) > 6
