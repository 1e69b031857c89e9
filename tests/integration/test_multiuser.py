"""A second, unprivileged OS user can neither read, list nor alter the first user's vault.

Root bypasses file modes, so these run the product as two real users (``ssalice``,
``ssbob``, created by .ci/run) through runuser.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import stat
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionseal import errors
from tests._infra.users import OSUser, OSUsers, UserDirs

MINIMAL = '{"title": "alice private", "messages": [{"role": "user", "content": "alice secret words"}]}'
PASS = {"SESSIONSEAL_PASSPHRASE": "alice passphrase"}


def _alice_vault(alice: OSUser, dirs: UserDirs) -> tuple[Path, str]:
    home = dirs.make(alice, mode=0o711)  # bob may traverse it, as with many distributions' homes
    vault = home / "vault"
    env = {**PASS, "SESSIONSEAL_VAULT": str(vault)}
    r = alice.run([alice.bin("sessionseal"), "init", "--key-provider", "passphrase"], env=env)
    assert r.returncode == 0, r.stderr
    r = alice.run([alice.bin("sessionseal"), "save"], env=env, input=MINIMAL)
    assert r.returncode == 0, r.stderr
    return vault, r.stdout.strip()


def test_second_user_cannot_list_show_or_read(first_user: OSUser, second_user: OSUser, make_user_dir: UserDirs) -> None:
    vault, sid = _alice_vault(first_user, make_user_dir)
    env = {**PASS, "SESSIONSEAL_VAULT": str(vault)}
    for args in (["list"], ["show", sid], ["info"], ["save"]):
        r = second_user.run([second_user.bin("sessionseal"), *args], env=env, input=MINIMAL)
        assert r.returncode == errors.UnsafePermissions.exit_code, (args, r.stderr)
        assert "owned by uid" in r.stderr and "alice" not in r.stdout
    # Going around the product: the kernel refuses too.
    probe = textwrap.dedent(
        f"""
        import os, json
        out = {{}}
        for what, fn in (("listdir", lambda: os.listdir({str(vault)!r})),
                         ("read vault.json", lambda: open({str(vault / "vault.json")!r}, 'rb').read()),
                         ("create file", lambda: open({str(vault / "planted")!r}, 'wb'))):
            try:
                fn(); out[what] = "allowed"
            except PermissionError:
                out[what] = "denied"
        print(json.dumps(out))
        """
    )
    r = second_user.run(probe)
    assert json.loads(r.stdout) == {"listdir": "denied", "read vault.json": "denied", "create file": "denied"}


def test_owner_still_reads_after_the_attempts(first_user: OSUser, second_user: OSUser, make_user_dir: UserDirs) -> None:
    vault, sid = _alice_vault(first_user, make_user_dir)
    env = {**PASS, "SESSIONSEAL_VAULT": str(vault)}
    second_user.run([second_user.bin("sessionseal"), "delete", sid, "--yes"], env=env)
    r = first_user.run([first_user.bin("sessionseal"), "show", sid, "--json"], env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["title"] == "alice private"


def test_vault_made_readable_by_others_is_refused_even_to_its_owner(
    first_user: OSUser, make_user_dir: UserDirs
) -> None:
    vault, _ = _alice_vault(first_user, make_user_dir)
    env = {**PASS, "SESSIONSEAL_VAULT": str(vault)}
    first_user.run(["chmod", "755", str(vault)], check=True)
    r = first_user.run([first_user.bin("sessionseal"), "list"], env=env)
    assert r.returncode == errors.UnsafePermissions.exit_code
    assert "chmod 700" in r.stderr


# ---------------------------------------------------------------------------------------------
# Every alteration the kernel could be asked for, and what a mistake (a 0777 vault) lets through.
#
# The vault is made once (as ssalice, with the library and a cheap scrypt cost, so that each
# 'sessionseal' command costs its start-up only) and copied, owners kept, for each test.

V1, V2 = "alice v1", "alice v2"
DOC1 = {"title": V1, "messages": [{"role": "user", "content": "alice first words"}]}
DOC2 = {"title": "alice other", "messages": [{"role": "user", "content": "alice other words"}]}


@dataclass(frozen=True)
class Made:
    """ssalice's vault: session s1 saved twice (the older version's file kept aside, as a stale
    copy would be), s2, a checkpoint of s1; and the index as it was before s1's second save."""

    home: Path
    vault: Path
    s1: str
    s2: str
    f1: str  # s1's file name in sessions/
    old_session: Path  # s1's file as it was at version 1 (ssalice's, 0600)
    old_index: Path

    @property
    def env(self) -> dict[str, str]:
        return {**PASS, "SESSIONSEAL_VAULT": str(self.vault)}


