"""A ``sessionseal reindex`` SIGKILLed while its worker processes run, or while its threads
read, tokenize and seal in its own process (issue 23; docs/spec/fts-v1.md, "Reindex"): no
worker outlives it, no plaintext is left anywhere, the old index still answers search, and the
next ``reindex`` succeeds and retires what the killed one wrote.

The kills are real SIGKILLs of a real ``sessionseal reindex`` process, sent by the process to
itself at a fixed point (as tests/unit/test_export_kill.py does): while the sessions are
tokenized (after the third session analyzed), or as the first sealed segment is written (in
the process: on the sealing thread, while the reading threads go on with the next segment).
Before dying it writes its workers' pids, so that the test can wait for them to go.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sessionseal import ListQuery, PassphraseProvider, Vault

SRC = str(Path(__file__).resolve().parents[2] / "src")
PASSPHRASE = "reindex kill test"
MARKER = "quetzalcoatlite"  # a word of the sessions' text, and of nothing else

#: ``sessionseal reindex`` on ``workers`` processes (2: the vault is small, so the size rule would
#: build it in process; 0: in process, in segments of a few sessions, so that reading goes on
#: while a segment is sealed), killing itself at ``where``; argv: where, vault, pids file, workers.
CHILD = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys
    where, vault, pids, workers = sys.argv[1:]
    from sessionseal._vault import _ftsbuild
    from sessionseal._fs import Dir

    def die():
        with open(pids, "w") as f:
            f.write(" ".join(str(p.pid) for p in multiprocessing.active_children()))
        os.kill(os.getpid(), signal.SIGKILL)

    real_workers, real_analyzed, real_write = _ftsbuild.workers_for, _ftsbuild._Source.analyzed, Dir.write_atomic
    _ftsbuild.workers_for = lambda ctx, names: int(workers)
    if workers == "0":
        _ftsbuild.SEGMENT_TEXT = 100_000

    def analyzed(self, n):
        if where == "analyzing" and n >= 3:
            die()
        return real_analyzed(self, n)

    def write_atomic(self, name, data, *a, **kw):
        if where == "sealing" and name.endswith(".seg"):
            die()
        return real_write(self, name, data, *a, **kw)

    _ftsbuild._Source.analyzed, Dir.write_atomic = analyzed, write_atomic
    from sessionseal.cli import main
    main(["--vault", vault, "reindex"])
    """
)


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "SESSIONSEAL_PASSPHRASE": PASSPHRASE, "TMPDIR": str(tmp)}


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        for i in range(12):
            text = f"session {i} mentions {MARKER} among other words " + "filler words here " * 2000
            v.save({"title": f"kill {i}", "messages": [{"role": "user", "content": text}]})
        v.reindex()  # the old index, which must keep answering
    return path


def _search(path: Path) -> tuple[str, int]:
    with Vault.open(path, key_provider=PassphraseProvider(PASSPHRASE)) as v:
        hits = v.search(MARKER, ListQuery(limit=100), snippets=False)
        return hits.source, len(hits)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True


def _plaintext_under(root: Path) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if MARKER.encode() in p.read_bytes():
                found.append(str(p))
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("workers", [2, 0])
@pytest.mark.parametrize("where", ["analyzing", "sealing"])
def test_a_reindex_killed_while_its_workers_run_leaves_no_worker_no_plaintext_and_the_old_index(
    vault: Path, tmp_path: Path, where: str, workers: int
) -> None:
    assert _search(vault) == ("fts", 12)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    pids_file = tmp_path / "pids"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, where, str(vault), str(pids_file), str(workers)],
        check=False,
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == workers, "the kill did not fall while the workers ran"
    # The workers notice their parent's death and exit (a generous bound, not a speed figure).
    deadline = time.monotonic() + 60
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if not _gone(p)] == [], "worker processes outlived the killed reindex"
    assert _plaintext_under(vault) == []
    assert _plaintext_under(tmp) == []
    assert _search(vault) == ("fts", 12)  # the old manifest and its files: untouched
    done = subprocess.run(
        [sys.executable, "-m", "sessionseal", "--vault", str(vault), "reindex", "--json"],
        check=False,
        env=_env(tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert _search(vault) == ("fts", 12)
    with Vault.open(vault, key_provider=PassphraseProvider(PASSPHRASE)) as v:
        report = v.verify(read_data=True)
    codes = {p.code for p in report.problems}
    assert not codes & {"fts-unlisted", "fts-damaged", "fts-missing-file"}, codes
