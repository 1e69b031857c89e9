"""The ``sessionseal`` command in a process of its own, forked from a server that imported it once.

tests/integration/_cli.py starts a new interpreter per command: about 0.3 s of CPU before the
command does anything, and one to two seconds of wall time on a loaded machine. The keychain
tests run dozens of commands each, and what they test is what happens between commands (a key
in the Secret Service, a vault head, a file on disk), not interpreter start-up. Here a *server*
process (tests/_infra/_forkserver.py) imports ``sessionseal`` and its command line once, and
forks one child per command. The child is a separate process with nothing cached (the server
never opens a vault nor touches a keyring): it takes the command's environment, working directory, stdin, stdout and stderr, runs
:func:`sessionseal._main.main` exactly as ``python -m sessionseal`` does (the process hardening
and the secret environment variables included) and exits through the interpreter, atexit
handlers and all. Its exit status is the command's, a signal as a negative code as
:mod:`subprocess` reports it.

Tests about start-up, process hardening, signals or other users keep tests/integration/_cli.py.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from tests._infra import _forkserver
from tests.integration._cli import SRC, Ran

__all__ = ["CliServers", "sessionseal"]


def _command(req: dict[str, Any]) -> int:
    """In the forked child (stdio already the command's): become the command, then run it
    (ends by SystemExit, through the interpreter's exit as the real command ends)."""
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    sys.argv = [str(SRC / "sessionseal" / "__main__.py"), *req["args"]]
    from sessionseal._main import main

    main()
    sys.exit(0)


#: What nearly every command imports lazily (the vault, its config and audit log, keyring and
#: its Secret Service backend): over a second of imports per command on a loaded machine.
#: Importing them reads no environment and opens nothing: the child still picks its keyring
#: backend, reads its config and opens its vault itself, from the command's environment.
PRELOAD = (
    "sessionseal._main",
    "sessionseal.cli",
    "keyring.backends.SecretService",
    "sessionseal._config",
    "sessionseal._vault._facade",
)
#: A sync command's too, with *s3*: code only, no settings, client or credentials, so each
#: command still makes its own S3 client from its own environment.
PRELOAD_S3 = ("boto3", "botocore.client", "botocore.session")


def serve(*, s3: bool = False) -> None:
    """The command server: the command line and what its commands import, imported once."""
    _forkserver.serve(_command, preload=(*(PRELOAD_S3 if s3 else ()), *PRELOAD))


class _Server(_forkserver.Server):
    def __init__(self, *, s3: bool = False) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        for name in ("SESSIONSEAL_CACHE_DIR", "TMPDIR"):
            if name in os.environ:
                env[name] = os.environ[name]
        super().__init__(f"from tests._infra.forkcli import serve; serve(s3={s3})", env)

    def command(self, req: Mapping[str, Any], input: str | None, timeout: float) -> _forkserver.Result:
        try:
            return self.run(req, input=input, timeout=timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(["sessionseal", *req["args"]], timeout) from None


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
    req = {"args": list(args), "env": full, "cwd": os.getcwd()}
    done = server.command(req, input, timeout)
    return Ran(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


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