_MAKE = """
import json, os, sys
from sessionseal import PassphraseProvider, Vault
vault, home, doc1, doc2 = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
def keep(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.close(fd)
with Vault.init(vault, key_provider=PassphraseProvider(os.environ["SESSIONSEAL_PASSPHRASE"], log2_n=14)) as v:
    s1 = v.save(doc1)
    f1 = v.parts.keys.file_name(s1) + ".sst"
    v.list()
    keep(os.path.join(vault, "sessions", f1), os.path.join(home, "old-session.sst"))
    keep(os.path.join(vault, "index.sst"), os.path.join(home, "old-index.sst"))
    v.save({**doc1, "id": str(s1), "title": "alice v2"})
    s2 = v.save(doc2)
    v.checkpoint(s1)
    v.list()
print(json.dumps({"s1": str(s1), "s2": str(s2), "f1": f1}))
"""


@pytest.fixture(scope="module")
def alice_made(os_users: OSUsers) -> Iterator[tuple[UserDirs, Made]]:
    alice = os_users.alice
    dirs = UserDirs()
    try:
        home = dirs.make(alice, mode=0o711)
        vault = home / "vault"
        r = alice.run([alice.python, "-c", _MAKE, str(vault), str(home), json.dumps(DOC1), json.dumps(DOC2)], env=PASS)
        assert r.returncode == 0, r.stderr
        ids = json.loads(r.stdout)
        yield dirs, Made(home, vault, ids["s1"], ids["s2"], ids["f1"], home / "old-session.sst", home / "old-index.sst")
    finally:
        dirs.cleanup()


def _copy(made: Made, dirs: UserDirs, alice: OSUser) -> Made:
    """A copy of the made vault (and the stale copies beside it) in a new home of ssalice's."""
    home = dirs.make(alice, mode=0o711)
    for p in (made.vault, made.old_session, made.old_index):
        subprocess.run(["cp", "-a", str(p), str(home / p.name)], check=True)
    return dataclasses.replace(
        made, home=home, vault=home / "vault", old_session=home / made.old_session.name,
        old_index=home / made.old_index.name,
    )  # fmt: skip


