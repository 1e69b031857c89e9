"""The vault's locks (:func:`sessionseal._fslock.lock`): a free lock is taken with one ``open``
and one ``flock``, a held one through filelock's wait; either way the same ``flock`` on the same
file, so each excludes the other, across threads and processes, and a forked child never lets
go of its parent's lock."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sessionseal._fslock import lock, make_lock_files
from sessionseal.errors import LockTimeout, UnsafePermissions

#: Try the lock without waiting, as another process: "held" or "free".
PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("held")
else:
    print("free")
"""


def _probe_elsewhere(path: Path) -> str:
    return subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True).stdout


def _probe(path: Path) -> str:
    """As :data:`PROBE`, from another open file of this process (``flock`` locks belong to the
    open file: two of one process exclude each other as two processes do)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "held\n"
    finally:
        os.close(fd)
    return "free\n"


@pytest.fixture
def locks(tmp_path: Path) -> Path:
    d = tmp_path / "locks"
    d.mkdir(mode=0o700)
    return d


def test_a_free_lock_is_held_for_the_block_with_the_holder_named(locks: Path) -> None:
    path = locks / "s.lock"
    with lock(path, timeout=1, what="session x"):
        assert _probe_elsewhere(path) == "held\n"
        assert int(path.read_bytes().decode().strip()) == os.getpid()
        assert path.stat().st_mode & 0o777 == 0o600
        # A second taker (another descriptor: a thread, or this one again) waits, and times out
        # naming this process: the wait is filelock's, as it always was.
        timeout = pytest.raises(LockTimeout, match=f"session x is locked by pid {os.getpid()}")
        with timeout, lock(path, timeout=0.2, what="session x"):
            pass
    assert _probe_elsewhere(path) == "free\n"
    assert path.exists()  # left in place, as filelock leaves it: waiters share one inode


def test_a_lock_held_elsewhere_is_waited_for_then_taken(locks: Path) -> None:
    path = locks / "s.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    released = threading.Timer(0.3, os.close, (fd,))
    released.start()
    try:
        with lock(path, timeout=10, what="session x"):
            assert _probe(path) == "held\n"
    finally:
        released.join()
    assert _probe(path) == "free\n"


def test_threads_taking_one_lock_take_it_in_turn(locks: Path) -> None:
    path = locks / "s.lock"
    inside, most, errors = [0], [0], []
    guard = threading.Lock()

    def work() -> None:
        try:
            for _ in range(20):
                with lock(path, timeout=30, what="session x"):
                    with guard:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    with guard:
                        inside[0] -= 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (errors, most[0]) == ([], 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_leaving_the_block_does_not_free_its_parents_lock(locks: Path) -> None:
    # In a process of its own (a fork of the test runner's threads is no test of this): the
    # child runs the block's end, the parent then finds its lock still held.
    path = locks / "s.lock"
    child_leaves = f"""
import os, sys
sys.path[:0] = {sys.path!r}
from pathlib import Path
from sessionseal._fslock import lock, make_lock_files
path = Path({str(path)!r})
with lock(path, timeout=1, what="x"):
    pid = os.fork()
    if pid != 0:
        os.waitpid(pid, 0)
        import fcntl
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("freed by the child")
        except BlockingIOError:
            print("still held")
        os._exit(0)
os._exit(0)
"""
    out = subprocess.run([sys.executable, "-c", child_leaves], capture_output=True, text=True, check=True).stdout
    assert out == "still held\n"


def test_a_lock_file_open_to_others_is_refused(locks: Path) -> None:
    path = locks / "s.lock"
    path.write_bytes(b"")
    path.chmod(0o644)
    with pytest.raises(UnsafePermissions), lock(path, timeout=1, what="session x"):
        pass
    link = locks / "l.lock"
    link.symlink_to(locks / "elsewhere.lock")
    with pytest.raises(UnsafePermissions), lock(link, timeout=1, what="session x"):
        pass
    assert not (locks / "elsewhere.lock").exists()


def test_lock_files_made_ahead_are_what_a_first_take_makes_and_nothing_is_taken(locks: Path) -> None:
    # make_lock_files: a batch's lock files made by a thread ahead of its saves (docs/sync.md, "Pull").
    made, taken = locks / "made.lock", locks / "taken.lock"
    with lock(taken, timeout=1, what="session x"):
        pass
    make_lock_files([made])
    assert made.stat().st_mode & 0o777 == taken.stat().st_mode & 0o777 == 0o600
    assert _probe(made) == "free\n"  # made, not held
    with lock(made, timeout=1, what="session x"):
        assert _probe_elsewhere(made) == "held\n"
    # One that is there (held even) is left as it is; a link is not followed; a FIFO never blocks.
    with lock(taken, timeout=1, what="session x"):
        make_lock_files([taken])
        assert _probe(taken) == "held\n"
    link = locks / "l.lock"
    link.symlink_to(locks / "elsewhere.lock")
    fifo = locks / "f.lock"
    os.mkfifo(fifo, 0o600)
    make_lock_files([link, fifo, locks / "missing-dir" / "x.lock"])
    assert not (locks / "elsewhere.lock").exists() and link.is_symlink()
    with pytest.raises(UnsafePermissions), lock(link, timeout=1, what="session x"):
        pass
