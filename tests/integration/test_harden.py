"""No core dumps, no same-user readers, no inherited passphrase (issue #18, item 5).

A sessionseal process holds plaintext, session keys, the vault secret and perhaps the vault's
passphrase.  The command sets RLIMIT_CORE to 0 and PR_SET_DUMPABLE to 0 at start, as gpg-agent
and ssh-agent do; ``sessionseal.harden_process()`` does the same for programs that embed the
library; and the passphrase variables leave the command's environment, so no child inherits them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import sessionseal
from tests._infra.users import OSUser
from tests.integration._cli import SRC

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and uses prctl")

PASSPHRASE = "hunter2-but-much-longer-passphrase"
DEADLINE = 60.0  # only ever waited in full when the test fails


def _wait_reading_stdin(pid: int) -> None:
    """Until one of the process's threads is blocked reading its stdin pipe: start-up is over."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                wchan = (task / "wchan").read_text()
            except OSError:
                continue
            if "pipe_read" in wchan or "pipe_wait" in wchan:  # anon_pipe_read since Linux 6.x
                return
        time.sleep(0.01)
    pytest.fail(f"process {pid} never blocked reading its stdin")


@contextmanager
def _blocked_cli(argv: list[str], env: dict[str, str]) -> Iterator[int]:
    """Run ``sessionseal ARGV`` with an open, empty stdin; yield its pid once it waits on it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionseal", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_reading_stdin(proc.pid)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()


def _core_limit(pid: int) -> list[str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return line.split()[4:6]
    raise AssertionError("no core limit line")


def _env(**extra: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(SRC), "SESSIONSEAL_CACHE_DIR": "", **extra}


@pytest.mark.parametrize("argv", [["sanitize"], ["save", "-"]], ids=["sanitize-fast-path", "click-command"])
def test_the_command_writes_no_core_dump(argv: list[str], tmp_path: Path) -> None:
    env = _env(HOME=str(tmp_path), SESSIONSEAL_VAULT=str(tmp_path / "v"))
    with _blocked_cli(argv, env) as pid:
        assert _core_limit(pid) == ["0", "0"]


def test_harden_process_for_embedding_programs() -> None:
    assert sessionseal.harden_process.__module__ == "sessionseal"
    code = """
        import ctypes, resource, sessionseal
        libc = ctypes.CDLL(None, use_errno=True)
        before = libc.prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
        ok = sessionseal.harden_process()
        print(before, libc.prctl(3, 0, 0, 0, 0), *resource.getrlimit(resource.RLIMIT_CORE), ok)
    """
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert r.stdout.split() == ["1", "0", "0", "0", "True"]


def test_a_child_of_the_command_does_not_inherit_the_passphrase(tmp_path: Path) -> None:
    from sessionseal import PassphraseProvider, Vault

    vault = tmp_path / "v"
    with Vault.init(vault, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        v.save({"title": "t"})
    # The command as the process's own, with a child started after it has read the passphrase
    # (at exit, as an agent's tool would run after a hook).
    program = """
        import atexit, subprocess, sys
        def child():
            env = subprocess.run(["/usr/bin/env"], capture_output=True, text=True).stdout
            sys.stderr.write("CHILD:" + ",".join(n.partition("=")[0] for n in env.splitlines()) + "\\n")
        atexit.register(child)
        sys.argv = ["sessionseal", "list", "--json"]
        from sessionseal._main import main
        main()
    """
    env = _env(
        HOME=str(tmp_path),
        SESSIONSEAL_VAULT=str(vault),
        SESSIONSEAL_PASSPHRASE=PASSPHRASE,
        SESSIONSEAL_BUNDLE_PASSPHRASE="bundle " + PASSPHRASE,
    )
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr  # the passphrase was read: the vault opened
    assert '"title": "t"' in r.stdout
    names = r.stderr.rpartition("CHILD:")[2].strip().split(",")
    assert "SESSIONSEAL_VAULT" in names  # the child did get the environment...
    assert "SESSIONSEAL_PASSPHRASE" not in names  # ...but not the secrets
    assert "SESSIONSEAL_BUNDLE_PASSPHRASE" not in names


def test_another_process_of_the_user_cannot_read_the_commands_environment(first_user: OSUser, tmp_path: Path) -> None:
    # unsetenv does not scrub the block the kernel copied at execve, which /proc/PID/environ
    # shows; PR_SET_DUMPABLE 0 hands the process's /proc files to root, so that another process
    # of the same user cannot read them.  Both processes run as ssalice (root could read anything).
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, first_user.uid, first_user.gid)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv is not installed (util-linux)")
    prefix = [
        setpriv,
        f"--reuid={first_user.uid}",
        f"--regid={first_user.gid}",
        "--clear-groups",
        "--",
        str(first_user.python),
    ]
    env = _env(
        HOME=str(home),
        SESSIONSEAL_VAULT=str(home / "v"),
        SESSIONSEAL_PASSPHRASE=PASSPHRASE,
        PYTHONDONTWRITEBYTECODE="1",
    )
    proc = subprocess.Popen(
        [*prefix, "-m", "sessionseal", "save", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_reading_stdin(proc.pid)
        assert _core_limit(proc.pid) == ["0", "0"]
        reader = first_user.run(
            f"""
import sys
try:
    data = open('/proc/{proc.pid}/environ', 'rb').read()
except PermissionError:
    print('denied')
else:
    print('read', {PASSPHRASE.encode()!r} in data)
"""
        )
        assert reader.stdout.strip() == "denied", reader.stdout + reader.stderr
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()
