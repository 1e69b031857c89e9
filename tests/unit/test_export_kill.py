"""Issue 18, item 13: a plaintext export killed mid-write left a sanitized temp file beside its
target (``.out.json.tmp-<pid>-<nonce>``, readable plaintext, forever).

Now the data goes to an unnamed ``O_TMPFILE`` file that gets its name only once it is whole: a
SIGKILL at any point before leaves nothing.  ``--force`` links it to a temp name and renames
that over the target; a kill in those microseconds, or anywhere on a file system without
``O_TMPFILE`` (the named fallback), leaves a temp file that the next export to the same target
removes, and only when it is provably such a leftover.

The kills are real SIGKILLs of a real ``sessionseal export`` process, sent by the process to
itself at a fixed point (its first write of the export's bytes, the fsync before the name, the
rename): deterministic, whatever the machine's speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sessionseal import PassphraseProvider, Vault
from sessionseal._fs import sweep_export_temps, write_private_file

SRC = str(Path(__file__).resolve().parents[2] / "src")
PASSPHRASE = "export kill test"

#: Runs ``sessionseal export`` and SIGKILLs itself at ``where`` on the export's file: argv is
#: where, vault, session id, out, force ("1"/"0"), tmpfile ("1": as the platform has it; "0":
#: as on a platform without O_TMPFILE).
CHILD = textwrap.dedent(
    """
    import os, signal, stat, sys
    where, vault, sid, out, force, tmpfile = sys.argv[1:]
    if tmpfile == "0" and hasattr(os, "O_TMPFILE"):
        del os.O_TMPFILE  # as on macOS: the named fallback
    out_dir = os.path.dirname(out)

    def ours(fd):
        # A regular file in the target's directory: the export's file, named or not.
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
            return os.path.dirname(name) == out_dir and stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            return False

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    real_write, real_fsync, real_replace = os.write, os.fsync, os.replace

    def write(fd, data):
        if where == "write" and ours(fd):
            real_write(fd, bytes(data)[: len(data) // 2])  # half of it is on disk
            die()
        return real_write(fd, data)

    def fsync(fd):
        if where == "fsync" and ours(fd):
            die()  # all of it is written, not yet named
        return real_fsync(fd)

    def replace(src, dst, **kw):
        if where == "replace" and os.path.basename(str(dst)) == os.path.basename(out):
            die()  # --force: the temp name exists, the rename has not happened
        return real_replace(src, dst, **kw)

    os.write, os.fsync, os.replace = write, fsync, replace
    from sessionseal.cli import main
    args = ["--vault", vault, "export", sid, "--format", "json", "--plaintext", "--out", out]
    main(args + (["--force"] if force == "1" else []))
    """
)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("export-kill") / "vault"
    with Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)) as v:
        text = "the plaintext of a session that must not be left lying around\n" * 2000
        sid = v.save({"title": "kill me", "messages": [{"role": "user", "content": text}]})
    return path, str(sid)


def _export_killed(stored: tuple[Path, str], out: Path, where: str, *, force: bool, tmpfile: bool = True) -> None:
    vault, sid = stored
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, where, str(vault), sid, str(out), "1" if force else "0", "1" if tmpfile else "0"],
        check=False,
        env={**os.environ, "PYTHONPATH": SRC, "SESSIONSEAL_PASSPHRASE": PASSPHRASE},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _export(stored: tuple[Path, str], out: Path, *, force: bool = False) -> None:
    vault, sid = stored
    args = ["--vault", str(vault), "export", sid, "--format", "json", "--plaintext", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "sessionseal", *args, *(["--force"] if force else [])],
        check=False,
        env={**os.environ, "PYTHONPATH": SRC, "SESSIONSEAL_PASSPHRASE": PASSPHRASE},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="unnamed files are Linux's")
@pytest.mark.parametrize("where", ["write", "fsync"])
@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
def test_a_kill_mid_write_leaves_nothing_beside_the_target(
    stored: tuple[Path, str], tmp_path: Path, where: str, force: bool
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "session.json"
    if force:
        out.write_text("the previous export\n")
    _export_killed(stored, out, where, force=force)
    assert sorted(os.listdir(out_dir)) == (["session.json"] if force else [])
    if force:
        assert out.read_text() == "the previous export\n"  # untouched: old or new, never a mix


def test_a_kill_in_the_force_rename_window_is_swept_by_the_next_export(
    stored: tuple[Path, str], tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "session.json"
    out.write_text("the previous export\n")
    _export_killed(stored, out, "replace", force=True)
    leftovers = [n for n in os.listdir(out_dir) if n != "session.json"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".session.json.tmp-")
    assert out.read_text() == "the previous export\n"
    assert os.stat(out_dir / leftovers[0]).st_mode & 0o777 == 0o600
    _export(stored, out, force=True)
    assert os.listdir(out_dir) == ["session.json"]
    assert "kill me" in out.read_text()


@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
def test_without_unnamed_files_the_next_export_sweeps_what_a_kill_left(
    stored: tuple[Path, str], tmp_path: Path, force: bool
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "session.json"
    if force:
        out.write_text("the previous export\n")
    _export_killed(stored, out, "fsync", force=force, tmpfile=False)
    assert len(os.listdir(out_dir)) == 1 + force  # the named temp file: unavoidable here
    _export(stored, out, force=True)
    assert os.listdir(out_dir) == ["session.json"]


def test_the_sweep_removes_only_provable_leftovers(tmp_path: Path) -> None:
    out = tmp_path / "x.md"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    dead_pid = int(dead.stdout)
    leftover = tmp_path / f".x.md.tmp-{dead_pid}-0123456789ab"
    kept = {
        f".x.md.tmp-{os.getpid()}-0123456789ab": 0o600,  # a live writer's
        f".x.md.tmp-{dead_pid}-0123456789abc": 0o600,  # not a name we make
        f".x.md.tmp-{dead_pid}-notahexnonce": 0o600,
        f".y.md.tmp-{dead_pid}-0123456789ab": 0o600,  # another target's
        f".x.md.tmp-{dead_pid}-abcdef012345": 0o644,  # not the mode we create
        "x.md": 0o600,
    }
    for name, mode in kept.items():
        (tmp_path / name).write_text("keep")
        os.chmod(tmp_path / name, mode)
    linked = tmp_path / f".x.md.tmp-{dead_pid}-fedcba987654"  # two links: not ours alone
    linked.write_text("keep")
    os.chmod(linked, 0o600)
    os.link(linked, tmp_path / "elsewhere")
    link = tmp_path / f".x.md.tmp-{dead_pid}-111111111111"
    link.symlink_to(tmp_path / "x.md")
    leftover.write_text("sanitized plaintext")
    os.chmod(leftover, 0o600)
    assert sweep_export_temps(out) == [leftover.name]
    assert not leftover.exists()
    assert all((tmp_path / n).exists() for n in kept) and linked.exists() and link.is_symlink()
    assert (tmp_path / "x.md").read_text() == "keep"


def test_write_private_file_keeps_its_promises(tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    old = os.umask(0)
    try:
        write_private_file(out, b"one")
    finally:
        os.umask(old)
    assert out.read_bytes() == b"one" and os.stat(out).st_mode & 0o777 == 0o600
    with pytest.raises(Exception, match="exists"):
        write_private_file(out, b"two")
    write_private_file(out, b"three", overwrite=True)
    assert out.read_bytes() == b"three" and os.stat(out).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["e.json"]
