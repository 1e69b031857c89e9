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
child script makes (kill points) stay in that child.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tests._infra.crash import wait_child

REPO = Path(__file__).resolve().parents[2]


def _child(req: dict[str, Any]) -> int:
    """In the forked child: stdin, stdout and stderr from and to the request's paths (files or
    FIFOs; stdin /dev/null when none), then *code* as ``__main__``."""
    for fd, name, flags in (
        (0, "in", os.O_RDONLY),
        (1, "out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, "err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        f = os.open(req.get(name) or os.devnull, flags, 0o600)
        os.dup2(f, fd)
        os.close(f)
    # New stream objects: the server's hold its buffered requests and replies.
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, errors="backslashreplace", buffering=1)  # noqa: SIM115
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
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def serve() -> None:
    """The server's loop: one JSON request a line on stdin, one JSON reply a line on stdout."""
    import sessionseal
    import sessionseal._fts
    import sessionseal._vault._fulltext

    sessionseal.Session  # noqa: B018 - pydantic models built before forking
    for line in sys.stdin:
        req = json.loads(line)
        reply: dict[str, Any]
        if req["cmd"] == "spawn":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = _child(req)
                finally:
                    os._exit(code)
            reply = {"pid": pid}
        elif req["cmd"] == "wait":
            reply = {"status": wait_child(req["pid"], req["timeout"])}
        else:
            return
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


@dataclass
class Result:
    """What :class:`subprocess.CompletedProcess` gives the tests: exit status and output."""

    returncode: int
    stdout: str
    stderr: str


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
    def __init__(self, work: Path) -> None:
        self.work = work
        self.n = 0
        self.buf = b""
        env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests._infra.forkscript import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )

    def _ask(self, req: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._reply(timeout)

    def spawn(self, code: str, argv: list[str], *, out: Path, err: Path, stdin: Path | None = None) -> int:
        """Fork a child running *code* with *argv*; its stdio to and from these paths."""
        req = {"cmd": "spawn", "code": code, "argv": argv, "out": str(out), "err": str(err)}
        if stdin is not None:
            req["in"] = str(stdin)
        return int(self._ask(req, 30.0)["pid"])

    def wait(self, pid: int, timeout: float) -> int | None:
        """The child's exit status (``-SIGKILL`` when killed so), None if it still runs after *timeout*."""
        status = self._ask({"cmd": "wait", "pid": pid, "timeout": timeout}, timeout + 30)["status"]
        return None if status is None else int(status)

    def _paths(self, *names: str) -> list[Path]:
        self.n += 1
        return [self.work / f"child-{self.n}.{name}" for name in names]

    def run(self, code: str, *argv: str, timeout: float = 300.0) -> Result:
        """Run *code* in a forked child with *argv*; wait for it to end."""
        out, err = self._paths("out", "err")
        pid = self.spawn(code, list(argv), out=out, err=err)
        status = self.wait(pid, timeout)
        if status is None:
            os.kill(pid, signal.SIGKILL)  # a hung child must not outlive the test
            self.wait(pid, 30)
            raise TimeoutError("the fork server's child did not end in time")
        result = Result(status, out.read_text(), err.read_text())
        out.unlink()
        err.unlink()
        return result

    def popen(self, code: str, *argv: object, stdin: bool = False) -> Child:
        """A child whose stdout and stderr (and stdin, with *stdin*) are pipes, as
        ``subprocess.Popen(..., stdout=PIPE, stderr=PIPE, text=True)`` gives."""
        fifo_out, fifo_err, fifo_in = self._paths("out", "err", "in")
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

    def _reply(self, timeout: float) -> dict[str, Any]:
        # Lines read off the raw descriptor: a buffered reader could hold the next reply
        # while select() waits for the descriptor.
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise TimeoutError("the fork server's child did not end in time")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError("the fork server exited")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@contextlib.contextmanager
def forker(work: Path) -> Iterator[Forker]:
    f = Forker(work)
    try:
        yield f
    finally:
        f.close()
