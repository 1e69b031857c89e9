"""``audit report`` on a shared workstation, as two real OS users (``ssalice``, ``ssbob``;
docs/reports.md): the owner's refusals are in it, by kind; the other user's attempts were
refused before anything was written into her vault, so her log, and her report, hold none of
his records; the report is hers, 0600."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from sessionseal import errors
from tests._infra.users import OSUser, UserDirs

PASS = "alice passphrase"
DOC = '{"title": "alice private", "messages": [{"role": "user", "content": "alice secret words"}]}'


def test_the_report_of_a_shared_workstation(first_user: OSUser, second_user: OSUser, make_user_dir: UserDirs) -> None:
    alice, bob = first_user, second_user
    home = make_user_dir(alice, mode=0o711)  # bob may traverse it, as many distributions' homes
    vault = home / "vault"
    env = {"SESSIONSEAL_PASSPHRASE": PASS, "SESSIONSEAL_VAULT": str(vault)}

    def ss(user: OSUser, *args: str, **extra: str) -> tuple[int, str, str]:
        r = user.run([user.bin("sessionseal"), *args], env={**env, **extra}, input=DOC if args == ("save",) else None)
        return r.returncode, r.stdout, r.stderr

    assert ss(alice, "init", "--key-provider", "passphrase")[0] == 0
    assert ss(alice, "save")[0] == 0
    # Bob's attempts: refused, and nothing is written into a vault that is not his.
    for args in (("list",), ("audit", "show")):
        assert ss(bob, *args)[0] == errors.UnsafePermissions.exit_code
    # Alice's own refusals: a wrong passphrase, and her vault left readable by others.
    assert ss(alice, "list", SESSIONSEAL_PASSPHRASE="not hers")[0] == errors.WrongPassphrase.exit_code
    alice.run(["chmod", "755", str(vault)], check=True)
    assert ss(alice, "list")[0] == errors.UnsafePermissions.exit_code
    alice.run(["chmod", "700", str(vault)], check=True)

    code, out, err = ss(alice, "audit", "report", "--format", "json", "--out", "-")
    assert code == 0, err
    model = json.loads(out)
    assert model["verification"]["ok"] is True
    kinds = [(r["user"], r["action"], r["kind"]) for r in model["refusals"]]
    assert kinds == [
        (alice.name, "open", "wrong passphrase"),
        (alice.name, "open", "refused: permissions (another user, a link, a loose mode)"),
    ]
    assert [(u["user"], u["uid"], u["owner"]) for u in model["users"]] == [(alice.name, alice.uid, True)]
    assert all(r["uid"] == alice.uid for r in model["records"])
    assert "alice private" not in out and "alice secret words" not in out

    report = home / "review.html"
    code, _, err = ss(alice, "audit", "report", "--out", str(report))
    assert code == 0, err
    st = report.stat()
    assert st.st_uid == alice.uid and stat.S_IMODE(st.st_mode) == 0o600
    page = Path(report).read_text()
    assert "The audit chain verifies" in page and "wrong passphrase" in page
    # Bob cannot read it either: the kernel says no.
    probe = bob.run(f"open({str(report)!r}).read()")
    assert probe.returncode != 0 and "PermissionError" in probe.stderr