def _tree(path: Path) -> dict[str, tuple[object, ...]]:
    """Everything about every entry under *path* that an alteration would change."""
    out: dict[str, tuple[object, ...]] = {}
    for p in [path, *sorted(path.rglob("*"))]:
        st = os.lstat(p)
        body = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
        target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
        meta = (st.st_mode, st.st_uid, st.st_gid, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        out[str(p.relative_to(path))] = (*meta, body, target)
    return out


def _sessionseal(user: OSUser, made: Made, *args: str) -> subprocess.CompletedProcess[str]:
    return user.run([user.bin("sessionseal"), *args], env=made.env)


def _assert_verified_clean(alice: OSUser, made: Made) -> None:
    """`sessionseal verify --read-data` finds nothing wrong with *made*'s vault."""
    r = _sessionseal(alice, made, "verify", "--read-data", "--json")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["problems"] == [], r.stdout


def _assert_detected(alice: OSUser, made: Made, *, file: str, what: str) -> None:
    """`sessionseal verify` reports *file* (relative to the vault) with the problem code *what*
    and exits 15, or refuses to open the vault at all (exit 6) naming it."""
    r = _sessionseal(alice, made, "verify", "--read-data", "--json")
    if r.returncode == errors.UnsafePermissions.exit_code:
        assert str(made.vault / file) in r.stderr, r.stderr
        return
    assert r.returncode == 15, (r.stdout, r.stderr)
    problems = json.loads(r.stdout)["problems"]
    assert any(p["path"] == file and p["code"] == what and p["severity"] == "error" for p in problems), problems


_ATTEMPTS = """
import json, os, sys
p = json.loads(sys.argv[1])
V, S, F, MINE, BOB = p["vault"], p["vault"] + "/sessions", p["file"], p["mine"], p["bob"]
attempts = {
    "list the vault": lambda: os.listdir(V),
    "list sessions/": lambda: os.listdir(S),
    "open sessions/ as a directory": lambda: os.open(S, os.O_RDONLY | os.O_DIRECTORY),
    "stat a session file": lambda: os.stat(F),
    "read vault.json": lambda: open(V + "/vault.json", "rb").read(),
    "read a session file": lambda: open(F, "rb").read(),
    "create a file in the vault": lambda: os.open(V + "/planted", os.O_WRONLY | os.O_CREAT, 0o666),
    "create a session file": lambda: os.open(S + "/" + "0" * 32 + ".sst", os.O_WRONLY | os.O_CREAT, 0o666),
    "make a directory in the vault": lambda: os.mkdir(V + "/planted-dir"),
    "plant a symlink in the vault": lambda: os.symlink(MINE, V + "/planted-link"),
    "plant a symlink in sessions/": lambda: os.symlink(MINE, S + "/planted-link.sst"),
    "hard-link bob's file into sessions/": lambda: os.link(MINE, S + "/planted-hard.sst"),
    "hard-link a session file out": lambda: os.link(F, BOB + "/stolen-link"),
    "rename bob's file over a session file": lambda: os.rename(MINE, F),
    "rename a session file out": lambda: os.rename(F, BOB + "/stolen"),
    "rename sessions/ aside": lambda: os.rename(S, V + "/sessions-old"),
    "rename the vault aside": lambda: os.rename(V, V + "-old"),
    "put bob's directory in the vault's place": lambda: os.rename(BOB + "/fake-vault", V),
    "unlink vault.json": lambda: os.unlink(V + "/vault.json"),
    "unlink a session file": lambda: os.unlink(F),
    "remove locks/": lambda: os.rmdir(V + "/locks"),
    "chmod the vault 0777": lambda: os.chmod(V, 0o777),
    "chmod sessions/ 0777": lambda: os.chmod(S, 0o777),
    "chmod a session file 0666": lambda: os.chmod(F, 0o666),
    "chown the vault": lambda: os.chown(V, os.getuid(), os.getgid()),
    "touch the vault": lambda: os.utime(V),
    "truncate a session file": lambda: os.truncate(F, 0),
    "open a session file to write": lambda: os.open(F, os.O_WRONLY),
    "open a session file to truncate": lambda: os.open(F, os.O_WRONLY | os.O_TRUNC),
    "append to the key table": lambda: os.open(V + "/keytable.sst", os.O_WRONLY | os.O_APPEND),
    "append to the audit log": lambda: os.open(V + "/audit/audit.log", os.O_WRONLY | os.O_APPEND),
    "hold the vault lock": lambda: os.open(V + "/locks/vault.lock", os.O_RDWR),
}
out = {}
for what, attempt in attempts.items():
    try:
        attempt()
        out[what] = "ALLOWED"
    except PermissionError:
        out[what] = "denied"
    except OSError as exc:
        out[what] = os.strerror(exc.errno or 0)
print(json.dumps(out))
"""


def test_second_user_can_alter_nothing(
    first_user: OSUser, second_user: OSUser, alice_made: tuple[UserDirs, Made]
) -> None:
    """Every system call that could alter (or read, or list) ssalice's vault, made by ssbob who
    knows every name in it, is refused by the kernel; the vault is the same, byte for byte."""
    dirs, made = alice_made
    made = _copy(made, dirs, first_user)
    bob = dirs.make(second_user)
    mine = bob / "mine.sst"
    mine.write_bytes(made.old_session.read_bytes())
    (bob / "fake-vault").mkdir()
    for p in (mine, bob / "fake-vault"):
        os.chown(p, second_user.uid, second_user.gid)
    before = _tree(made.vault)
    paths = {
        "vault": str(made.vault),
        "file": str(made.vault / "sessions" / made.f1),
        "mine": str(mine),
        "bob": str(bob),
    }
    r = second_user.run([second_user.python, "-c", _ATTEMPTS, json.dumps(paths)])
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)
    assert len(results) == 32 and {k: v for k, v in results.items() if v != "denied"} == {}
    assert _tree(made.vault) == before
    r = _sessionseal(first_user, made, "list", "--json")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert {s["title"] for s in json.loads(r.stdout)} == {V2, "alice other"}
    _assert_verified_clean(first_user, made)


@dataclass(frozen=True)
class Mistake:
    """What ssbob does while ssalice's vault and its sessions/ are 0777, and what ssalice's
    listing then says (once she has made both 0700 again, trusting their contents)."""

    bob_does: str  # Python, with V, S, F (the vault, sessions/, s1's file) and BOB (his directory)
    list_code: int
    list_says: str
    show_code: int
    show_says: str
    detected: tuple[str, str] | None  # (file, code) `verify` must report; None: nothing is wrong


