"""Fixtures of the unit tests: an in-memory keyring and a vault that uses it."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from sessionseal import KeychainProvider, Vault, _container, _keystore
from tests.memkeyring import MemoryKeyring


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Make the in-memory backend the one every KeychainProvider of the test uses, then restore.

    The product refuses any backend keyring offers that is not an OS keychain (issue #18), so
    making this one keyring's global choice is not enough: the tests replace the selection
    itself, a seam only code in this process can use (no variable or config file reaches it).
    """
    previous = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    monkeypatch.setattr(_keystore, "_select_backend", lambda interactive: kr)
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
    """Every byte of every file under *path*, but the audit log (refusals are recorded there, by
    design) and the key table's state frames (the audit log's head is anchored there with every
    record, issue 20): the key table's snapshot and key deltas are kept."""
    return b"".join(
        _without_state(p.read_bytes()) if p.name == "keytable.sst" else p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and "audit" not in p.relative_to(path).parts
    )


def _without_state(table: bytes) -> bytes:
    # Frames are (u32 length, u8 type, nonce and ciphertext) after the header: the type is clear.
    frame = struct.Struct(">IB")
    out, pos = bytearray(table[: _container.HEADER_SIZE]), _container.HEADER_SIZE
    while pos + frame.size <= len(table):
        length, kind = frame.unpack_from(table, pos)
        end = pos + 4 + length
        if kind != _container.FrameType.TABLE_STATE:
            out += table[pos:end]
        pos = end
    return bytes(out + table[pos:])
