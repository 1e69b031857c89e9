"""A due tier merge never runs inside a writer's call, and is never lost (issue 23; docs/design.md,
"Tier merges out of the writer's call"), with real processes: the real ``sessionseal`` command
on a passphrase vault whose passphrase is in a file (a background child may read it) or in the
environment (none may have it).

The vault is brought, in this process, to one write short of a full tier: seven small segments
(folds every two records) and the delta log one frame under its real bound, so the next write
anywhere folds the eighth segment with the real constants. Where a merge ran is read from
``ftsmerge.json`` (``by``) and the manifest's segments, never from timing; the background
children are found in /proc by their command line and waited for with a generous hang guard.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionseal import ListQuery, PassphraseProvider, Vault
from sessionseal._vault import _fulltext
from sessionseal._vault._autopush import try_lock
from sessionseal._vault._ftsmerge import MERGE_LOCK
from tests._infra.keychain import SecretService
from tests.integration._cli import SRC, Ran, sessionseal

PASSPHRASE = "a merge in the background"
HANG_GUARD = 180.0
QUERIES = ["walrus", "kumquat*", "walrus AND kumquat3", '"merged walrus"', "NOT nothing walrus"]


def _children(vault: Path) -> list[int]:
    """The background merges of *vault* now running (from /proc: their command lines)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"merge" in argv and b"--auto" in argv and str(vault).encode() in argv:
                found.append(int(entry.name))
    return found


def _merging(vault: Path) -> bool:
    """Whether a merge holds the vault's merge lock: a child holds it from its spawn (inherited,
    before its command line shows in /proc) to its end."""
    try:
        fd = os.open(vault / "locks" / MERGE_LOCK, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _settle(vault: Path) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while _merging(vault) or _children(vault):
        assert time.monotonic() < deadline, "a background merge did not end within the hang guard"
        time.sleep(0.1)


@pytest.fixture
def due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path, uuid.UUID]]:
    """(vault, passphrase file, a session): one write short of a full tier."""
    path, pf = tmp_path / "vault", tmp_path / "pw"
    pf.write_text(PASSPHRASE)
    pf.chmod(0o600)
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        sid = _one_short(v, monkeypatch)
    yield path, pf, sid
    _settle(path)


def _one_short(v: Vault, monkeypatch: pytest.MonkeyPatch) -> uuid.UUID:
    v.maintenance.mode = "manual"
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 2)
    sid = v.save({"title": "merge me", "messages": [{"role": "user", "content": "walrus kumquat0"}]})
    for i in range(1, 14):  # 14 records, 7 folds: 7 segments of tier 0
        v.append(sid, [{"role": "assistant", "content": f"merged walrus kumquat{i}"}])
    monkeypatch.setattr(_fulltext, "COMPACT_FRAMES", 64)  # the real bound again
    for i in range(63):
        v.append(sid, [{"role": "user", "content": f"log walrus kumquat{i % 5}"}])
    assert len(_segments(v)) == 7
    assert not v.maintenance.status().due
    return sid


def _open(path: Path) -> Vault:
    return Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False)


def _segments(v: Vault) -> list[object]:
    from tests.unit.test_fts_lifecycle import manifest_of

    return list(manifest_of(v).segments)


def _answers(v: Vault) -> dict[str, list[tuple[str, float]]]:
    return {q: [(h.id, round(h.score, 9)) for h in v.search(q, ListQuery(limit=50), snippets=False)] for q in QUERIES}


def _run(path: Path, *args: str, pf: Path | None = None, input: str | None = None) -> Ran:
    env = {"SESSIONSEAL_VAULT": str(path), "HOME": str(path.parent)}
    if pf is None:
        env["SESSIONSEAL_PASSPHRASE"] = PASSPHRASE
    given = ("--passphrase-file", str(pf)) if pf is not None else ()
    return sessionseal(*given, *args, env=env, input=input, timeout=120)


EVENT = '{"role": "assistant", "content": "the write that folds walrus"}\n'


def test_an_append_that_makes_a_merge_due_returns_and_a_child_merges(due: tuple[Path, Path, uuid.UUID]) -> None:
    path, pf, sid = due
    ran = _run(path, "append", str(sid), "-", pf=pf, input=EVENT)
    assert ran.code == 0, ran.err
    assert "merg" not in ran.err  # nothing of the merge in the writer's output
    _settle(path)
    with _open(path) as v:
        status = v.maintenance.status()
        assert status.last["by"] == "background" and status.last["outcome"] == "ok", status
        assert status.last["merges"] == 1 and status.pending is None and not status.due
        assert len(_segments(v)) == 1  # the eight of tier 0, merged by the child
        after = _answers(v)
        assert not [p for p in v.verify(read_data=True).problems if p.severity == "error"]
        v.reindex()
        assert _answers(v) == after  # a merge changes no answer


