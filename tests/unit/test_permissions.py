"""Opening refuses vaults that others could read or replace, and never follows links.

These checks read modes and owners, so they hold even for root; tests that need a
real second user (who is denied by the kernel) are in tests/integration.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sessionseal import KeychainProvider, Vault
from sessionseal.errors import UnsafePermissions

MINIMAL = {"title": "t", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, KeychainProvider, str]:
    from tests.memkeyring import MemoryKeyring

    provider = KeychainProvider(backend=MemoryKeyring())
    path = tmp_path / "vault"
    with Vault.init(path, key_provider=provider) as v:
        sid = str(v.save(MINIMAL))
    return path, provider, sid


def _open_and_load(path: Path, provider: KeychainProvider, sid: str) -> None:
    with Vault.open(path, key_provider=provider) as v:
        v.load(sid)


def _session_file(path: Path) -> Path:
    [f] = (path / "sessions").iterdir()
    return f


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o770, 0o777, 0o701])
def test_group_or_world_accessible_vault_dir(made: tuple[Path, KeychainProvider, str], mode: int) -> None:
    path, provider, sid = made
    path.chmod(mode)
    with pytest.raises(UnsafePermissions, match="chmod 700"):
        _open_and_load(path, provider, sid)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_group_or_world_readable_session_file(made: tuple[Path, KeychainProvider, str], mode: int) -> None:
    path, provider, sid = made
    _session_file(path).chmod(mode)
    with pytest.raises(UnsafePermissions):
        _open_and_load(path, provider, sid)


def test_world_readable_subdirectory(made: tuple[Path, KeychainProvider, str]) -> None:
    path, provider, sid = made
    (path / "sessions").chmod(0o755)
    with pytest.raises(UnsafePermissions):
        _open_and_load(path, provider, sid)


def test_vault_that_is_a_symlink(made: tuple[Path, KeychainProvider, str], tmp_path: Path) -> None:
    path, provider, sid = made
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(UnsafePermissions, match="symlink"):
        _open_and_load(link, provider, sid)


def test_symlinked_parent_is_resolved_once_and_fine(made: tuple[Path, KeychainProvider, str], tmp_path: Path) -> None:
    path, provider, sid = made
    home = tmp_path / "home-link"
    home.symlink_to(path.parent)
    _open_and_load(home / "vault", provider, sid)


def test_session_file_replaced_by_symlink_is_not_followed(
    made: tuple[Path, KeychainProvider, str], tmp_path: Path
) -> None:
    path, provider, sid = made
    f = _session_file(path)
    target = tmp_path / "elsewhere"
    target.write_bytes(f.read_bytes())
    target.chmod(0o600)
    f.unlink()
    f.symlink_to(target)
    with pytest.raises(UnsafePermissions, match="symlink"):
        _open_and_load(path, provider, sid)


def test_sessions_dir_replaced_by_symlink(made: tuple[Path, KeychainProvider, str], tmp_path: Path) -> None:
    path, provider, sid = made
    (path / "sessions").rename(tmp_path / "moved")
    (path / "sessions").symlink_to(tmp_path / "moved")
    with pytest.raises(UnsafePermissions):
        _open_and_load(path, provider, sid)


def test_symlinked_lock_file_is_not_followed(made: tuple[Path, KeychainProvider, str], tmp_path: Path) -> None:
    path, provider, _ = made
    victim = tmp_path / "victim"
    victim.write_text("precious")
    lock = path / "locks" / "vault.lock"
    lock.unlink()
    lock.symlink_to(victim)
    with Vault.open(path, key_provider=provider) as v, pytest.raises(UnsafePermissions):
        v.save({**MINIMAL, "id": "11111111-1111-4111-8111-111111111111"})
    assert victim.read_text() == "precious"


def test_hard_linked_session_file(made: tuple[Path, KeychainProvider, str], tmp_path: Path) -> None:
    path, provider, sid = made
    os.link(_session_file(path), tmp_path / "second-name")
    with pytest.raises(UnsafePermissions, match="hard link"):
        _open_and_load(path, provider, sid)


def test_fifo_in_place_of_a_file_does_not_hang(made: tuple[Path, KeychainProvider, str]) -> None:
    path, provider, sid = made
    f = _session_file(path)
    f.unlink()
    os.mkfifo(f, 0o600)
    # Refused before any open: opening a FIFO with no writer would block for ever.
    with pytest.raises(UnsafePermissions, match="not a regular file"):
        _open_and_load(path, provider, sid)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_file_owned_by_another_uid(made: tuple[Path, KeychainProvider, str]) -> None:
    path, provider, _ = made
    os.chown(path / "vault.json", 65534, 65534)
    with pytest.raises(UnsafePermissions, match="owned by uid 65534"):
        Vault.open(path, key_provider=provider)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_vault_dir_owned_by_another_uid(made: tuple[Path, KeychainProvider, str]) -> None:
    path, provider, _ = made
    os.chown(path, 65534, 65534)
    with pytest.raises(UnsafePermissions, match="owned by uid 65534"):
        Vault.open(path, key_provider=provider)


def test_parent_world_writable_without_sticky_bit(tmp_path: Path) -> None:
    from tests.memkeyring import MemoryKeyring

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafePermissions, match="world-writable"):
        Vault.init(shared / "vault", key_provider=KeychainProvider(backend=MemoryKeyring()))
    shared.chmod(0o1777)  # sticky, like /tmp: others cannot rename our entries
    Vault.init(shared / "vault", key_provider=KeychainProvider(backend=MemoryKeyring())).close()


def test_init_creates_missing_parents_owner_only_and_still_checks_the_existing_ones(tmp_path: Path) -> None:
    from tests.memkeyring import MemoryKeyring

    Vault.init(tmp_path / "a" / "b" / "vault", key_provider=KeychainProvider(backend=MemoryKeyring())).close()
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b").st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafePermissions, match="world-writable"):
        Vault.init(shared / "new" / "vault", key_provider=KeychainProvider(backend=MemoryKeyring()))
    assert not (shared / "new").exists()
