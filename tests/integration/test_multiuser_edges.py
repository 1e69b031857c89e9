"""What another local user can do at the edges of a vault: the sanitizer's cache directory,
and a vault behind a directory closed to them.

Run as the real OS users ``ssalice`` (the owner) and ``ssbob`` (the other user) through runuser
(tests/_infra/users.py); root bypasses file modes, so nothing here runs the product as root.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sessionseal import errors
from tests._infra.users import OSUser, UserDirs

PASS = {"SESSIONSEAL_PASSPHRASE": "alice passphrase"}
GHP = "ghp_" + "9mO8TCf60NXSYkwR3tQd7zXIYTPFg83HxbyN"


def _chown(path: Path, user: OSUser) -> None:
    os.chown(path, user.uid, user.gid, follow_symlinks=False)


def _snapshot(folder: Path) -> dict[str, tuple[object, ...]]:
    """Every entry of *folder*: what deleting, replacing or writing it would change."""
    out: dict[str, tuple[object, ...]] = {}
    for p in sorted(folder.iterdir()):
        st = os.lstat(p)
        out[p.name] = (
            st.st_ino,
            st.st_mode,
            st.st_uid,
            st.st_size,
            st.st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
    return out


def _victim(dirs: UserDirs, alice: OSUser) -> Path:
    """A directory of ssalice's full of old files, half of them named as cache entries are."""
    victim = dirs.make(alice)
    for i in range(40):
        name = f"session-{i:02d}.sst" if i % 2 else f"catalogue-{hashlib.sha256(b'%d' % i).hexdigest()[:40]}"
        (victim / name).write_bytes(b"alice's session %d" % i)
        (victim / name).chmod(0o600)
        _chown(victim / name, alice)
        os.utime(victim / name, ns=(10**18, 10**18))  # 2001: older than any cache entry
    return victim


# ---------------------------------------------------------------------------------------------
# The sanitizer's cache directory (issue 18, item 2)

# ssbob swaps, atomically and as fast as he can, ssalice's cache root (which sits in his
# directory) with a link to a directory of his whose `sanitizer` is a link to her victim
# directory: whatever path ssalice's process looks up next may lead there.
_SWAP = r"""
import ctypes, os, sys
a, b, ready, stop = sys.argv[1:5]
libc = ctypes.CDLL(None, use_errno=True)
swaps = 0
while not os.path.exists(stop) and swaps < 100_000_000:
    if libc.renameat2(-100, a.encode(), -100, b.encode(), 2) != 0:  # RENAME_EXCHANGE
        sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
    swaps += 1
    if swaps == 2:
        open(ready, "w").close()
print(swaps)
"""

_STORES = r"""
import sys
from sessionseal._sanitize import _cache
for i in range(int(sys.argv[1])):
    _cache.store("catalogue", b"alice %d" % i, b"rule data %d" % i)
    _cache.load("catalogue", b"alice %d" % i)
"""

STORES = 2000


def test_a_cache_root_swapped_by_another_user_never_reaches_the_owners_files(
    first_user: OSUser, second_user: OSUser, make_user_dir: UserDirs
) -> None:
    alice, bob = first_user, second_user
    victim = _victim(make_user_dir, alice)
    before = _snapshot(victim)
    shared = make_user_dir.make(bob, mode=0o777)  # his, and anyone may create in it
    cache = shared / "cache"  # ssalice's cache root, with her private sanitizer folder
    (cache / "sanitizer").mkdir(parents=True, mode=0o700)
    for p in (cache, cache / "sanitizer"):
        p.chmod(0o700)
        _chown(p, alice)
    evil = shared / "evil"
    evil.mkdir(mode=0o755)
    (evil / "sanitizer").symlink_to(victim)
    (shared / "link").symlink_to(evil)
    bobs = make_user_dir.make(bob, mode=0o755)
    for p in (evil, evil / "sanitizer", shared / "link"):
        _chown(p, bob)

    result: dict[str, subprocess.CompletedProcess[str]] = {}
    swapper = threading.Thread(
        target=lambda: result.setdefault(
            "bob",
            bob.run(
                [bob.python, "-c", _SWAP, str(cache), str(shared / "link"), str(bobs / "ready"), str(bobs / "stop")],
                timeout=600,
            ),
        )
    )
    swapper.start()
    try:
        deadline = time.monotonic() + 60  # a hung start, not a speed requirement
        while not (bobs / "ready").exists() and swapper.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (bobs / "ready").exists(), result
        r = alice.run(
            [alice.python, "-c", _STORES, str(STORES)], env={"SESSIONSEAL_CACHE_DIR": str(cache)}, timeout=300
        )
        assert r.returncode == 0, r.stderr
    finally:
        (bobs / "stop").touch()
        swapper.join()
    b = result["bob"]
    assert b.returncode == 0, b.stderr
    assert _snapshot(victim) == before  # nothing of hers deleted, replaced, written or added
    # The cache root is in a directory he owns: the cache is off, nothing was written at all.
    real = cache if cache.is_dir() and not cache.is_symlink() else shared / "link"
    assert list((real / "sanitizer").iterdir()) == []


