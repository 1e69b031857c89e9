"""The sanitizer's start-up cache: private, self-checking, and never a source of different results."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from sessionseal._sanitize import Sanitizer, _cache, _rules, available_engines
from sessionseal._sanitize._rules import default_catalogue

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the cache is POSIX only")

RULES, _ = default_catalogue()
CORPUS = "\n".join(ex for r in RULES for ex in (*r.examples, *r.counterexamples))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SESSIONSEAL_CACHE_DIR", str(tmp_path / "c"))
    return tmp_path / "c" / "sanitizer"


def test_entries_round_trip_in_a_private_folder(cache: Path) -> None:
    assert _cache.load("x", b"key") is None
    _cache.store("x", b"key", b"payload")
    assert _cache.load("x", b"key") == b"payload"
    assert _cache.load("x", b"other key") is None and _cache.load("y", b"key") is None
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    (entry,) = cache.iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_a_damaged_entry_is_ignored(cache: Path) -> None:
    _cache.store("x", b"key", b"payload")
    (entry,) = cache.iterdir()
    raw = bytearray(entry.read_bytes())
    raw[-1] ^= 1
    entry.write_bytes(bytes(raw))
    assert _cache.load("x", b"key") is None
    entry.write_bytes(bytes(raw[:10]))
    assert _cache.load("x", b"key") is None


def test_an_open_folder_or_entry_and_a_symlink_are_not_used(cache: Path) -> None:
    _cache.store("x", b"key", b"payload")
    (entry,) = cache.iterdir()
    entry.chmod(0o644)
    assert _cache.load("x", b"key") is None
    entry.chmod(0o600)
    cache.chmod(0o755)
    assert _cache.load("x", b"key") is None
    _cache.store("y", b"key", b"payload")
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["x"]  # nothing written there either
    cache.chmod(0o700)
    target = entry.with_name("elsewhere")
    entry.rename(target)
    entry.symlink_to(target)
    assert _cache.load("x", b"key") is None


def test_an_empty_setting_turns_the_cache_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSEAL_CACHE_DIR", "relative/dir")  # never where the process happens to run
    assert _cache.cache_dir() is None
    monkeypatch.setenv("SESSIONSEAL_CACHE_DIR", "")
    assert _cache.cache_dir() is None
    _cache.store("x", b"key", b"payload")
    assert _cache.load("x", b"key") is None


def test_the_default_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SESSIONSEAL_CACHE_DIR", raising=False)
    monkeypatch.setattr(_cache.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _cache.cache_dir() == str(tmp_path / "sessionseal" / "sanitizer")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _cache.cache_dir() == str(tmp_path / "home" / ".cache" / "sessionseal" / "sanitizer")


def test_old_entries_are_trimmed(cache: Path) -> None:
    for i in range(_cache._KEEP + 5):
        _cache.store("x", str(i).encode(), b"payload")
    assert len(list(cache.iterdir())) == _cache._KEEP
    assert _cache.load("x", str(_cache._KEEP + 4).encode()) == b"payload"


def test_the_catalogue_from_the_cache_is_the_catalogue(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_rules, "_DEFAULT", None)
    fresh = default_catalogue()
    assert any(p.name.startswith("catalogue-") for p in cache.iterdir())
    monkeypatch.setattr(_rules, "_DEFAULT", None)
    cached = default_catalogue()
    assert cached == fresh and cached is not fresh
    # A foreign entry under the right name (e.g. written by another version) is not trusted blindly.
    (entry,) = (p for p in cache.iterdir() if p.name.startswith("catalogue-"))
    entry.unlink()
    _cache.store("catalogue", _rules._default_toml(), b'{"rule": [{"id": "BAD ID"}]}')
    monkeypatch.setattr(_rules, "_DEFAULT", None)
    assert default_catalogue() == fresh


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan is not installed")
def test_a_cached_hyperscan_database_finds_the_same(cache: Path) -> None:
    compiled = Sanitizer(b"\x01" * 32, engine="hyperscan")
    (entry,) = (p for p in cache.iterdir() if p.name.startswith("hyperscan-"))
    loaded = Sanitizer(b"\x01" * 32, engine="hyperscan")
    assert loaded.find(CORPUS) == compiled.find(CORPUS)
    # Garbage with a valid checksum: Hyperscan refuses it, and the database is compiled again.
    garbage = b"not a database"
    entry.write_bytes(_cache._MAGIC + hashlib.sha256(garbage).digest() + garbage)
    damaged = Sanitizer(b"\x01" * 32, engine="hyperscan")
    assert damaged.find(CORPUS) == compiled.find(CORPUS)
    assert entry.read_bytes() != _cache._MAGIC + hashlib.sha256(garbage).digest() + garbage  # rebuilt


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan is not installed")
def test_a_database_with_user_rules_or_literals_is_never_cached(cache: Path) -> None:
    Sanitizer(engine="hyperscan", literals=["acme-customer-4471"])
    Sanitizer(engine="hyperscan", extra_rules=[{"id": "acme", "regex": r"ACME-[0-9]{6}", "keywords": ["acme-"]}])
    assert not cache.exists() or not any(p.name.startswith("hyperscan-") for p in cache.iterdir())
