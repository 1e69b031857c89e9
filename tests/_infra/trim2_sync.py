"""tests/_infra/forkcli.py's command server, one per device, so that devices' commands run at once.

A forkcli server answers one request at a time (it waits for its child before reading the next
line), so commands sent to it from several threads would run one after the other. A test about
devices syncing *at the same time* gives each device a server of its own: each command is still
a real process of its own, forked from a server that imported the command line once (no
interpreter start-up, which on a loaded machine is most of a short command's wall time), and the
devices' processes overlap as separate ``python -m sessionseal`` processes would. These servers
also import boto3 and botocore's client modules before forking (a sync command imports them
first thing); they load no service model, open no client and read no credentials, so each
command still builds its own S3 client from its own environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping

from tests._infra import forkcli
from tests.integration._cli import SRC, Ran

__all__ = ["CliServers", "serve"]


def serve() -> None:
    """forkcli's server, with the S3 client's modules imported before the first fork."""
    import boto3
    import botocore.client
    import botocore.session

    del boto3, botocore
    forkcli.serve()


class _Server(forkcli._Server):
    """forkcli's server process, started on :func:`serve` with forkcli's environment."""

    def __init__(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{SRC}{os.pathsep}{forkcli.REPO}",
        }
        for name in ("SESSIONSEAL_CACHE_DIR", "TMPDIR"):
            if name in os.environ:
                env[name] = os.environ[name]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests._infra.trim2_sync import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=forkcli.REPO,
        )


class CliServers:
    """Named command servers; :meth:`run` forks the command from the server of that name."""

    def __init__(self, *names: str) -> None:
        self._servers = {name: _Server() for name in names}

    def run(self, name: str, *args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 60) -> Ran:
        """forkcli's ``sessionseal``, from the server *name* (safe beside other names' calls)."""
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": str(SRC), **env}
        start = time.monotonic()
        req = {"args": list(args), "env": full, "input": input, "cwd": os.getcwd()}
        reply = self._servers[name].run(req, timeout)
        return Ran(int(reply["code"]), str(reply["out"]), str(reply["err"]), time.monotonic() - start)

    def close(self) -> None:
        for server in self._servers.values():
            server.close()
