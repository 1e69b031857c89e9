"""The sanitizer's start-up cache: private, self-checking, and never a source of different results."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
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
    monkeypatch.setattr(sys, "platform", "linux")
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


# Each rule's pattern as a fresh process builds it; prints how many rule regexes went through re's parser.
_PATTERNS_OF_A_FRESH_PROCESS = """
import re, re._parser as parser
from sessionseal._sanitize._rules import default_catalogue
rules, _ = default_catalogue()
parsed, parse = [], parser.parse
parser.parse = lambda p, *a: (parsed.append(p), parse(p, *a))[1]
patterns = [r.pattern for r in rules]
parser.parse = parse
assert all(p == re.compile(r.regex) for p, r in zip(patterns, rules, strict=True))
print(len({r.regex for r in rules} & set(parsed)))
"""


def _parsed_rule_regexes(cache: Path) -> int:
    env = {**os.environ, "SESSIONSEAL_CACHE_DIR": str(cache.parent)}
    proc = subprocess.run(
        [sys.executable, "-c", _PATTERNS_OF_A_FRESH_PROCESS], env=env, capture_output=True, text=True, check=True
    )
    return int(proc.stdout)


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="the regex cache is CPython's re")
def test_rule_regexes_are_built_from_their_cached_code(cache: Path) -> None:
    n_regexes = len({r.regex for r in RULES})
    _parsed_rule_regexes(cache)  # the first process validates the catalogue and fills the cache
    # Later processes skip re's parser for every rule regex, and get the same patterns.
    assert _parsed_rule_regexes(cache) == 0
    # An entry that does not fit the catalogue (a valid checksum, too few patterns) is not
    # used: every regex is compiled as without a cache.
    (entry,) = (p for p in cache.iterdir() if p.name.startswith("regex-"))
    payload = b"\x02\x00\x00\x00\x00\x00\x00\x00[]"
    entry.write_bytes(_cache._MAGIC + hashlib.sha256(payload).digest() + payload)
    assert _parsed_rule_regexes(cache) == n_regexes


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


def _entry_name(name: str, key: bytes) -> str:
    return f"{name}-{hashlib.sha256(key).hexdigest()[:40]}"


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(proc.stdout)


def test_only_entries_and_dead_writers_temp_files_are_ever_removed(cache: Path) -> None:
    _cache.store("x", b"first", b"payload")
    others = ["notes.txt", "session.sst", "x-1234", "x-" + "0" * 39, "x-" + "0" * 41, "X-" + "0" * 40,
              "x-" + "0" * 40 + ".sst", "x-" + "0" * 40 + ".12.tmp.keep", ".x-" + "0" * 40]  # fmt: skip
    for n in others:
        (cache / n).write_bytes(b"not a cache entry")
        os.utime(cache / n, ns=(0, 0))  # older than every entry
    dead = _entry_name("x", b"dead") + f".{_dead_pid()}.tmp"
    live = _entry_name("x", b"live") + f".{os.getpid()}.tmp"
    for n in (dead, live):
        (cache / n).write_bytes(b"half written")
        os.utime(cache / n, ns=(0, 0))
    kept = {n: (cache / n).read_bytes() for n in [*others, live]}
    for i in range(_cache._KEEP + 5):
        _cache.store("x", str(i).encode(), b"payload")
    names = {p.name for p in cache.iterdir()}
    assert {n: (cache / n).read_bytes() for n in kept} == kept
    assert dead not in names
    entries = names - set(kept)
    assert len(entries) == _cache._KEEP and all(_cache._ENTRY.fullmatch(n) for n in entries)


def test_a_folder_swapped_for_a_link_after_it_was_opened_is_not_used(cache: Path, tmp_path: Path) -> None:
    # Everything after the walk is done relative to the folder's descriptor: renaming the
    # folder away and putting a link to another directory in its place changes nothing.
    _cache.store("x", b"first", b"payload")
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    for i in range(2 * _cache._KEEP):
        (victim / _entry_name("x", b"victim %d" % i)).write_bytes(b"the owner's file")
        os.utime(victim / _entry_name("x", b"victim %d" % i), ns=(0, 0))
    before = _snapshot(victim)
    folder = _cache._open_folder(create=False)
    assert folder is not None
    try:
        cache.rename(tmp_path / "aside")
        cache.symlink_to(victim)
        for i in range(_cache._KEEP + 5):
            _cache._store_at(folder, _entry_name("x", str(i).encode()), b"payload")
        assert _cache._load_at(folder, _entry_name("x", str(_cache._KEEP + 4).encode())) == b"payload"
    finally:
        os.close(folder)
    assert _snapshot(victim) == before
    assert len(list((tmp_path / "aside").iterdir())) == _cache._KEEP
    # And a link in the folder's place is never followed, even one of the owner's own.
    assert _cache.load("x", b"1") is None and _cache._open_folder(create=True) is None
    _cache.store("x", b"new", b"payload")
    assert _snapshot(victim) == before


@pytest.mark.parametrize("fault", ["writable by others", "owned by another user", "a link of another user"])
def test_a_cache_root_that_others_could_replace_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    root = shared / "sessionseal"
    if fault == "writable by others":
        shared.chmod(0o777)  # no sticky bit: anyone may rename the cache root away
    elif fault == "owned by another user":
        if os.geteuid() != 0:
            pytest.skip("needs root to give a directory away")
        os.chown(shared, 54321, 54321)
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root to give a link away")
        shared.chmod(0o1777)  # sticky, as /tmp: fine as such (the next test), but a link in it is another's
        target = tmp_path / "elsewhere"
        target.mkdir()
        root.symlink_to(target)
        os.chown(root, 54321, 54321, follow_symlinks=False)
    monkeypatch.setenv("SESSIONSEAL_CACHE_DIR", str(root))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    _cache.store("x", b"key", b"payload")
    assert _cache.load("x", b"key") is None
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing created


def test_a_sticky_shared_directory_and_own_links_on_the_way_are_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp or /dev/shm: nobody else can rename what we put there
    real = tmp_path / "real-cache"
    real.mkdir()
    (tmp_path / "link").symlink_to("real-cache")  # ours, relative
    for base in (shared, tmp_path / "link"):
        monkeypatch.setenv("SESSIONSEAL_CACHE_DIR", str(base / "a" / ".." / "sessionseal"))
        (base / "a").mkdir()
        _cache.store("x", b"key", b"payload")
        assert _cache.load("x", b"key") == b"payload"
        folder = base / "sessionseal" / "sanitizer"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and len(list(folder.iterdir())) == 1
    assert (real / "sessionseal" / "sanitizer").is_dir()
