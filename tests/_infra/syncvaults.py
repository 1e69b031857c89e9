"""Vaults on one remote for the sync tests (tests/unit/test_sync_epochs.py, test_sync_floors.py,
test_device_enroll.py): each with its own in-memory keychain entry, the remote added under a
prefix of the test's, and the enrolment's three steps run through the library as the CLI runs
them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from sessionseal import KeychainProvider, Vault, _device_enroll, _remote, _s3
from tests._infra.s3server import S3Server
from tests.memkeyring import MemoryKeyring


def vault(path: Path, server: S3Server, kr: MemoryKeyring, prefix: str) -> Vault:
    """A new vault at *path* with the remote ``cloud`` at ``s3://<bucket>/<prefix>``."""
    v = Vault.init(path, key_provider=KeychainProvider(backend=kr))
    v.remotes.add("cloud", f"s3://{server.bucket}/{prefix}", endpoint=server.endpoint)
    return v


def device(v: Vault) -> uuid.UUID:
    return v.remotes.devices.identity("cloud").device_id


def enrol(enroller: Vault, new: Vault) -> None:
    """``device enroll``, ``--accept`` with the pairing code *new* shows, ``--finish``."""
    step = _device_enroll.request(new)
    _device_enroll.accept(enroller, None, device(new).hex, step.pairing_code or "")
    _device_enroll.finish(new)


def save(v: Vault, title: str) -> None:
    v.save({"title": title, "messages": [{"role": "user", "content": title}]})


def titles(v: Vault) -> set[str]:
    return {s.title or "" for s in v.list()}


def store(server: S3Server) -> _s3.S3Store:
    """The bucket, as the tests' adversary reads and writes it."""
    return _s3.open_store(
        _remote.parse_url(f"s3://{server.bucket}"), endpoint=server.endpoint, profile=None, region=None
    )


@contextlib.contextmanager
def three(
    tmp_path: Path, server: S3Server, kr: MemoryKeyring, prefix: str, *, b_pushes: bool = False
) -> Iterator[tuple[Vault, Vault, Vault]]:
    """A (the remote's first device, which pushed a session "a before"), B and C, both enrolled
    by A (then, with *b_pushes*, B pushes a session "b before"); every device has pulled.  The
    three are closed after."""
    a = vault(tmp_path / "a", server, kr, prefix)
    b: Vault | None = None
    c: Vault | None = None
    try:
        save(a, "a before")
        a.remotes.push()
        b, c = vault(tmp_path / "b", server, kr, prefix), vault(tmp_path / "c", server, kr, prefix)
        enrol(a, b)
        enrol(a, c)
        if b_pushes:
            save(b, "b before")
            b.remotes.push()
        for v in (a, b, c):
            v.remotes.pull()
        yield a, b, c
    finally:
        for opened in (a, b, c):
            if opened is not None:
                opened.close()
