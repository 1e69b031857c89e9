"""A recovery kit restores a keychain vault on a fresh machine, through real OS keychains
(issue 26, "Tests": "a recovery kit restores a vault on a fresh device").

Machine A and machine B are two gnome-keyring daemons on private D-Bus sessions, with two HOMEs;
every step is a real ``sessionseal`` process. A makes a vault, a snapshot of it and a kit; B,
whose keychain never held the vault's key, gets the snapshot (as a restore from backup would put
it there) and the kit, imports it, and reads every session; the vault's key never appears in a
command's output.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from tests._infra.forkcli import sessionseal
from tests._infra.keychain import SecretService

KIT_PW = "the recovery kit's passphrase"


def test_a_kit_restores_a_keychain_vault_on_a_fresh_machine(
    secret_service_factory: Callable[..., SecretService], tmp_path: Path
) -> None:
    machine_a, machine_b = secret_service_factory(), secret_service_factory()
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    for home in (home_a, home_b):
        home.mkdir(mode=0o700)
    env_a = machine_a.env_for(home=home_a, SESSIONSEAL_VAULT=str(home_a / "vault"))
    env_b = machine_b.env_for(home=home_b, SESSIONSEAL_VAULT=str(home_b / "vault"))
    pw = tmp_path / "kitpw"
    pw.write_text(KIT_PW)
    pw.chmod(0o600)

    assert sessionseal("init", env=env_a).code == 0
    ids = []
    for i in range(3):
        doc = json.dumps({"title": f"s{i}", "messages": [{"role": "user", "content": f"hello {i}"}]})
        ran = sessionseal("save", env=env_a, input=doc)
        assert ran.code == 0, ran.err
        ids.append(ran.out.strip())
    expected = {sid: json.loads(sessionseal("show", sid, "--json", env=env_a).out) for sid in ids}
    snap = tmp_path / "snap"
    ran = sessionseal("snapshot", "--to", str(snap), "--json", env=env_a)
    assert ran.code == 0, ran.err
    kit = tmp_path / "kit.json"
    ran = sessionseal("key", "export", "--recovery-kit", str(kit), "--kit-passphrase-file", str(pw), env=env_a)
    assert ran.code == 0, ran.err

    # Machine B: the snapshot restored at its vault path, a keychain without the vault's key.
    shutil.copytree(snap, home_b / "vault")
    (home_b / "vault").chmod(0o700)
    assert sessionseal("list", env=env_b).code == 5
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase")
    wrong.chmod(0o600)
    ran = sessionseal("key", "import", "--recovery-kit", str(kit), "--kit-passphrase-file", str(wrong), env=env_b)
    assert ran.code == 12, ran.err
    assert sessionseal("list", env=env_b).code == 5  # nothing was stored
    ran = sessionseal(
        "key", "import", "--recovery-kit", str(kit), "--kit-passphrase-file", str(pw), "--json", env=env_b
    )
    assert ran.code == 0, ran.err
    assert json.loads(ran.out) == {"epoch": 1, "stored": True}
    assert {sid: json.loads(sessionseal("show", sid, "--json", env=env_b).out) for sid in ids} == expected
    ran = sessionseal("verify", "--read-data", env=env_b)
    assert ran.code == 0, ran.out + ran.err
    # Machine B's vault is a vault of its own now: it writes, and machine A's is untouched.
    ran = sessionseal("save", env=env_b, input=json.dumps({"title": "on b", "messages": []}))
    assert ran.code == 0, ran.err
    assert len(json.loads(sessionseal("list", "--json", env=env_a).out)) == 3
