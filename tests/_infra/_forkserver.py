"""The fork server behind the tests' process harnesses: crash.py (the random-kill workers),
rollback.py (the rollback matrix's operations), forkscript.py (kill tests' scripts) and
forkcli.py (the ``sessionseal`` command).

Starting an interpreter and importing sessionseal costs about 0.5-0.8 s of CPU a process; these
harnesses start hundreds. A *server* is one interpreter that imports sessionseal (and its user's
*preload*, modules only: code, no state) once, then forks a child per request. Each child is
still a real, separate process (its own memory and descriptors; a SIGKILL kills it and nothing
else) that starts with nothing cached: the server opens no vault, reads no key or environment
setting, starts no thread and patches nothing, so what a child sees of a vault is what a freshly
started program sees, and what a child patches (a kill point) stays in that child.

The protocol, one JSON line a request on the server's stdin and one a reply on its stdout:

``{"cmd": "spawn", "in": path, "out": path, "err": path, ...}`` -> ``{"pid": n}``
    fork; the child takes stdin, stdout and stderr from and to the paths (files or FIFOs,
    opened in that order; stdin and stdout /dev/null when not given, stderr the server's), then
    runs the user's *child* function with the request. Its return value is the exit status
    (:func:`os._exit`: no teardown); a :class:`SystemExit` it raises exits through the
    interpreter instead (atexit handlers and all, as a command ends); anything else it raises
    is printed to its stderr and exits 1.
``{"cmd": "wait", "pid": n, "timeout": s}`` -> ``{"status": code}``
    the child's exit status as :func:`os.waitstatus_to_exitcode` gives it (``-SIGKILL`` for one
    killed so), or None if it still runs after *timeout* seconds.
anything else (``{"cmd": "quit"}``)
    the server ends.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"

#: A child's body: runs in the forked child, returns its exit status.
ChildFn = Callable[[dict[str, Any]], int]


# -- the server's side -----------------------------------------------------------------------


def serve(child: ChildFn, *, preload: Iterable[str] = (), optional: Iterable[str] = ()) -> None:
    """Import sessionseal and *preload* (``module`` or ``module:attribute``), and *optional*
    (modules that may be missing on this platform), then answer requests until told to quit."""
    import sessionseal

    sessionseal.Session  # noqa: B018 - pydantic models built before forking
    for name in preload:
        module, _, attr = name.partition(":")
        loaded = importlib.import_module(module)
        if attr:
            getattr(loaded, attr)
    for name in optional:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for line in sys.stdin:
        req = json.loads(line)
        reply: dict[str, Any]
        if req["cmd"] == "spawn":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _in_child(child, req)
            reply = {"pid": pid}
        elif req["cmd"] == "wait":
            reply = {"status": wait_child(req["pid"], req["timeout"])}
        else:
            return
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def _in_child(child: ChildFn, req: dict[str, Any]) -> NoReturn:
    code = 1
    try:
        _stdio(req)
        code = child(req)
    except SystemExit:
        raise  # out of serve(): the interpreter's own exit
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _stdio(req: Mapping[str, Any]) -> None:
    """The child's descriptors 0, 1 and 2 from the request's paths; new stream objects over them
    (the server's hold its buffered requests and replies), as a new interpreter opens them."""
    for fd, name, flags in (
        (0, "in", os.O_RDONLY),
        (1, "out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, "err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        path = req.get(name)
        if path is None and fd == 2:
            continue  # the server's stderr: the test's
        f = os.open(path or os.devnull, flags, 0o600)
        os.dup2(f, fd)
        os.close(f)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's own
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115


def wait_child(pid: int, timeout: float) -> int | None:
    """In a fork server: the exit status of its child *pid* (``-SIGKILL`` for one killed by it,
    as :func:`os.waitstatus_to_exitcode` gives it), or None if it has not ended in *timeout*."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3, or not Linux: poll
        fd = -1
    if fd >= 0:
        try:
            select.select([fd], [], [], timeout)  # readable once the child has ended
        finally:
            os.close(fd)
        done, raw = os.waitpid(pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(raw) if done else None
    end = time.monotonic() + timeout
    while True:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(raw)
        if time.monotonic() > end:
            return None
        time.sleep(0.005)


# -- the tests' side -------------------------------------------------------------------------


@dataclass
class Result:
    """What :class:`subprocess.CompletedProcess` gives the tests: exit status and output."""

    returncode: int
    stdout: str
    stderr: str


class Server:
    """A fork server started with *entry* (Python code that calls :func:`serve`) in *env*
    (the repository's ``src`` and root on its PYTHONPATH); a child's files go to *work* (a
    directory of its own when None, removed by :meth:`close`)."""

    def __init__(self, entry: str, env: Mapping[str, str], work: Path | None = None) -> None:
        self._own_work = work is None
        self.work = Path(tempfile.mkdtemp(prefix="forkserver-")) if work is None else work
        self.n = 0
        self._buf = b""
        self.proc = subprocess.Popen(
            [sys.executable, "-c", entry],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**env, "PYTHONPATH": f"{SRC}{os.pathsep}{REPO}"},
            cwd=REPO,
        )

    def ask(self, req: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        """Send a request, return its reply."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req, default=str).encode() + b"\n")
        self.proc.stdin.flush()
        return self._reply(timeout)

    def _reply(self, timeout: float) -> dict[str, Any]:
        # Lines read off the raw descriptor: a buffered reader could hold the next reply
        # while select() waits for the descriptor.
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise TimeoutError(f"the fork server did not answer within {timeout:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError(f"the fork server exited (rc={self.proc.poll()})")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def spawn(self, req: Mapping[str, Any]) -> int:
        """Fork a child for *req* (its stdio paths under ``in``, ``out``, ``err``); its pid."""
        return int(self.ask({**req, "cmd": "spawn"}, 30.0)["pid"])

    def wait(self, pid: int, timeout: float) -> int | None:
        """The child's exit status (``-SIGKILL`` when killed so), None if it still runs after *timeout*."""
        status = self.ask({"cmd": "wait", "pid": pid, "timeout": timeout}, timeout + 30)["status"]
        return None if status is None else int(status)

    def paths(self, *names: str) -> list[Path]:
        """New paths in the work directory for a child's files, one per name."""
        self.n += 1
        return [self.work / f"child-{self.n}.{name}" for name in names]

    def run(self, req: Mapping[str, Any], *, input: str | None = None, timeout: float = 300.0) -> Result:
        """Fork a child for *req* with *input* on its stdin and its output in files; wait for it
        to end (killed, and :class:`TimeoutError`, when it runs past *timeout*)."""
        out, err, stdin = self.paths("out", "err", "in")
        files = {"out": str(out), "err": str(err)}
        if input is not None:
            stdin.write_text(input, encoding="utf-8")
            files["in"] = str(stdin)
        try:
            pid = self.spawn({**req, **files})
            status = self.wait(pid, timeout)
            if status is None:
                os.kill(pid, signal.SIGKILL)  # a hung child must not outlive the test
                self.wait(pid, 30)
                raise TimeoutError(f"the fork server's child did not end within {timeout:g} s")
            return Result(status, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8"))
        finally:
            for path in (out, err, stdin):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Tell the server to quit (killed if it does not within 10 s); the work directory
        removed if it is the server's own."""
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"cmd": "quit"}\n')
            self.proc.stdin.flush()
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                if pipe is not None:
                    pipe.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._own_work:
            shutil.rmtree(self.work, ignore_errors=True)