@pytest.mark.parametrize("where", ["in a directory of his", "a link of his in a shared sticky directory"])
def test_a_cache_root_another_user_could_replace_turns_the_cache_off(
    first_user: OSUser, second_user: OSUser, make_user_dir: UserDirs, where: str
) -> None:
    alice, bob = first_user, second_user
    if where == "in a directory of his":
        shared = make_user_dir.make(bob, mode=0o777)
        env = {"SESSIONSEAL_CACHE_DIR": str(shared / "cache")}
        watched = shared
    else:
        # As /tmp or /dev/shm (root's, sticky): he cannot touch what ssalice puts there, but he
        # can be first to put a link of his under the name her cache root will have.
        shared = make_user_dir.base / "shm"
        shared.mkdir()
        shared.chmod(0o1777)
        watched = make_user_dir.make(bob, mode=0o777)
        (shared / "sessionseal").symlink_to(watched)
        _chown(shared / "sessionseal", bob)
        env = {"XDG_CACHE_HOME": str(shared)}
    r = alice.run([alice.bin("sessionseal"), "sanitize"], env=env, input=f"GH_TOKEN={GHP}\n")
    assert r.returncode == 0 and GHP not in r.stdout and "[REDACTED:github-pat:" in r.stdout, r.stderr
    assert sorted(p.name for p in watched.iterdir()) == []  # nothing created, nothing followed


def test_a_cache_in_a_shared_sticky_directory_works(first_user: OSUser, make_user_dir: UserDirs) -> None:
    # The control for the test above: root's sticky directory, nothing planted.
    alice = first_user
    shared = make_user_dir.base / "shm"
    shared.mkdir()
    shared.chmod(0o1777)
    r = alice.run([alice.bin("sessionseal"), "sanitize"], env={"XDG_CACHE_HOME": str(shared)}, input=f"{GHP}\n")
    assert r.returncode == 0, r.stderr
    folder = shared / "sessionseal" / "sanitizer"
    st = os.lstat(folder)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == alice.uid and stat.S_IMODE(st.st_mode) == 0o700
    assert any(p.name.startswith("catalogue-") for p in folder.iterdir())


# ---------------------------------------------------------------------------------------------
# A vault behind a directory closed to the caller (issue 18, item 13)


def test_a_vault_behind_another_users_closed_home_is_unreachable_not_missing(
    first_user: OSUser, second_user: OSUser, make_user_dir: UserDirs
) -> None:
    alice, bob = first_user, second_user
    home = make_user_dir.make(alice, mode=0o700)
    r = alice.run([alice.bin("sessionseal"), "init", "--key-provider", "passphrase"], env={**PASS, "HOME": str(home)})
    assert r.returncode == 0, r.stderr
    vault = home / ".local" / "share" / "sessionseal" / "vault"  # the default location, for her HOME
    assert (vault / "vault.json").is_file()
    # ssbob with her HOME (as `sudo -u ssbob` may leave it), with --vault, with SESSIONSEAL_VAULT.
    for args, env in (
        (["list"], {"HOME": str(home)}),
        (["--vault", str(vault), "list"], {}),
        (["info"], {"SESSIONSEAL_VAULT": str(vault)}),
        (["init", "--key-provider", "passphrase"], {**PASS, "HOME": str(home)}),
    ):
        r = bob.run([bob.bin("sessionseal"), *args], env=env)
        assert r.returncode == errors.UnsafePermissions.exit_code, (args, r.returncode, r.stderr)
        assert f"{home} belongs to uid {alice.uid} and is closed to you" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "no vault" not in r.stderr
    # Where there is truly nothing (and he may look), it is still "no vault".
    r = bob.run([bob.bin("sessionseal"), "--vault", str(make_user_dir.make(bob) / "none"), "list"])
    assert r.returncode == errors.VaultNotFound.exit_code, r.stderr
    # Her own directory closed to herself: the mode, and what to run.
    alice.run(["chmod", "000", str(vault.parent)], check=True)
    r = alice.run([alice.bin("sessionseal"), "list"], env={**PASS, "HOME": str(home)})
    assert r.returncode == errors.UnsafePermissions.exit_code, r.stderr
    assert f"{vault.parent} has mode 0000" in r.stderr and f"chmod u+rwx {vault.parent}" in r.stderr
    alice.run(["chmod", "700", str(vault.parent)], check=True)
    r = alice.run([alice.bin("sessionseal"), "list"], env={**PASS, "HOME": str(home)})
    assert r.returncode == 0, r.stderr
