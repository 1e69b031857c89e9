"""A fork server for tests whose child processes run a short Python script (the kill tests:
tests/integration/test_fts_crash.py, test_processes.py, test_crypto_erase.py).

Starting an interpreter and importing sessionseal costs about 0.8 s of CPU per child; a kill test
starts dozens. :class:`Forker` starts one interpreter that imports sessionseal once and forks
a child per request: each child is still a real, separate process (its own memory, its own
descriptors; a SIGKILL kills it and nothing else) that has opened no vault, so what it sees
of a vault is what a freshly started program sees. The child runs *code* as ``__main__``
with ``sys.argv`` set, its stdout and stderr going to files; its exit status is
:func:`os.waitstatus_to_exitcode`'s (``-SIGKILL`` for a process killed by that signal).

The server itself never opens a vault, starts no thread and patches nothing: the patches a
child script makes (kill points) stay in that child. The server is tests/_infra/_forkserver.py's;
this module is what its children run and the ``Popen``-like view of them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from tests._infra import _forkserver
from tests._infra._forkserver import Result

__all__ = ["Child", "Forker", "Result", "forker", "serve"]


def _child(req: dict[str, Any]) -> int:
    """In the forked child (stdio already the request's): *code* as ``__main__`` with *argv*."""
    sys.argv = ["-c", *req["argv"]]
    code = 0
    try:
        exec(compile(req["code"], "<child>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})  # noqa: S102
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    return code


def serve() -> None:
    """The server: sessionseal and the full-text index's modules imported once."""
    _forkserver.serve(_child, preload=("sessionseal._fts", "sessionseal._vault._fulltext"))


class Child:
    """A forked child seen through the part of :class:`subprocess.Popen` the tests use."""

    def __init__(self, forker: Forker, pid: int) -> None:
        self.forker = forker
        self.pid = pid
        self.returncode: int | None = None
        self.stdin: TextIO | None = None
        self.stdout: TextIO | None = None
        self.stderr: TextIO | None = None

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # not reaped yet: the pid is still this child's
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.forker.wait(self.pid, 0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.forker.wait(self.pid, 3600.0 if timeout is None else timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"child {self.pid}", timeout or 0)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Close stdin, read stdout and stderr to their ends, wait for the exit."""
        if self.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.stdin.close()
        err: list[str] = []
        assert self.stdout is not None and self.stderr is not None
        drain = threading.Thread(target=lambda: err.append(self.stderr.read() if self.stderr else ""), daemon=True)
        drain.start()
        out = self.stdout.read()
        drain.join(timeout)
        self.wait(timeout)
        self.close()
        return out, "".join(err)

    def close(self) -> None:
        for pipe in (self.stdin, self.stdout, self.stderr):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()


class Forker:
    """The kill tests' fork server (:mod:`tests._infra._forkserver`); children's files in *work*."""

    def __init__(self, work: Path) -> None:
        self.server = _forkserver.Server("from tests._infra.forkscript import serve; serve()", os.environ, work)

    def spawn(self, code: str, argv: list[str], *, out: Path, err: Path, stdin: Path | None = None) -> int:
        """Fork a child running *code* with *argv*; its stdio to and from these paths."""
        req: dict[str, Any] = {"code": code, "argv": argv, "out": str(out), "err": str(err)}
        if stdin is not None:
            req["in"] = str(stdin)
        return self.server.spawn(req)

    def wait(self, pid: int, timeout: float) -> int | None:
        """The child's exit status (``-SIGKILL`` when killed so), None if it still runs after *timeout*."""
        return self.server.wait(pid, timeout)

    def run(self, code: str, *argv: str, timeout: float = 300.0) -> Result:
        """Run *code* in a forked child with *argv*; wait for it to end."""
        return self.server.run({"code": code, "argv": list(argv)}, timeout=timeout)

    def popen(self, code: str, *argv: object, stdin: bool = False) -> Child:
        """A child whose stdout and stderr (and stdin, with *stdin*) are pipes, as
        ``subprocess.Popen(..., stdout=PIPE, stderr=PIPE, text=True)`` gives."""
        fifo_out, fifo_err, fifo_in = self.server.paths("out", "err", "in")
        for fifo in (fifo_out, fifo_err, *([fifo_in] if stdin else [])):
            os.mkfifo(fifo, 0o600)
        pid = self.spawn(code, [str(a) for a in argv], out=fifo_out, err=fifo_err, stdin=fifo_in if stdin else None)
        # The child opens stdin, then stdout, then stderr: the same order here, or both block.
        child = Child(self, pid)
        if stdin:
            child.stdin = open(fifo_in, "w")  # noqa: SIM115 - closed by the Child
        child.stdout = open(fifo_out)  # noqa: SIM115
        child.stderr = open(fifo_err)  # noqa: SIM115
        for fifo in (fifo_out, fifo_err, *([fifo_in] if stdin else [])):
            fifo.unlink()
        return child

    def close(self) -> None:
        self.server.close()


@contextlib.contextmanager
def forker(work: Path) -> Iterator[Forker]:
    f = Forker(work)
    try:
        yield f
    finally:
        f.close()
