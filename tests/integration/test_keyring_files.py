"""The keychain provider never keeps a master key in a file (issue #18, item 1).

keyrings.alt (installed by the test extra, as users install it on "No recommended backend")
offers ``PlaintextKeyring``, which writes keys base64-encoded to
``~/.local/share/python_keyring/keyring_pass.cfg``.  sessionseal must refuse it however keyring
comes to offer it (autodetection, ``PYTHON_KEYRING_BACKEND``, ``keyringrc.cfg``), use the real
Secret Service directly when keyring chains both, and fail closed on a vault an older version
put there, with an explicit, audited way out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sessionseal import errors
from tests._infra.forkcli import sessionseal
from tests._infra.keychain import SecretService
from tests._infra.sanitizer_cache import fixture_sanitizer_cache  # noqa: F401 - the fixture sanitizer_cache
from tests.integration import _cli
from tests.integration._cli import SRC, Ran

pytest.importorskip("keyrings.alt")

PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"
MINIMAL = '{"title": "t", "messages": [{"role": "user", "content": "kept out of files"}]}'


def _keyring_file(home: Path) -> Path:
    return home / ".local" / "share" / "python_keyring" / "keyring_pass.cfg"


def _files_holding_a_key(home: Path) -> list[Path]:
    """Every file under *home* but the vault that holds a sessionseal key, as written or base64-encoded."""
    import base64

    marks = (b"sseal-mk1", base64.b64encode(b"sseal-mk1;")[:12])
    return [
        p
        for p in home.rglob("*")
        if p.is_file() and "vault" not in p.relative_to(home).parts and any(m in p.read_bytes() for m in marks)
    ]


def _env(ss: SecretService, home: Path, cache: str) -> dict[str, str]:
    # The sanitizer's start-up shared by the commands (tests/_infra/sanitizer_cache.py): outside
    # HOME, holding rule data only, so _files_holding_a_key still sees every file of HOME.
    return ss.env_for(home=home, SESSIONSEAL_VAULT=str(home / "vault"), SESSIONSEAL_CACHE_DIR=cache)


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True, timeout=60, check=False
    )


def _assert_refused(r: Ran, home: Path) -> None:
    assert r.code == errors.KeyUnavailable.exit_code, r.err
    err = r.err
    assert err.count("\n") == 1, err
    assert PLAINTEXT in err and "not an OS keychain" in err
    assert "--key-provider passphrase" in err
    assert not _keyring_file(home).exists()
    assert _files_holding_a_key(home) == []


# -- refused however keyring offers it ----------------------------------------------------------


def test_a_file_backend_named_by_the_environment_is_refused(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "SESSIONSEAL_VAULT": str(tmp_path / "vault"), "PYTHON_KEYRING_BACKEND": PLAINTEXT}
    r = sessionseal("init", env=env)
    _assert_refused(r, tmp_path)
    assert "PYTHON_KEYRING_BACKEND" in r.err
    assert not (tmp_path / "vault" / "vault.json").exists()


def test_a_file_backend_named_by_keyringrc_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "python_keyring").mkdir(parents=True)
    (config / "python_keyring" / "keyringrc.cfg").write_text(f"[backend]\ndefault-keyring={PLAINTEXT}\n")
    env = {"HOME": str(tmp_path), "SESSIONSEAL_VAULT": str(tmp_path / "vault"), "XDG_CONFIG_HOME": str(config)}
    r = sessionseal("init", env=env)
    _assert_refused(r, tmp_path)
    assert "keyringrc.cfg" in r.err


def test_the_low_priority_file_backend_keyring_autodetects_is_refused(tmp_path: Path) -> None:
    # No Secret Service, keyrings.alt installed: keyring's own choice is the plaintext file.
    env = {"HOME": str(tmp_path), "SESSIONSEAL_VAULT": str(tmp_path / "vault")}
    probe = _python("import keyring; print(keyring.get_keyring())", env)
    assert probe.stdout.startswith(PLAINTEXT), probe.stdout + probe.stderr
    _assert_refused(sessionseal("init", env=env), tmp_path)


def test_a_subclass_or_a_lookalike_of_the_secret_service_is_refused(tmp_path: Path) -> None:
    # Any installed package can define (and register) a backend; only the exact classes pass.
    (tmp_path / "planted.py").write_text(
        textwrap.dedent(
            """
            from keyring.backends import SecretService
            from keyrings.alt.file import PlaintextKeyring

            class Subclass(SecretService.Keyring):
                priority = -20

            class Lookalike(PlaintextKeyring):
                priority = -20
            Lookalike.__module__ = "keyring.backends.SecretService"
            Lookalike.__qualname__ = "Keyring"
            """
        )
    )
    code = """
        import keyring, planted
        from keyring.backends import SecretService
        from sessionseal import _keystore
        print(_keystore.is_os_keychain(planted.Subclass()), _keystore.is_os_keychain(planted.Lookalike()),
              _keystore.is_os_keychain(SecretService.Keyring()))
    """
    full = _python(
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + textwrap.dedent(code), {"HOME": str(tmp_path)}
    )
    assert full.returncode == 0, full.stderr
    assert full.stdout.split() == ["False", "False", "True"]
    env = {"HOME": str(tmp_path), "SESSIONSEAL_VAULT": str(tmp_path / "vault"), "PYTHONPATH": f"{SRC}:{tmp_path}"}
    for cls in ("planted.Subclass", "planted.Lookalike"):
        # A new interpreter: the planted module must be found on this command's own PYTHONPATH.
        got = _cli.sessionseal("init", env={**env, "PYTHON_KEYRING_BACKEND": cls})
        assert got.code == errors.KeyUnavailable.exit_code, got.err
        assert "not an OS keychain" in got.err


# -- with a real Secret Service -------------------------------------------------------------------


def test_with_a_secret_service_the_chain_is_not_used_and_nothing_lands_in_the_file(
    secret_service: SecretService, tmp_path: Path, sanitizer_cache: str
) -> None:
    env = _env(secret_service, tmp_path, sanitizer_cache)
    probe = _python("import keyring; b = keyring.get_keyring(); print(type(b).__name__, *map(str, b.backends))", env)
    assert probe.stdout.startswith("ChainerBackend keyring.backends.SecretService.Keyring"), probe.stdout
    assert PLAINTEXT in probe.stdout  # the file backend is in the chain, below the Secret Service

    assert sessionseal("init", env=env).code == 0
    sid = sessionseal("save", env=env, input=MINIMAL).out.strip()
    info = json.loads(sessionseal("info", "--json", env=env).out)
    assert info["key_backend"] == "keyring.backends.SecretService.Keyring"
    assert "keyring.backends.SecretService.Keyring" in info["key_provider_detail"]
    assert sessionseal("verify", env=env).code == 0
    assert sessionseal("show", sid, env=env).code == 0
    assert not _keyring_file(tmp_path).exists()
    assert _files_holding_a_key(tmp_path) == []

    # Allowed to prompt (a person at a terminal), the provider still uses the Secret Service itself,
    # never the chain that would read from the file.
    chosen = _python(
        "from sessionseal import KeychainProvider; print(KeychainProvider(interactive=True).backend_class)", env
    )
    assert chosen.stdout.strip() == "keyring.backends.SecretService.Keyring", chosen.stderr


def _vault_with_its_key_in_the_file(tmp_path: Path, env: dict[str, str]) -> tuple[str, str]:
    """What an older sessionseal made when keyring offered the plaintext file: (vault id, session id)."""
    code = f"""
        from keyrings.alt.file import PlaintextKeyring
        from sessionseal import KeychainProvider, Vault
        with Vault.init({str(tmp_path / "vault")!r}, key_provider=KeychainProvider(backend=PlaintextKeyring())) as v:
            print(v.vault_id, v.save({MINIMAL}))
    """
    r = _python(code, env)
    assert r.returncode == 0, r.stderr
    vault_id, sid = r.stdout.split()
    assert _keyring_file(tmp_path).exists()
    return vault_id, sid


def test_a_vault_whose_key_is_in_the_file_fails_closed_and_is_moved_on_request(
    secret_service: SecretService, tmp_path: Path, sanitizer_cache: str
) -> None:
    env = _env(secret_service, tmp_path, sanitizer_cache)
    vault_id, sid = _vault_with_its_key_in_the_file(tmp_path, env)
    old_file = _keyring_file(tmp_path).read_bytes()

    # Still configured to the file: refused as at init.
    r = sessionseal("show", sid, env={**env, "PYTHON_KEYRING_BACKEND": PLAINTEXT})
    assert r.code == errors.KeyUnavailable.exit_code and PLAINTEXT in r.err, r.err
    assert "kept out of files" not in r.out
    # No keychain at all: refused, and told where the key is and how to move it.
    bare = {"HOME": str(tmp_path), "SESSIONSEAL_VAULT": str(tmp_path / "vault")}
    r = sessionseal("list", env=bare)
    assert r.code == errors.KeyUnavailable.exit_code, r.err
    assert "rekey --from-keyring-file" in r.err and r.err.count("\n") == 1
    # A Secret Service, without the key: the file is never read, and the message says what to do.
    for args in (("show", sid), ("verify",), ("rekey",)):
        r = sessionseal(*args, env=env)
        assert r.code == errors.KeyNotFound.exit_code, r.err
        assert str(_keyring_file(tmp_path)) in r.err and "rekey --from-keyring-file" in r.err
        assert r.err.count("\n") == 1
    assert _keyring_file(tmp_path).read_bytes() == old_file

    r = sessionseal("rekey", "--from-keyring-file", "--json", env=env)
    assert r.code == 0, r.err
    assert json.loads(r.out)["epoch"] == 2
    assert _files_holding_a_key(tmp_path) == []  # the file's entry is gone (the file stays: not ours)
    assert json.loads(sessionseal("show", sid, "--json", env=env).out)["title"] == "t"
    assert sessionseal("verify", env=env).code == 0
    records = [
        json.loads(line)
        for line in sessionseal("audit", "show", "--action", "rekey", "--json", env=env).out.splitlines()
    ]
    assert records[-1]["outcome"] == "ok"
    assert records[-1]["detail"]["keyring_file_copies_removed"] == 1
    # A backup of the file holds only the old key: it no longer opens the vault.
    _keyring_file(tmp_path).write_bytes(old_file)
    stale = _python(
        f"""
        from keyrings.alt.file import PlaintextKeyring
        from sessionseal import KeychainProvider, Vault, errors, _keystore
        try:
            with Vault.open({str(tmp_path / "vault")!r}, key_provider=KeychainProvider(backend=PlaintextKeyring())) as v:
                v.load({sid!r})
        except errors.SessionSealError as e:
            print("refused", type(e).__name__)
        """,
        env,
    )
    assert stale.stdout.startswith("refused"), stale.stdout + stale.stderr
    # verify names the restored stale copy, and the same command removes it (the keychain's key stays).
    r = sessionseal("verify", "--json", env=env)
    assert [p["code"] for p in json.loads(r.out)["problems"]] == ["key-outside-keychain"]
    assert sessionseal("rekey", "--from-keyring-file", env=env).code == 0
    assert _files_holding_a_key(tmp_path) == []
    assert json.loads(sessionseal("info", "--json", env=env).out)["vault_id"] == vault_id


def test_verify_reports_a_copy_of_the_key_left_in_the_file(
    secret_service: SecretService, tmp_path: Path, sanitizer_cache: str
) -> None:
    env = _env(secret_service, tmp_path, sanitizer_cache)
    vault_id = json.loads(sessionseal("init", "--json", env=env).out)["vault_id"]
    assert sessionseal("verify", env=env).code == 0
    # What an older sessionseal left when keyring's chain wrote to the file (or a user copied it there).
    planted = _python(
        f"""
        import keyring
        from keyring.backends import SecretService
        from keyrings.alt.file import PlaintextKeyring
        PlaintextKeyring().set_password("sessionseal", {vault_id!r},
                                        SecretService.Keyring().get_password("sessionseal", {vault_id!r}))
        PlaintextKeyring().set_password("another-app", "me", "not ours to remove")
        """,
        env,
    )
    assert planted.returncode == 0, planted.stderr
    r = sessionseal("verify", "--json", env=env)
    assert r.code == 15, r.err
    problems = json.loads(r.out)["problems"]
    assert [p["code"] for p in problems] == ["key-outside-keychain"]
    assert str(_keyring_file(tmp_path)) in problems[0]["message"] and "rekey" in problems[0]["message"]
    assert sessionseal("verify", "--repair", env=env).code == 15  # never "repaired" by accepting it

    assert sessionseal("rekey", "--from-keyring-file", env=env).code == 0
    assert _files_holding_a_key(tmp_path) == []
    assert sessionseal("verify", env=env).code == 0
    # The file's other entries stay as they were, and the file stays owner-only.
    kept = _python(
        'from keyrings.alt.file import PlaintextKeyring; print(PlaintextKeyring().get_password("another-app", "me"))',
        env,
    )
    assert kept.stdout.strip() == "not ours to remove", kept.stderr
    assert _keyring_file(tmp_path).stat().st_mode & 0o777 == 0o600
    r = sessionseal("rekey", "--from-keyring-file", env=env)
    assert r.code == errors.InvalidInput.exit_code and "nothing to move" in r.err
