"""The lean GET (:mod:`sessionseal._s3lean`; docs/design.md, "The S3 client: boto3"), against the
real servers (rclone, which checks SigV4, and moto): it serves reads (and HEADs) without the
client, byte for byte, signed as the client signs; whatever it cannot do whole (a missing key,
refused credentials, a server that is gone, an answer it does not take) is the client's to do,
so the caller sees the client's bytes or the client's one-line error, never one of its own; and
a server that only the client satisfies turns it off after a few reads."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sessionseal import _remote, _s3, _s3lean
from sessionseal.errors import RemoteError
from tests._infra.s3server import Front, S3Server, ask_upstream, both_servers, front, open_store, relay, start_s3_server
from tests._infra.synccapture import (  # noqa: F401  (the module's rclone server's fixtures)
    fixture_module_server,
    fixture_s3_server,
    fixture_server_env,
)

pytestmark = pytest.mark.s3


def _store(server: S3Server, monkeypatch: pytest.MonkeyPatch, endpoint: str | None = None) -> _s3.S3Store:
    return open_store(server, monkeypatch, "lean", endpoint=endpoint)


def _client_reads(store: _s3.S3Store, operation: str = "GetObject") -> list[str]:
    """The *operation* calls the client makes from now on (botocore's public event hook)."""
    calls: list[str] = []

    def seen(params: dict[str, Any], **_: object) -> None:
        if params["Key"].startswith("lean/"):  # not the key the lean GET's set-up presigns
            calls.append(params["Key"])

    store.client.meta.events.register(f"provide-client-params.s3.{operation}", seen)
    return calls


def _client_only(store: _s3.S3Store) -> _s3.S3Store:
    return dataclasses.replace(store, lean=None)


@both_servers
def test_reads_are_served_without_the_client_byte_for_byte(
    server_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(server_env, monkeypatch)
    # Sizes around nothing and a pool's buffer; names the client quotes ('~' and '/' it does not).
    made = {f"lean/{name}": os.urandom(n) for name, n in [("a", 0), ("b/c", 1), ("d~e f+g=h", 70_000)]}
    for key, data in made.items():
        store.put(key, data)
    calls = _client_reads(store)
    with_threads: dict[str, bytes] = {}
    threads = [threading.Thread(target=lambda k=k: with_threads.update({k: store.get(k)})) for k in list(made) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert with_threads == made and {k: store.get(k) for k in made} == made
    # HEAD too (a push's check before a first PUT): 404 is an answer, no.
    heads = _client_reads(store, "HeadObject")
    assert all(store.exists(k) for k in made) and not store.exists("lean/nothing-here")
    assert calls == heads == [] and store.lean is not None and store.lean.on


@both_servers
def test_a_missing_key_is_the_clients_one_line_error(server_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(server_env, monkeypatch)
    calls = _client_reads(store)
    with pytest.raises(RemoteError) as lean:
        store.get("lean/nothing-here")
    with pytest.raises(RemoteError) as plain:
        _client_only(store).get("lean/nothing-here")
    assert str(lean.value) == str(plain.value) and "NoSuchKey" in str(lean.value)
    # The client was asked, and failed too: the lean GET stays on.
    assert calls == ["lean/nothing-here"] * 2 and store.lean is not None and store.lean.on


def test_a_wrong_secret_is_refused_as_the_client_refuses_it(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rclone checks SigV4 (moto does not): the lean GET's signature is refused as the client's is.
    store = _store(s3_server, monkeypatch)
    store.put("lean/x", b"x")
    wrong = "W" * 40
    monkeypatch.setitem(s3_server.extra_env, "AWS_SECRET_ACCESS_KEY", wrong)
    refused = _store(s3_server, monkeypatch)
    with pytest.raises(RemoteError) as lean:
        refused.get("lean/x")
    with pytest.raises(RemoteError) as plain:
        _client_only(refused).get("lean/x")
    assert str(lean.value) == str(plain.value) and "SignatureDoesNotMatch" in str(lean.value)
    assert wrong not in str(lean.value) and s3_server.access_key not in str(lean.value)
    with pytest.raises(RemoteError) as lean_head:
        refused.exists("lean/x")
    with pytest.raises(RemoteError) as plain_head:
        _client_only(refused).exists("lean/x")
    assert str(lean_head.value) == str(plain_head.value) and "refused the credentials" in str(lean_head.value)


def test_a_stopped_server_cannot_be_reached_as_by_the_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_s3_server(tmp_path / "s3")
    try:
        store = _store(server, monkeypatch)
        store.put("lean/x", b"x")
        assert store.get("lean/x") == b"x"  # a connection of the lean GET's pool, kept alive
    finally:
        server.stop()
    with pytest.raises(RemoteError) as lean:
        store.get("lean/x")
    with pytest.raises(RemoteError) as plain:
        _client_only(store).get("lean/x")
    assert str(lean.value) == str(plain.value) and "cannot reach" in str(lean.value)


class _ClientOnly(Front):
    """A loopback front for a server that passes on what boto3 sends (by its User-Agent) and
    answers anything else as :attr:`answer` says: 503, or a body cut short of its length."""

    answer: ClassVar[str] = "503"
    others: ClassVar[list[str]] = []

    def forward(self) -> None:
        status, headers, payload = ask_upstream(self, self.upstream)
        if "Boto3/" not in self.headers.get("User-Agent", ""):
            self.others.append(self.path)
            if self.answer == "503":
                self.refuse(503, drain=False)
                return
            self.close_connection = True  # the length promised, fewer bytes, then the end
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[:-1])
            return
        relay(self, status, headers, payload)


def _front(server: S3Server, answer: str) -> contextlib.AbstractContextManager[str]:
    return front(_ClientOnly, server, answer=answer, others=[])


@both_servers
@pytest.mark.parametrize("answer", ["503", "short"])
def test_a_server_only_the_client_satisfies_turns_the_lean_get_off(
    server_env: S3Server, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    # The front keeps the Host header it got, so rclone checks the signature made for the front.
    made = {f"lean/{i}": os.urandom(1000 + i) for i in range(_s3lean.MISSES + 2)}
    for key, data in made.items():
        server_env.write(key, data)
    with _front(server_env, answer) as endpoint:
        store = _store(server_env, monkeypatch, endpoint=endpoint)
        calls = _client_reads(store)
        assert {k: store.get(k) for k in made} == made  # never a short body: the client's bytes
        # Each of the first MISSES reads tried the lean GET first; then only the client.
        assert len(_ClientOnly.others) == _s3lean.MISSES and calls == list(made)
    assert store.lean is not None and not store.lean.on


def _offline(monkeypatch: pytest.MonkeyPatch, *, credentials: bool) -> None:
    """No AWS configuration of the machine's; fake keys, or none at all."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if credentials:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


@pytest.mark.parametrize(
    ("bucket", "endpoint", "region"),
    [
        ("sessionseal-test", "http://127.0.0.1:9", None),  # path style, as open_store sets with an endpoint
        ("sessionseal-test", None, "eu-west-1"),  # AWS: virtual host
        ("sessionseal-test", None, "us-east-1"),
        ("with.dots", None, "eu-west-1"),  # AWS, a name that is no DNS label over TLS: path style
    ],
)
def test_the_lean_get_asks_where_the_client_would(
    monkeypatch: pytest.MonkeyPatch, bucket: str, endpoint: str | None, region: str | None
) -> None:
    # Presigning is offline: no request is sent. Names the client quotes, and ones it does not.
    _offline(monkeypatch, credentials=True)
    store = _s3.open_store(_remote.parse_url(f"s3://{bucket}/p"), endpoint=endpoint, profile=None, region=region)
    assert store.lean is not None
    for key in ["p/d/0a1b/o/" + "f" * 64, "p/a b+c~d=e&f?g#h", "p/\u00fc/%41/./x"]:
        presigned = store.client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
        assert store.lean.url(key) == presigned.split("?", 1)[0]


def test_without_credentials_the_lean_get_is_off_and_the_client_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    _offline(monkeypatch, credentials=False)
    store = _s3.open_store(
        _remote.parse_url("s3://sessionseal-test/p"), endpoint="http://127.0.0.1:9", profile=None, region=None
    )
    with pytest.raises(RemoteError, match="no AWS credentials found"):
        store.get("p/x")
    assert store.lean is not None and not store.lean.on and store.lean.url("p/x") is None


def test_tls_verification_is_what_the_client_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore: the session's ca_bundle (AWS_CA_BUNDLE, the profile's) wins, else
    # REQUESTS_CA_BUNDLE, else the default bundle (True); never off.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    assert _s3lean.verify_value(None) is True
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/requests.pem")
    assert _s3lean.verify_value(None) == "/etc/ssl/requests.pem"
    assert _s3lean.verify_value("/etc/ssl/aws.pem") == "/etc/ssl/aws.pem"
