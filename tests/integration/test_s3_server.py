"""The tests' S3 server and the chosen client together (issue 26; docs/design.md, "The S3
client: boto3"): a real ``rclone serve s3`` on loopback, reached through ``sessionseal._s3``.

What the sync will rest on is checked here against the real servers (rclone, and moto where
marked ``both_servers``): objects round-trip byte for byte (no checksum trailer stored inside
them), listing is complete and sorted with sizes, a missing object or bucket is a one-line
``RemoteError``, and conditional writes are *not* honoured by rclone (so no correctness may rest
on them: docs/spec/remote-v1.md, "Layout") but are by moto, where the client's ``If-None-Match:
*`` turns a second writer of a name into a refusal and a resend of the same bytes into a success.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest

from sessionseal import _s3
from sessionseal._remote import parse_url
from sessionseal.errors import RemoteError
from tests._infra.s3server import (
    Front,
    S3Server,
    _free_port,
    both_servers,
    front,
    start_moto_server,
    start_s3_server,
)
from tests.integration._cli import SRC, sessionseal


def _store(server: S3Server, monkeypatch: pytest.MonkeyPatch, bucket: str | None = None) -> _s3.S3Store:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    url = parse_url(f"s3://{bucket or server.bucket}/vaults/me")
    return _s3.open_store(url, endpoint=server.endpoint, profile=None, region=None)


def _listening(port: int) -> list[str]:
    """The local addresses of the TCP sockets listening on *port* (IPv4 and IPv6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc/net/tcp")
@pytest.mark.parametrize("start", [start_s3_server, start_moto_server], ids=["rclone", "moto"])
def test_the_server_listens_on_loopback_only_and_is_gone_after_stop(
    tmp_path: Path, start: Callable[[Path], S3Server]
) -> None:
    server = start(tmp_path)
    port = int(server.endpoint.rsplit(":", 1)[1])
    try:
        assert server.endpoint.startswith("http://127.0.0.1:")
        assert _listening(port) == ["0100007F"]  # 127.0.0.1, and nothing on 0.0.0.0 or ::
    finally:
        server.stop()
    assert server.process.returncode is not None
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


@both_servers
def test_objects_round_trip_byte_for_byte_and_list_in_order(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(s3_server, monkeypatch)
    blobs = {f"vaults/me/d/{i:032x}/o/{os.urandom(32).hex()}": os.urandom(n) for i, n in enumerate([0, 1, 70_000])}
    for key, data in blobs.items():
        store.put(key, data)
    for key, data in blobs.items():
        assert store.get(key) == data
        # Stored exactly as sent (rclone: on disk): no aws-chunked framing or checksum trailer inside.
        assert s3_server.read(key) == data
    assert store.list("vaults/me/") == sorted((k, len(v)) for k, v in blobs.items())
    assert store.list("vaults/other/") == []
    assert all(store.exists(key) for key in blobs) and not store.exists("vaults/me/none")
    first = next(iter(blobs))
    store.delete(first)
    assert not store.exists(first)
    assert [k for k, _ in store.list("vaults/me/")] == sorted(blobs)[1:]


@both_servers
def test_a_missing_object_or_bucket_is_one_line_remote_error(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(s3_server, monkeypatch)
    with pytest.raises(RemoteError) as missing:
        store.get("vaults/me/nothing-here")
    assert "NoSuchKey" in str(missing.value) and "\n" not in str(missing.value)
    nobucket = _store(s3_server, monkeypatch, bucket="no-such-bucket")
    with pytest.raises(RemoteError, match="does not exist"):
        nobucket.put("vaults/me/x", b"x")


def test_wrong_credentials_are_refused_and_never_echoed(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "W" * 40
    s3_server.extra_env["AWS_SECRET_ACCESS_KEY"] = wrong
    store = _store(s3_server, monkeypatch)
    with pytest.raises(RemoteError) as refused:
        store.put("vaults/me/x", b"x")
    assert "SignatureDoesNotMatch" in str(refused.value)
    assert wrong not in str(refused.value) and s3_server.access_key not in str(refused.value)


def test_conditional_writes_are_ignored_by_rclone(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # Why the remote layout never needs compare-and-swap (docs/design.md, "The layout: no
    # compare-and-swap anywhere"): rclone overwrites despite If-None-Match. Should a later
    # rclone honour it, this test says so, and the hardening can be relied on there too.
    store = _store(s3_server, monkeypatch)
    store.put("vaults/me/k", b"first")
    store.client.put_object(Bucket=s3_server.bucket, Key="vaults/me/k", Body=b"second", IfNoneMatch="*")
    assert store.get("vaults/me/k") == b"second"


@pytest.mark.parametrize("s3_backend", ["moto"])
def test_conditional_writes_are_honoured_by_moto(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the hardening relies on where a server honours the header (AWS S3; moto here): a PUT
    # with If-None-Match: * of an existing name is refused with 412 and leaves the object alone.
    from botocore.exceptions import ClientError

    store = _store(s3_server, monkeypatch)
    store.client.put_object(Bucket=s3_server.bucket, Key="vaults/me/k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        store.client.put_object(Bucket=s3_server.bucket, Key="vaults/me/k", Body=b"second", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert store.get("vaults/me/k") == b"first"


@both_servers
def test_a_put_of_a_name_written_once_allows_the_same_bytes_again_only(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, s3_backend: str
) -> None:
    # S3Store.put sends If-None-Match: * (docs/spec/remote-v1.md, "Layout"). The same bytes again
    # (an outbox resent, a retried PUT whose first attempt landed) succeed on both servers.
    store = _store(s3_server, monkeypatch)
    key = "vaults/me/d/" + "ab" * 16 + "/log/" + f"{1:016x}"
    store.put(key, b"entry one")
    store.put(key, b"entry one")
    assert store.get(key) == b"entry one" and s3_server.objects() == {key: 9}
    if s3_backend == "moto":
        # Other bytes: moto refuses (412), the object is read back, compared, and the caller's
        # line is raised; the stored object is untouched.
        with pytest.raises(RemoteError, match=r"^another writer$"):
            store.put(key, b"entry two", taken="another writer")
        with pytest.raises(RemoteError) as generic:
            store.put(key, b"entry two")
        assert "other bytes" in str(generic.value) and "\n" not in str(generic.value)
        assert store.get(key) == b"entry one"
    else:
        # rclone ignores the header and overwrites: why the writers LIST and HEAD before a first
        # PUT and the readers check every chain (docs/design.md, "The layout: no compare-and-swap
        # anywhere"). Should a later rclone honour it, this says so.
        store.put(key, b"entry two", taken="another writer")
        assert store.get(key) == b"entry two"


@both_servers
def test_probe_leaves_nothing_behind(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(s3_server, monkeypatch)
    _s3.probe(store, "vaults/me/d/" + "ab" * 16 + "/probe/" + "cd" * 16)
    assert store.list("") == []
    assert s3_server.objects() == {}


def test_remote_add_as_a_user_runs_it(s3_server: S3Server, tmp_path: Path) -> None:
    # The real command in its own process, a passphrase vault, credentials only in the
    # environment: the remote is checked and kept, and the bucket is left empty.
    env = {
        "SESSIONSEAL_VAULT": str(tmp_path / "vault"),
        "SESSIONSEAL_PASSPHRASE": "a passphrase long enough for init",
        "HOME": str(tmp_path),
        **s3_server.env(),
    }
    assert sessionseal("init", "--key-provider", "passphrase", env=env).code == 0
    url = f"s3://{s3_server.bucket}/team"
    added = sessionseal("remote", "add", "team", url, "--endpoint", s3_server.endpoint, "--json", env=env)
    assert added.code == 0, added.err
    assert json.loads(added.out)["checked"] is True
    assert [p for p in s3_server.root.rglob("*") if p.is_file()] == []
    listed = sessionseal("remote", "list", "--json", env=env)
    assert [r["url"] for r in json.loads(listed.out)["remotes"]] == [url]
    refused = sessionseal("remote", "add", "other", "s3://missing-bucket", "--endpoint", s3_server.endpoint, env=env)
    assert refused.code == 19 and refused.err.count("\n") == 1 and "does not exist" in refused.err


def test_only_a_checked_remote_add_loads_the_s3_client(tmp_path: Path) -> None:
    # boto3 costs a fresh process 130 ms or more to import (docs/design.md, "The S3 client:
    # boto3"): remote list, remove and add --no-check, like every other command, never load it.
    env = {
        "SESSIONSEAL_VAULT": str(tmp_path / "vault"),
        "SESSIONSEAL_PASSPHRASE": "a passphrase long enough for init",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(SRC),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata is asked for
    }
    probe = (
        "import atexit, sys; from sessionseal._main import main; "
        "atexit.register(lambda: print('loaded' if 'botocore' in sys.modules else 'not loaded', file=sys.stderr)); "
        "sys.argv = ['sessionseal', *sys.argv[1:]]; main()"
    )

    def loaded(*args: str, code: int = 0) -> bool:
        ran = subprocess.run(
            [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True, check=False, timeout=120
        )
        assert ran.returncode == code, ran.stderr
        return ran.stderr.strip().splitlines()[-1] == "loaded"

    assert not loaded("init", "--key-provider", "passphrase")
    assert not loaded("remote", "add", "r", "s3://bucket/x", "--no-check")
    assert not loaded("remote", "list", "--json")
    assert not loaded("list", "--json")
    assert not loaded("remote", "remove", "r")
    # The probe sees it when it is loaded: a checked add (to a port where nothing listens).
    dead = f"http://127.0.0.1:{_free_port()}"
    assert loaded("remote", "add", "r", "s3://bucket/x", "--endpoint", dead, code=19)


class _NoConditionalWrites(Front):
    """A loopback front for moto that answers 501 NotImplemented to a PUT with If-None-Match,
    as an S3-compatible server without conditional writes may, and passes everything else on
    (moto checks no signature, so the forwarded request stands as it is)."""

    refused: ClassVar[list[str]] = []
    answer: ClassVar[tuple[int, str]] = (501, "NotImplemented")

    def forward(self) -> None:
        if self.command == "PUT" and "If-None-Match" in self.headers:
            self.refused.append(self.path)
            status, code = self.answer
            self.refuse(status, f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>".encode())
            return
        super().forward()


def _front(s3_server: S3Server, answer: tuple[int, str]) -> contextlib.AbstractContextManager[str]:
    """A :class:`_NoConditionalWrites` front for *s3_server* answering *answer*; its endpoint."""
    return front(_NoConditionalWrites, s3_server, answer=answer, refused=[])


@pytest.mark.parametrize("s3_backend", ["moto"])
def test_a_server_without_conditional_writes_gets_plain_puts(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # If-None-Match is hardening only: a server that answers NotImplemented to it still takes
    # every write, without the header from then on (one refused PUT per store and way, the lean
    # PUT's and the client's, not per write: _s3lean.py).
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    url = parse_url(f"s3://{s3_server.bucket}/vaults/me")
    with _front(s3_server, (501, "NotImplemented")) as endpoint:
        store = _s3.open_store(url, endpoint=endpoint, profile=None, region=None)
        store.put("vaults/me/a", b"first")
        store.put("vaults/me/b", b"second")
        store.put("vaults/me/c", b"third")
        assert store.unsupported == {"if-none-match"} and len(_NoConditionalWrites.refused) == 2
    assert s3_server.read("vaults/me/a") == b"first" and s3_server.read("vaults/me/b") == b"second"
    assert s3_server.read("vaults/me/c") == b"third" and store.lean is not None and store.lean.writes


@pytest.mark.parametrize("s3_backend", ["moto"])
def test_a_conflict_on_a_conditional_put_is_settled_by_what_landed(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AWS S3 answers 409 ConditionalRequestConflict while another write of the name is in
    # progress: what is there is read back; the same bytes are a success, other bytes or nothing
    # a one-line refusal (never a blind overwrite).
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    s3_server.write("vaults/me/k", b"landed")
    url = parse_url(f"s3://{s3_server.bucket}/vaults/me")
    with _front(s3_server, (409, "ConditionalRequestConflict")) as endpoint:
        store = _s3.open_store(url, endpoint=endpoint, profile=None, region=None)
        store.put("vaults/me/k", b"landed")
        with pytest.raises(RemoteError, match="other bytes"):
            store.put("vaults/me/k", b"something else")
        with pytest.raises(RemoteError, match="NoSuchKey"):
            store.put("vaults/me/new", b"never landed")
    assert s3_server.objects() == {"vaults/me/k": 6}