def test_a_writer_finding_a_merge_running_starts_none_and_the_next_command_takes_it_up(
    due: tuple[Path, Path, uuid.UUID],
) -> None:
    path, pf, sid = due
    with _open(path) as v:
        held = try_lock(v.parts.ctx.locks, MERGE_LOCK)  # as a running merge holds it
        assert held is not None
        try:
            ran = _run(path, "append", str(sid), "-", pf=pf, input=EVENT)
            assert ran.code == 0, ran.err
            assert _children(path) == []  # the merge lock was held: no child
            status = v.maintenance.status()
            # The writer folded (the eighth segment) and merged nothing: the tier waits, noted.
            assert status.due and status.running and status.pending is not None and status.last == {}
            assert len(_segments(v)) == 8
        finally:
            os.close(held)
        # Any later command (one that writes nothing) takes the pending merge up.
        assert _run(path, "list", "--json", pf=pf).code == 0
        _settle(path)
        status = v.maintenance.status()
        assert status.last["by"] == "background" and not status.due and status.pending is None
        assert len(_segments(v)) == 1


def test_two_writers_due_at_once_start_one_child(due: tuple[Path, Path, uuid.UUID]) -> None:
    path, pf, sid = due
    blocker, a, b = _open(path), _open(path), _open(path)
    for v in (a, b):
        v.maintenance.mode = "background"
        v.maintenance.unlock_with_file(pf)
    later = contextlib.ExitStack()
    real = a.parts.auditor.after_call
    assert real is not None

    def after_call() -> None:
        # The child this writer starts will wait for the vault lock, holding the merge lock.
        later.enter_context(blocker.parts.ctx.vault_lock())
        real()

    a.parts.auditor.after_call = after_call
    try:
        a.append(sid, [{"role": "assistant", "content": "the write that folds walrus"}])
        assert a.maintenance.spawned == 1
        deadline = time.monotonic() + HANG_GUARD
        while not _children(path):  # its command line shows once it has started
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # The second writer finds the same merge due (noted pending) while the child runs.
        assert b.maintenance.status().pending is not None
        assert b.maintenance.resume(foreground=False) == 0
        assert b.maintenance.spawned == 0 and len(_children(path)) == 1
    finally:
        later.close()
    _settle(path)
    assert b.maintenance.status().last["by"] == "background" and len(_segments(b)) == 1
    for v in (blocker, a, b):
        v.close()


KILLED_CHILD = textwrap.dedent(
    """
    import sys
    from sessionseal._vault import _fulltext
    from tests._infra.killpoint import kill_after
    owner, name = (_fulltext, "fold") if sys.argv[1] == "fold" else (_fulltext.FullText, sys.argv[1])
    kill_after(owner, name, 1)
    from sessionseal.cli import main
    sys.argv = ["sessionseal", "--vault", sys.argv[2], "--passphrase-file", sys.argv[3], "index", "merge", "--auto"]
    main()
    """
)


@pytest.mark.parametrize("point", ["fold", "_write_sealed", "_commit"])
def test_a_child_killed_inside_its_merge_leaves_the_index_whole_and_a_later_command_finishes_it(
    due: tuple[Path, Path, uuid.UUID], point: str
) -> None:
    # fold: building in memory (nothing written); _write_sealed: the merged segment written, not
    # committed; _commit: committed, the merged segments not removed yet.
    path, pf, sid = due
    with _open(path) as v:
        v.maintenance.mode = "manual"
        v.append(sid, [{"role": "assistant", "content": "the write that folds walrus"}])
        assert v.maintenance.status().pending is not None and len(_segments(v)) == 8
        before = _answers(v)
    root = str(Path(SRC).parent)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{root}", "SESSIONSEAL_NONINTERACTIVE": "1"}
    env.pop("SESSIONSEAL_PASSPHRASE", None)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, point, str(path), str(pf)],
        cwd=root,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -9, child.stderr[-2000:]
    with _open(path) as v:
        status = v.maintenance.status()
        assert status.pending is not None and not status.running  # the kill let the lock go
        assert len(_segments(v)) == (1 if point == "_commit" else 8)
        assert _answers(v) == before
        errors = [p for p in v.verify(read_data=True).problems if p.severity == "error"]
        assert errors == []
    assert _run(path, "list", "--json", pf=pf).code == 0  # takes the pending merge up
    _settle(path)
    with _open(path) as v:
        status = v.maintenance.status()
        assert status.last["by"] == "background" and status.last["outcome"] == "ok", status
        assert status.pending is None and not status.due and len(_segments(v)) == 1
        assert _answers(v) == before


