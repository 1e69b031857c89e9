"""The ``sessionseal`` command in a process of its own, forked from a server that imported it once.

tests/integration/_cli.py starts a new interpreter per command: about 0.3 s of CPU before the
command does anything, and one to two seconds of wall time on a loaded machine. The keychain
tests run dozens of commands each, and what they test is what happens between commands (a key
in the Secret Service, a vault head, a file on disk), not interpreter start-up. Here a *server*
process imports ``sessionseal`` and its command line once, and forks one child per command. The
child is a separate process with nothing cached (the server never opens a vault nor touches a
keyring): it takes the command's environment, working directory, stdin, stdout and stderr, runs
:func:`sessionseal._main.main` exactly as ``python -m sessionseal`` does (the process hardening
and the secret environment variables included) and exits through the interpreter, atexit
handlers and all. Its exit status is the command's, a signal as a negative code as
:mod:`subprocess` reports it.

Tests about start-up, process hardening, signals or other users keep tests/integration/_cli.py.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import IO, Any

from tests.integration._cli import SRC, Ran

__all__ = ["CliServers", "sessionseal"]

REPO = SRC.parent


def _child(req: Mapping[str, Any], fds: tuple[int, ...]) -> None:
    """In the forked child: become the command, then run it (ends by SystemExit)."""
    for fd, target in zip(fds, (0, 1, 2), strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    # Fresh text streams over the command's descriptors, as a new interpreter opens them
    # (LANG=C.UTF-8: UTF-8; stderr with backslashreplace).
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )
    sys.argv = [str(SRC / "sessionseal" / "__main__.py"), *req["args"]]
    from sessionseal._main import main

    main()
    sys.exit(0)  # through the interpreter's exit, as the real command ends


def serve(*, s3: bool = False) -> None:
    """Answer requests on stdin (one JSON line each) with the command's exit code and output.

    With *s3*, boto3's and botocore's modules are imported too (a sync command's): code only,
    no settings, client or credentials, so each command still makes its own S3 client from its
    own environment."""
    if s3:
        import boto3
        import botocore.client
        import botocore.session

        del boto3, botocore
    import sessionseal
    import sessionseal._main
    import sessionseal.cli

    sessionseal.Session  # noqa: B018 - pydantic models built before forking
    # What nearly every command imports lazily (the vault, its config and audit log, keyring and
    # its Secret Service backend): over a second of imports per command on a loaded machine.
    # Importing them reads no environment and opens nothing: the child still picks its keyring
    # backend, reads its config and opens its vault itself, from the command's environment.
    import keyring.backends.SecretService  # noqa: F401

    import sessionseal._config
    import sessionseal._vault._facade

    replies = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        files = [tempfile.TemporaryFile() for _ in range(3)]  # noqa: SIM115 - closed below
        files[0].write(str(req["input"] or "").encode())
        files[0].seek(0)
        replies.flush()
        pid = os.fork()
        if pid == 0:
            try:
                _child(req, tuple(os.dup(f.fileno()) for f in files))
            except SystemExit:
                raise
            except BaseException:  # the command crashed: a traceback and exit 1, as Python does
                import traceback

                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        out, err = (_read(f) for f in files[1:])
        for f in files:
            f.close()
        replies.write(json.dumps({"code": os.waitstatus_to_exitcode(status), "out": out, "err": err}) + "\n")
        replies.flush()


def _read(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read().decode()


class _Server:
    def __init__(self, *, s3: bool = False) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{SRC}{os.pathsep}{REPO}",
        }
        for name in ("SESSIONSEAL_CACHE_DIR", "TMPDIR"):
            if name in os.environ:
                env[name] = os.environ[name]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from tests._infra.forkcli import serve; serve(s3={s3})"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )

    def run(self, req: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired(["sessionseal", *req["args"]], timeout)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the command server died (rc={self.proc.poll()})")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                if pipe is not None:
                    pipe.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_server: _Server | None = None


def _get_server() -> _Server:
    global _server
    if _server is None or _server.proc.poll() is not None:
        _server = _Server()
        atexit.register(_server.close)
    return _server


def sessionseal(*args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 60) -> Ran:
    """tests/integration/_cli.py's ``sessionseal``, the command forked from the server."""
    return _run(_get_server(), args, env, input, timeout)


def _run(server: _Server, args: tuple[str, ...], env: Mapping[str, str], input: str | None, timeout: float) -> Ran:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": str(SRC), **env}
    start = time.monotonic()
    req = {"args": list(args), "env": full, "input": input, "cwd": os.getcwd()}
    reply = server.run(req, timeout)
    return Ran(int(reply["code"]), str(reply["out"]), str(reply["err"]), time.monotonic() - start)


class CliServers:
    """Named command servers with the S3 client's modules imported (the sync tests' devices): a
    server runs one command at a time, so devices whose commands must overlap (concurrent
    ``sync`` rounds) each get one; :meth:`run` forks the command from the server of that name."""

    def __init__(self, *names: str) -> None:
        self._servers = {name: _Server(s3=True) for name in names}

    def run(self, name: str, *args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 60) -> Ran:
        """:func:`sessionseal`, from the server *name* (safe beside other names' calls)."""
        return _run(self._servers[name], args, env, input, timeout)

    def close(self) -> None:
        for server in self._servers.values():
            server.close()
