"""A second, unprivileged OS user can neither read, list nor alter the first user's vault.

Root bypasses file modes, so these run the product as two real users (``ssalice``,
``ssbob``, created by .ci/run) through runuser.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from sessionseal import errors
from tests._infra.users import OSUser, UserDirs

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
                         ("read vault.json", lambda: open({str(vault / 'vault.json')!r}, 'rb').read()),
                         ("create file", lambda: open({str(vault / 'planted')!r}, 'wb'))):
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
