"""Real processes: concurrent writers never corrupt a session; a SIGKILL mid-write leaves old or new."""

from __future__ import annotations

import random
import signal
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault, errors
from tests._infra.forkscript import Child, Forker, forker

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


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forker]:
    """The children are real processes forked from one that imported sessionseal once
    (tests/_infra/forkscript.py): a fork per child instead of an interpreter's start."""
    with forker(tmp_path_factory.mktemp("children")) as f:
        yield f


def _child(children: Forker, code: str, *args: object) -> Child:
    """A Python child running *code* with *args* (strings) against this checkout."""
    return children.popen(code, *args)


def _writer(children: Forker, *args: object) -> Child:
    """A :data:`WRITER`; *args*: vault path, session id, tag, saves, size of each."""
    return _child(children, WRITER, *args, PASSPHRASE)


#: How long a child may take to acknowledge what a round waits for. Generous: it only runs
#: out when the child makes no progress at all (hung, or dead before its first write).
PROGRESS_DEADLINE = 300.0


class _Acks:
    """A child's stdout lines (what it acknowledged) as they come, read by a thread, so the
    test kills it after a number of acknowledged writes rather than after a fixed time: a
    kill tests the same thing whatever the machine's speed, and counts never depend on it."""

    def __init__(self, proc: Child) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self._eof = False
        self._cond = threading.Condition()
        # Both pipes are drained by threads: a child never blocks on a full pipe.
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._read, self._drain)]
        for t in self._threads:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.strip())
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def _reap(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        for t in self._threads:
            t.join(timeout=30)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def wait_until(self, done: Callable[[list[str]], bool]) -> None:
        """Wait until *done* holds for the lines so far; fail only if the child exits first or
        makes no progress within :data:`PROGRESS_DEADLINE`."""
        with self._cond:
            self._cond.wait_for(lambda: done(self.lines) or self._eof, PROGRESS_DEADLINE)
            ok = done(self.lines)
        if not ok:
            self._reap()
            pytest.fail(f"the child acknowledged only {len(self.lines)} writes: {''.join(self.stderr)[-2000:]}")

    def kill_after(self, rng: random.Random, done: Callable[[list[str]], bool], jitter: float) -> list[str]:
        """Once *done* holds, SIGKILL the child a random moment later (so the kill lands
        anywhere in a write); return every line it acknowledged."""
        self.wait_until(done)
        time.sleep(rng.uniform(0, jitter))
        self._reap()
        return list(self.lines)


def test_concurrent_writers_of_one_session(vault_path: Path, children: Forker) -> None:
    sid, n = uuid.uuid4(), 25
    procs = [_writer(children, vault_path, sid, f"p{k}", n, 20_000) for k in range(3)]
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


def test_sigkill_mid_write_leaves_the_old_or_the_new_version(vault_path: Path, children: Forker) -> None:
    rng = random.Random(2)
    sid = uuid.uuid4()
    stored: str | None = None  # the version found after the previous round
    acknowledged = 0
    for round_ in range(12):
        target = rng.randint(1, 3)
        acked = _Acks(_writer(children, vault_path, sid, f"r{round_}", 1000, 400_000)).kill_after(
            rng, lambda lines: len(lines) >= target, 0.3
        )
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


def test_sigkill_mid_append_loses_no_acknowledged_turn(vault_path: Path, children: Forker) -> None:
    """Children append turns and are killed at random moments (issue 7): every append that
    returned before the kill is there afterwards, in order, and the session opens cleanly."""
    rng = random.Random(7)
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        sid = v.save({"title": "live", "messages": []})
    acknowledged: list[str] = []
    for round_ in range(10):
        # Large turns in some rounds: a kill then lands inside a write more often.
        size = rng.choice([50, 20_000, 300_000])
        target = rng.randint(2, 5)
        acked = _Acks(_child(children, APPENDER, vault_path, sid, f"r{round_}", size, PASSPHRASE)).kill_after(
            rng, lambda lines: len(lines) >= target, 0.3
        )
        acknowledged.extend(acked)
        with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
            stored = [m.content[0].text.split(" ", 1)[0] for m in v.load(sid).messages]  # type: ignore[union-attr]
            [summary], problems = v.list_with_problems()
        assert not problems
        # Every acknowledged turn, in order; at most one more (in flight when killed, then committed).
        assert stored[: len(acknowledged)] == acknowledged
        assert len(stored) - len(acknowledged) <= 1
        acknowledged = stored
        assert summary.message_count == len(stored)
    assert len(acknowledged) >= 20  # at least 2 acknowledged per round, by construction


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


def test_sigkill_of_an_autosaving_recorder_loses_nothing_it_flushed(vault_path: Path, children: Forker) -> None:
    """A recorder autosaving from its thread is killed at random moments (issue 7): every event
    an autosave wrote before the kill is there afterwards, in order, and the session opens."""
    rng = random.Random(11)
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        sid = v.save({"title": "recorded", "messages": []})
    before = 0
    for round_ in range(8):
        # Kill once an autosave has acknowledged at least `target` events, a random moment
        # later (0.2 s: a few autosave intervals, so some kills land inside a flush).
        target = rng.randint(3, 12)
        acked = _Acks(_child(children, RECORDER, vault_path, sid, f"r{round_}", PASSPHRASE)).kill_after(
            rng, lambda lines: any(int(n) >= target for n in lines), 0.2
        )
        flushed = max((int(n) for n in acked), default=0)
        assert flushed >= target
        with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
            texts = [m.content[0].text.split(" ", 1)[0] for m in v.load(sid).messages]  # type: ignore[union-attr]
            _, problems = v.list_with_problems()
        assert not problems
        mine = texts[before:]
        assert len(mine) >= flushed  # every event an autosave acknowledged
        assert mine == [f"r{round_}-{i}" for i in range(len(mine))]  # in order, none lost in between
        before = len(texts)
    assert before >= 24  # at least 3 acknowledged per round, by construction


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


def test_sigkill_mid_checkpoint_or_restore_loses_nothing(vault_path: Path, children: Forker) -> None:
    """Children checkpoint and restore in a loop and are killed at random moments (issue 7):
    afterwards the session opens, and every checkpoint that was acknowledged is there whole."""
    rng = random.Random(13)
    with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
        sid = v.save({"title": "checkpointed", "messages": []})
    acknowledged: set[int] = set()
    for round_ in range(6):
        target = rng.randint(2, 5)
        acked = _Acks(_child(children, CHECKPOINTER, vault_path, sid, f"r{round_}", PASSPHRASE)).kill_after(
            rng, lambda lines: len(lines) >= target, 0.3
        )
        acknowledged.update(int(w[1:]) for w in acked)
        with Vault.open(vault_path, passphrase=PASSPHRASE) as v:
            v.load(sid)
            _, problems = v.list_with_problems()
            numbers = [cp.number for cp in v.checkpoints(sid)]
            # Each acknowledged checkpoint opens whole (forked, then the fork deleted).
            for n in sorted(acknowledged)[-2:]:
                v.delete(v.fork(sid, checkpoint=n))
        assert not problems
        assert acknowledged <= set(numbers)
    assert len(acknowledged) >= 12  # at least 2 acknowledged per round, each a new checkpoint