MISTAKES = {
    # His own file in s1's place, holding authentic bytes (a copy of s1's older version he could
    # read once): not used, because it is his.
    "session-replaced-by-bobs-file": Mistake(
        "os.unlink(F); shutil.copyfile(BOB + '/old-session.sst', F)",
        0, "owned by uid {bob}", errors.UnsafePermissions.exit_code, "owned by uid {bob}",
        ("sessions/{f1}", "unsafe"),
    ),
    # A link to his copy of it: not followed.
    "session-replaced-by-a-symlink-to-bobs-file": Mistake(
        "os.unlink(F); os.symlink(BOB + '/old-session.sst', F)",
        0, "is a symlink", errors.UnsafePermissions.exit_code, "symlink",
        ("sessions/{f1}", "unsafe"),
    ),
    # ssalice's own older file, which he had moved out of the vault in an earlier such window:
    # authentic and hers, so only the index can tell; listing reports it (every time), showing
    # it shows the older version, and verify must report it.
    "session-rolled-back": Mistake(
        "os.rename(BOB + '/alices-old-session.sst', F)",
        0, "version 1 is older than the version 2 the index recorded", 0, V1,
        ("sessions/{f1}", "rollback"),
    ),
    # The index is a cache: his is ignored and rebuilt from ssalice's files.
    "index-replaced-by-bobs-file": Mistake(
        "os.unlink(V + '/index.sst'); shutil.copyfile(BOB + '/old-index.sst', V + '/index.sst')",
        0, "", 0, V2, None,
    ),
    # sessions/ moved aside and his own put in its place: refused as a whole.
    "sessions-dir-replaced-by-bobs": Mistake(
        "os.rename(S, V + '/sessions.alice'); os.mkdir(S); os.chmod(S, 0o755); shutil.copyfile(BOB + '/old-session.sst', F)",
        errors.UnsafePermissions.exit_code, "owned by uid {bob}", errors.UnsafePermissions.exit_code,
        "owned by uid {bob}", ("sessions", "unsafe"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_vault_left_open_by_mistake(
    first_user: OSUser, second_user: OSUser, alice_made: tuple[UserDirs, Made], name: str
) -> None:
    m = MISTAKES[name]
    dirs, made = alice_made
    made = _copy(made, dirs, first_user)
    alice, bob = first_user, second_user
    vault, sessions, f1 = made.vault, made.vault / "sessions", made.vault / "sessions" / made.f1
    bob_dir = dirs.make(bob)
    # What ssbob holds: a copy of s1's older file (his), and ssalice's own older file (hers).
    shutil.copyfile(made.old_session, bob_dir / "old-session.sst")
    shutil.copyfile(made.old_index, bob_dir / "old-index.sst")
    for p in (bob_dir / "old-session.sst", bob_dir / "old-index.sst"):
        os.chown(p, bob.uid, bob.gid)
        p.chmod(0o644)
    os.rename(made.old_session, bob_dir / "alices-old-session.sst")
    bobs = {p.name: p.read_bytes() for p in bob_dir.iterdir()}

    alice.run(["chmod", "777", str(vault), str(sessions)], check=True)  # the mistake
    code = f"import os, shutil\nV, S, F, BOB = {str(vault)!r}, {str(sessions)!r}, {str(f1)!r}, {str(bob_dir)!r}\n"
    r = bob.run(code + m.bob_does)
    assert r.returncode == 0, r.stderr  # the mistake let him

    # While the vault is open to others, nothing in it is used.
    r = _sessionseal(alice, made, "list")
    assert r.returncode == errors.UnsafePermissions.exit_code and f"chmod 700 {vault}" in r.stderr, r.stderr
    alice.run(["chmod", "700", str(vault)], check=True)
    r = _sessionseal(alice, made, "list")
    assert r.returncode == errors.UnsafePermissions.exit_code, r.stderr
    assert str(sessions) in r.stderr and ("mode 0777" in r.stderr or "owned by uid" in r.stderr), r.stderr
    if sessions.stat().st_uid == alice.uid:
        alice.run(["chmod", "700", str(sessions)], check=True)

    # Trusted again by its owner: what ssbob left is refused or reported, never used.
    says = m.list_says.format(bob=bob.uid)
    for _ in range(2):  # reported by every listing, not the first only
        r = _sessionseal(alice, made, "list", "--json")
        assert r.returncode == m.list_code, r.stderr
        assert says in r.stderr if says else r.stderr == "", r.stderr
        if r.returncode == 0:
            titles = {s["title"] for s in json.loads(r.stdout)}
            assert "alice other" in titles and (V1 not in titles or name == "session-rolled-back"), titles
    if m.list_code == 0:  # the index is ssalice's (his, when he put one there, was not used: it was rebuilt)
        assert os.lstat(vault / "index.sst").st_uid == alice.uid
    r = _sessionseal(alice, made, "show", made.s1, "--json")
    assert r.returncode == m.show_code, r.stderr
    if m.show_code == 0:
        assert json.loads(r.stdout)["title"] == m.show_says
    else:
        assert m.show_says.format(bob=bob.uid) in r.stderr and r.stdout == "", r.stderr
    assert {p.name: p.read_bytes() for p in bob_dir.iterdir() if p.name in bobs} == {
        k: v for k, v in bobs.items() if (bob_dir / k).exists()
    }  # nothing written into his files through a link
    if m.detected is None:
        _assert_verified_clean(alice, made)
    else:
        _assert_detected(alice, made, file=m.detected[0].format(f1=made.f1), what=m.detected[1])
