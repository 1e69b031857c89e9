"""The library's merge thread at interpreter exit, with real processes (issue 23; docs/design.md,
"Tier merges out of the writer's call"): a script whose append made a tier merge due ends while
the vault's merge thread is inside the merge, its vault never closed.  ``atexit`` lets the merge
finish (its grace); past the grace it stops the merge at a safe point (nothing committed, the merge still pending); a thread that heeds no stop
(frozen past the wait, as a killed process would be) has written at most a segment the manifest
does not name.  Either way the index answers as before, ``verify`` finds no error, nothing is
printed, and a later run merges.

The vault, a passphrase vault one write short of a full tier with the real constants, is built
as tests/integration/test_fts_merge_detach.py builds it; the merge is held by events, never by
timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from sessionseal import ListQuery, PassphraseProvider, Vault
from tests.integration._cli import SRC
from tests.integration.test_fts_merge_detach import PASSPHRASE, _answers, _one_short, _open, _segments

SCRIPT = textwrap.dedent(
    """
    import sys, threading, uuid
    from sessionseal import Vault
    from sessionseal._vault import _fulltext, _ftsthread

    path, sid, how = sys.argv[1], uuid.UUID(sys.argv[2]), sys.argv[3]
    started, release = threading.Event(), threading.Event()
    if how in ("stopped", "finished"):  # held in the merge's fold until atexit's first step
        real_fold = _fulltext.fold

        def fold(fts, vid, pulled, records, current, **kw):
            out = real_fold(fts, vid, pulled, records, current, **kw)
            if pulled:
                started.set()
                release.wait()
            return out

        _fulltext.fold = fold
        real_drain = _ftsthread.MergeThread.drain

        def drain(self):
            real_drain(self)
            release.set()

        _ftsthread.MergeThread.drain = drain
        if how == "stopped":  # no grace: stopped at the next safe point, after the fold
            _ftsthread.FINISH_GRACE = 0.0
    else:  # frozen: the merged segment written, never committed, no stop heeded, no wait at exit
        _ftsthread.EXIT_WAIT = _ftsthread.FINISH_GRACE = 0.0
        real_write = _fulltext.FullText._write_sealed

        def write_sealed(self, fts, sealed):
            out = real_write(self, fts, sealed)
            if threading.current_thread().name == "sessionseal-ftsmerge":
                started.set()
                threading.Event().wait()
            return out

        _fulltext.FullText._write_sealed = write_sealed
    v = Vault.open(path, passphrase=sys.argv[4], auto_cleanup=False)
    v.append(sid, [{"role": "assistant", "content": "the write that folds walrus"}])
    assert v.maintenance.mode == "thread"
    started.wait()
    print("merging", flush=True)
    # The script ends here, inside the merge, its vault never closed.
    """
)


@pytest.fixture
def due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, uuid.UUID]:
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        sid = _one_short(v, monkeypatch)
    return path, sid


def test_a_script_ending_inside_a_merge_lets_it_finish(due: tuple[Path, uuid.UUID]) -> None:
    # The grace: a script that appends and ends at once does not stop every merge it made due.
    path, sid = due
    assert _run(path, sid, "finished") == (0, b"merging\n", b"")
    with _open(path) as v:
        v.maintenance.mode = "manual"
        status = v.maintenance.status()
        assert status.pending is None and status.last["by"] == "thread" and status.last["outcome"] == "ok"
        assert len(_segments(v)) == 1 and len(list((path / "fts").glob("*.seg"))) == 1
        assert [h.id for h in v.search("folds", ListQuery(limit=5), snippets=False)] == [str(sid)]
        assert [p.code for p in v.verify(read_data=True).problems if p.severity == "error"] == []


def _run(path: Path, sid: uuid.UUID, how: str) -> tuple[int, bytes, bytes]:
    root = str(Path(SRC).parent)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{root}", "SESSIONSEAL_NONINTERACTIVE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), str(sid), how, PASSPHRASE],
        cwd=root,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return run.returncode, run.stdout, run.stderr


@pytest.mark.parametrize("how", ["stopped", "frozen"])
def test_a_script_ending_inside_a_merge_leaves_the_index_whole_and_the_merge_pending(
    due: tuple[Path, uuid.UUID], how: str
) -> None:
    path, sid = due
    assert _run(path, sid, how) == (0, b"merging\n", b"")  # no traceback
    assert len(list((path / "fts").glob("*.seg"))) == (9 if how == "frozen" else 8)  # where it stopped
    with _open(path) as v:
        v.maintenance.mode = "manual"
        status = v.maintenance.status()
        assert status.pending is not None and status.last == {} and not status.running
        assert len(_segments(v)) == 8  # nothing committed (frozen: a segment written, unnamed)
        before = _answers(v)
        assert [h.id for h in v.search("folds", ListQuery(limit=5), snippets=False)] == [str(sid)]  # the append
        assert [p.code for p in v.verify(read_data=True).problems if p.severity == "error"] == []
        assert v.maintenance.run() == 1
        status = v.maintenance.status()
        assert status.pending is None and not status.due and len(_segments(v)) == 1
        assert _answers(v) == before