def test_a_passphrase_no_child_can_have_leaves_the_merge_pending_for_index_merge(
    due: tuple[Path, Path, uuid.UUID],
) -> None:
    path, pf, sid = due
    ran = _run(path, "append", str(sid), "-", input=EVENT)  # the passphrase in the environment
    assert ran.code == 0 and "merg" not in ran.err, ran.err
    assert not _merging(path) and _children(path) == []  # no child holds the merge lock
    assert _run(path, "list", "--json").code == 0  # no terminal: still pending
    assert not _merging(path) and _children(path) == []
    with _open(path) as v:
        status = v.maintenance.status()
        assert status.due and status.pending is not None and status.last == {} and len(_segments(v)) == 8
        assert not [p for p in v.verify(read_data=True).problems if p.severity == "error"]  # not damage
    assert _merge_check(path, pf)["status"] == "warn"  # doctor says so, and what to run
    merged = _run(path, "index", "merge", "--json")
    assert merged.code == 0, merged.err
    assert json.loads(merged.out) == {"merges": 1, "running": False, "due": False}
    with _open(path) as v:
        status = v.maintenance.status()
        assert status.last["by"] == "command" and status.pending is None and len(_segments(v)) == 1
    assert _merge_check(path, pf)["status"] == "ok"


def _merge_check(path: Path, pf: Path) -> dict[str, str]:
    # The doctor reads and writes nothing of the merge (it never starts one).
    checks = json.loads(_run(path, "doctor", "--json", pf=pf).out)["checks"]
    [check] = [c for c in checks if c["name"] == "fts-merge"]
    assert check["status"] == "ok" or "sessionseal index merge" in check["hint"], check
    return dict(check)


def _at_terminal(path: Path, *args: str) -> tuple[int, str]:
    """Run ``sessionseal ARGS`` with stdin and stderr on a pseudo-terminal (a person's shell)."""
    master, slave = pty.openpty()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(SRC),
        "SESSIONSEAL_VAULT": str(path),
        "SESSIONSEAL_PASSPHRASE": PASSPHRASE,
        "HOME": str(path.parent),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionseal", *args],
        stdin=slave,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break  # the terminal closed: the process is gone
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=HANG_GUARD), out.decode(errors="replace")


def test_a_pending_merge_of_a_passphrase_vault_runs_at_the_end_of_a_command_at_a_terminal(
    due: tuple[Path, Path, uuid.UUID],
) -> None:
    path, _pf, sid = due
    assert _run(path, "append", str(sid), "-", input=EVENT).code == 0
    code, err = _at_terminal(path, "list")
    assert code == 0, err
    assert "merging the full-text index" in err
    with _open(path) as v:
        status = v.maintenance.status()
        assert status.last["by"] == "terminal" and status.pending is None and len(_segments(v)) == 1


@pytest.mark.usefixtures("real_backend")
def test_a_keychain_vault_merges_in_a_child_that_unlocks_from_the_keychain(
    secret_service: SecretService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vault"
    with Vault.init(path) as v:
        sid = _one_short(v, monkeypatch)
    env = secret_service.env_for(home=tmp_path, SESSIONSEAL_VAULT=str(path))
    try:
        ran = sessionseal("append", str(sid), "-", env=env, input=EVENT, timeout=120)
        assert ran.code == 0, ran.err
        _settle(path)
    finally:
        for pid in _children(path):
            os.kill(pid, signal.SIGKILL)
    with Vault.open(path, auto_cleanup=False) as v:
        status = v.maintenance.status()
        assert status.last["by"] == "background" and status.last["outcome"] == "ok", status
        assert status.pending is None and len(_segments(v)) == 1
        after = _answers(v)
        v.reindex()
        assert _answers(v) == after


def test_a_capture_hook_whose_import_makes_a_merge_due_returns_and_a_child_merges(
    due: tuple[Path, Path, uuid.UUID],
) -> None:
    # The real 'hook claude-stop' (as Claude Code runs it after a turn, --passphrase-file as
    # 'hooks install' writes it): its import's save folds the eighth segment; the hook returns,
    # and the merge is the child's, not the hook's (which ends itself after 25 s).
    from tests.unit.test_browse import claude_transcript

    path, pf, _sid = due
    transcript = claude_transcript(path.parent / "claude")
    payload = json.dumps({"session_id": "x", "transcript_path": str(transcript)})
    ran = _run(path, "hook", "claude-stop", pf=pf, input=payload)
    assert (ran.code, ran.out) == (0, "")
    _settle(path)
    with _open(path) as v:
        assert len(v.list()) == 2  # the hook imported its transcript
        status = v.maintenance.status()
        assert status.last["by"] == "background" and status.last["outcome"] == "ok", status
        assert status.pending is None and len(_segments(v)) == 1
