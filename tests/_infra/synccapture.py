"""Sync vaults set up once per test module and restored per test (tests/unit/test_sync_epochs.py
and its neighbours).

A module's tests that start from the same vaults on the same remote (``three``: A, B and C
enrolled and pulled) built them again per test, against a new rclone server: about two thirds
of each test's time.  Here they are built once per module against one server, then captured
(the vault directories, the in-memory keychain's entries, every object of the bucket); each
test gets copies of the directories, a keychain of its own holding the captured entries, and
the bucket put back as captured through the server's API (so rclone's listing cache sees
every change, as it does the tests').  The tests stay independent of each other and of their
order: each starts from the same state, as if the vaults had just been built for it.

The vaults keep the remote's URL and endpoint in their config: a restored copy talks to the
same server and bucket as the captured one, so the server is the module's and only one test
of the module uses it at a time (pytest-xdist's ``--dist loadfile`` keeps a module on one
worker).  The process caches a vault's master keys and keychain head by vault id
(:meth:`KeychainProvider.load`): the restored copies have the captured vault ids, so each
test reloads them from its keychain (:meth:`KeychainProvider.reload`).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sessionseal import KeychainProvider, Vault
from tests._infra import syncscenario, syncvaults
from tests._infra.s3server import S3Server
from tests.memkeyring import MemoryKeyring

# A module uses the fixtures by importing the fixture_* functions (pytest registers them under
# their names: module_server, module_server_env, and s3_server and server_env, which override
# conftest's for the module).
__all__ = [
    "Captured",
    "build_and_capture",
    "capture",
    "fixture_module_server",
    "fixture_module_server_env",
    "fixture_s3_server",
    "fixture_server_env",
    "reset_bucket",
    "restore",
]


@pytest.fixture(scope="module", name="module_server")
def fixture_module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One rclone server for the module's tests (stopped after the module)."""
    with syncscenario.module_server(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module", name="module_server_env")
def fixture_module_server_env(module_server: S3Server) -> Iterator[S3Server]:
    """:func:`module_server` with its credentials in the environment for the module's set-up
    (as ``server_env`` sets them per test)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in module_server.env().items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        yield module_server


@pytest.fixture(name="s3_server")
def fixture_s3_server(s3_backend: str, request: pytest.FixtureRequest) -> Iterator[S3Server]:
    """``s3_server`` on the module's rclone server, its bucket emptied first (as a new server's
    is); moto's as conftest's (a bucket of its own on the session's server, emptied after)."""
    if s3_backend == "moto":
        server: S3Server = request.getfixturevalue("moto_process").bucket()
        try:
            yield server
        finally:
            if server.process.poll() is None:
                reset_bucket(server, {})
        return
    shared: S3Server = request.getfixturevalue("module_server")
    reset_bucket(shared, {})
    yield shared


@pytest.fixture(name="server_env")
def fixture_server_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``server_env`` on the module's server: its credentials in the environment for the test."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server


@dataclass(frozen=True)
class Captured:
    """Vaults as a set-up left them (closed), their keychain entries and the bucket's objects."""

    root: Path
    names: tuple[str, ...]
    vault_ids: tuple[uuid.UUID, ...]
    keyrings: dict[str, dict[tuple[str, str], str]]
    objects: dict[str, bytes]


def capture(
    server: S3Server, root: Path, vaults: Mapping[str, Vault], keyrings: Mapping[str, MemoryKeyring]
) -> Captured:
    """Capture *vaults* (each the directory ``root / name``, closed by now, its key in
    ``keyrings[name]``) with the bucket."""
    objects = {key: server.read(key) for key in server.objects()}
    ids = tuple(v.vault_id for v in vaults.values())
    kept = {name: dict(keyrings[name].store) for name in vaults}
    return Captured(root, tuple(vaults), ids, kept, objects)


def build_and_capture(
    server: S3Server,
    factory: pytest.TempPathFactory,
    build: Callable[[Path, dict[str, MemoryKeyring]], tuple[Vault, ...]],
    names: tuple[str, ...] = ("a", "b"),
) -> Captured:
    """A module's ``captured`` fixture: the vaults *build* makes under a new root (``root / name``
    each, in the order of *names*, its key in the new in-memory keychain of its name), closed
    and captured with the bucket."""
    root = factory.mktemp("captured")
    keyrings = {name: MemoryKeyring() for name in names}
    vaults = build(root, keyrings)
    for v in vaults:
        v.close()
    return capture(server, root, dict(zip(names, vaults, strict=True)), keyrings)


def three_device_fixtures(prefix: str, *, b_pushes: bool = False) -> tuple[Any, Any, Any]:
    """A module's ``kr``, ``captured`` and ``three`` fixtures (assign them to those names):
    :func:`syncvaults.three`'s devices A, B and C under *prefix*, built once for the module and
    captured with the bucket; each test gets copies of them, opened with keys in its ``kr``."""

    @pytest.fixture
    def kr() -> MemoryKeyring:
        return MemoryKeyring()

    @pytest.fixture(scope="module")
    def captured(module_server_env: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Captured:
        root, keys = tmp_path_factory.mktemp("three"), MemoryKeyring()
        with syncvaults.three(root, module_server_env, keys, prefix, b_pushes=b_pushes) as (a, b, c):
            pass
        return capture(module_server_env, root, {"a": a, "b": b, "c": c}, dict.fromkeys("abc", keys))

    @pytest.fixture
    def three(
        captured: Captured, tmp_path: Path, server_env: S3Server, kr: MemoryKeyring
    ) -> Iterator[tuple[Vault, ...]]:
        yield from restore(captured, server_env, tmp_path, dict.fromkeys("abc", kr))

    return kr, captured, three


def reset_bucket(server: S3Server, objects: Mapping[str, bytes]) -> None:
    """Put the bucket back to *objects*: everything the server lists is deleted and the captured
    objects written, all through the API; for rclone, files a test dropped into its directory
    behind the server's back are removed too (the server never listed them)."""
    client = server.client
    listed: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=server.bucket):
        listed.extend(o["Key"] for o in page.get("Contents", ()))
    for key in listed:
        client.delete_object(Bucket=server.bucket, Key=key)
    if server.kind == "rclone":
        for path in (server.root / server.bucket).rglob("*"):
            if path.is_file():
                path.unlink()
    for key, data in objects.items():
        client.put_object(Bucket=server.bucket, Key=key, Body=data)


def restore(
    captured: Captured,
    server: S3Server,
    tmp_path: Path,
    keyrings: Mapping[str, MemoryKeyring],
    open_vault: Callable[[Path], Vault] | None = None,
) -> Iterator[tuple[Vault, ...]]:
    """Copies of the captured vaults in *tmp_path* (same names), each opened with its key in
    ``keyrings[name]`` (which gets the captured entries), or with *open_vault* (a passphrase
    vault's), the bucket put back as captured; closed after."""
    reset_bucket(server, captured.objects)
    for name in captured.names:
        keyrings[name].store.clear()
    for name in captured.names:
        keyrings[name].store.update(captured.keyrings[name])
    # The process caches keys and keychain head by vault id: another test's copy left its own.
    for name, vault_id in zip(captured.names, captured.vault_ids, strict=True):
        if captured.keyrings[name]:  # a passphrase vault has no entry (and nothing cached)
            KeychainProvider(backend=keyrings[name]).reload(vault_id)
    opened: list[Vault] = []
    try:
        for name in captured.names:
            shutil.copytree(captured.root / name, tmp_path / name, symlinks=True)
            path = tmp_path / name
            if open_vault is not None:
                opened.append(open_vault(path))
            else:
                opened.append(Vault.open(path, key_provider=KeychainProvider(backend=keyrings[name])))
        yield tuple(opened)
    finally:
        for v in opened:
            v.close()
