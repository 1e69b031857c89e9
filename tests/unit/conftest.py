"""Fixtures of the unit tests: an in-memory keyring and a vault that uses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from sessionseal import KeychainProvider, Vault
from tests.memkeyring import MemoryKeyring


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Make the in-memory backend keyring's global choice for the test, then restore."""
    previous = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    try:
        yield kr
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def provider() -> KeychainProvider:
    return KeychainProvider(backend=MemoryKeyring())


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def vault(vault_path: Path, provider: KeychainProvider) -> Iterator[Vault]:
    v = Vault.init(vault_path, key_provider=provider)
    try:
        yield v
    finally:
        v.close()


def vault_bytes(path: Path) -> bytes:
    """Every byte of every file under *path*, but the audit log (refusals are recorded there, by design)."""
    return b"".join(
        p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and "audit" not in p.relative_to(path).parts
    )
