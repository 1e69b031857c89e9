"""``verify`` knows the vault's ``run/`` directory, where ``resume --into`` keeps the private
homes of the agents it runs (docs/capture/resume.md, docs/reliability.md): a running resume's
home is fine, a killed one's is a ``resume-leftover`` warning for ``resume --cleanup``, and
anything else in ``run/`` is reported; ``verify --repair`` removes none of it (only ``resume
--cleanup`` has the proof that a home is a resume's, and it seals back before it shreds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sessionseal import Vault, VerifyResult, cleanup_resumes
from sessionseal._resume import _runtime
from tests._infra.users import OSUser, UserDirs

DOC = {"title": "t", "messages": [{"role": "user", "content": "hello"}]}
PASS = {"SESSIONSEAL_PASSPHRASE": "alice passphrase"}


def _codes(result: VerifyResult) -> dict[str, str]:
    return {p.path: p.code for p in result.problems}


def _home_of_a_dead_process(run: Path, tool: str = "claude") -> Path:
    """A home made by a real process that has exited since (as a SIGKILLed resume leaves it)."""
    code = "import sys; from pathlib import Path; from sessionseal._resume import _runtime; "
    code += f"print(_runtime.new_home(Path(sys.argv[1]), {tool!r}))"
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, check=True)
    home = Path(out.stdout.strip())
    (home / "session.jsonl").write_text('{"type":"user"}\n')
    (home / "session.jsonl").chmod(0o600)
    return home


def test_a_running_resumes_home_is_fine(vault: Vault) -> None:
    vault.save(DOC)
    home = _runtime.new_home(_runtime.run_dir(vault.path), "claude")  # this process: alive
    result = vault.verify()
    assert result.ok and result.problems == [], result.problems
    assert home.is_dir()


def test_a_killed_resumes_home_is_a_leftover_for_cleanup_not_for_repair(vault: Vault) -> None:
    vault.save(DOC)
    home = _home_of_a_dead_process(_runtime.run_dir(vault.path))
    result = vault.verify()
    assert result.ok and _codes(result) == {f"run/{home.name}": "resume-leftover"}
    [p] = result.warnings
    assert "sessionseal resume --cleanup" in p.message and "plaintext" in p.message
    # --repair infers nothing: the home is kept, and still reported.
    again = vault.verify(repair=True)
    assert _codes(again) == {f"run/{home.name}": "resume-leftover"} and home.is_dir()
    # resume --cleanup has the proof (its marker, its process gone): then all is clean.
    assert cleanup_resumes(vault) == (1, [])
    assert vault.verify().problems == [] and not (vault.path / "run").exists()


def test_an_abandoned_home_is_a_leftover_too(vault: Vault) -> None:
    home = _runtime.new_home(_runtime.run_dir(vault.path), "codex")
    _runtime.note(home, abandoned=True)  # what a failed seal-back marks for the next sweep
    assert _codes(vault.verify()) == {f"run/{home.name}": "resume-leftover"}


def test_anything_else_in_run_is_reported_and_never_removed(vault: Vault, tmp_path: Path) -> None:
    run = _runtime.run_dir(vault.path)
    note = run / "notes.txt"  # a file: no resume makes one here
    note.write_text("maybe plaintext")
    note.chmod(0o600)
    unmarked = run / "resume-abcd1234"  # a resume's name, but no marker: nothing proves it
    unmarked.mkdir(mode=0o700)
    (tmp_path / "elsewhere").mkdir()
    (run / "resume-link").symlink_to(tmp_path / "elsewhere")
    loose = _home_of_a_dead_process(run)
    loose.chmod(0o755)
    expected = {
        "run/notes.txt": "unknown-entry",
        f"run/{unmarked.name}": "unknown-entry",
        "run/resume-link": "unsafe",
        f"run/{loose.name}": "unsafe",
    }
    if os.geteuid() == 0:  # a home of another owner (only root can give one away)
        foreign = _home_of_a_dead_process(run)
        os.chown(foreign, 54321, 54321)
        expected[f"run/{foreign.name}"] = "unsafe"
    result = vault.verify()
    assert _codes(result) == expected
    assert any("chmod 700" in p.message for p in result.errors)
    after = vault.verify(repair=True)
    assert _codes(after) == _codes(result)
    assert note.exists() and unmarked.is_dir() and (run / "resume-link").is_symlink() and loose.is_dir()
    assert (tmp_path / "elsewhere").is_dir()  # never followed


def test_a_run_directory_open_to_others_or_not_a_directory_is_unsafe(vault: Vault) -> None:
    run = _runtime.run_dir(vault.path)
    run.chmod(0o755)
    assert _codes(vault.verify()) == {"run": "unsafe"}
    run.rmdir()
    run.write_text("")
    run.chmod(0o600)
    assert _codes(vault.verify()) == {"run": "unsafe"}


def test_verify_and_resume_name_the_same_directory() -> None:
    from sessionseal._vault import _verify

    assert _verify.RUN_DIR == _runtime.RUN_DIR


def test_another_user_cannot_read_a_resume_home(
    first_user: OSUser, second_user: OSUser, make_user_dir: UserDirs
) -> None:
    # ssalice's vault, with a resume's home holding a transcript, made under the loosest umask;
    # ssbob can neither list run/ nor open the transcript by its path.
    alice, bob = first_user, second_user
    top = make_user_dir.make(alice, mode=0o711)
    vault = top / "vault"
    r = alice.run([alice.bin("sessionseal"), "--vault", str(vault), "init", "--key-provider", "passphrase"], env=PASS)
    assert r.returncode == 0, r.stderr
    make_home = (
        "import os, sys; from pathlib import Path; from sessionseal._resume import _runtime; os.umask(0); "
        "home = _runtime.new_home(_runtime.run_dir(Path(sys.argv[1])), 'claude'); "
        "(home / 't.jsonl').write_text('Periwinkle'); print(home)"
    )
    r = alice.run([alice.python, "-c", make_home, str(vault)])
    assert r.returncode == 0, r.stderr
    home = Path(r.stdout.strip())
    assert (vault / "run").stat().st_mode & 0o777 == 0o700 and home.stat().st_mode & 0o777 == 0o700
    peek = "import os, sys\ntry:\n    print(os.listdir(sys.argv[1]))\nexcept PermissionError:\n    print('denied')"
    assert bob.run([bob.python, "-c", peek, str(vault / "run")]).stdout.strip() == "denied"
    read = "import sys\ntry:\n    print(open(sys.argv[1]).read())\nexcept PermissionError:\n    print('denied')"
    assert bob.run([bob.python, "-c", read, str(home / "t.jsonl")]).stdout.strip() == "denied"
