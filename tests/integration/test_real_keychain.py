"""The master key through a real Secret Service: a private D-Bus session with gnome-keyring.

Locked and prompting keychains must make every command fail fast with a message
that says how to unlock, never hang (docs/keychain.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import keyring
import pytest

from sessionseal import KeychainProvider, Vault, errors
from tests._infra.forkcli import sessionseal
from tests._infra.keychain import SecretService
from tests._infra.sanitizer_cache import fixture_sanitizer_cache  # noqa: F401 - the fixture sanitizer_cache

MINIMAL = '{"title": "t", "messages": [{"role": "user", "content": "hello from the keychain test"}]}'


def assert_answered(err: str) -> None:
    """The keychain answered the CLI (a refusal): the error is not the one a keychain call's
    own deadline gives (4 s, docs/keychain.md), so the CLI never waited for a prompt or a hung
    daemon. This, not the command's wall time, is what tells "fails fast" on a loaded machine;
    a command that hangs fails the test at its timeout."""
    assert "did not answer within" not in err, err


def _env(ss: SecretService, tmp_path: Path, cache: str = "") -> dict[str, str]:
    env = ss.env_for(home=tmp_path, SESSIONSEAL_VAULT=str(tmp_path / "vault"))
    if cache:
        env["SESSIONSEAL_CACHE_DIR"] = cache  # the sanitizer's start-up, shared (tests/_infra/sanitizer_cache.py)
    return env


def test_cli_round_trip_with_the_key_in_the_keychain(
    secret_service: SecretService, tmp_path: Path, sanitizer_cache: str
) -> None:
    env = _env(secret_service, tmp_path, sanitizer_cache)
    r = sessionseal("init", "--json", env=env)
    assert r.code == 0, r.err
    vault_id = json.loads(r.out)["vault_id"]
    sid = sessionseal("save", env=env, input=MINIMAL).out.strip()
    shown = json.loads(sessionseal("show", sid, "--json", env=env).out)
    assert shown["messages"][0]["content"][0]["text"] == "hello from the keychain test"
    info = json.loads(sessionseal("info", "--json", env=env).out)
    assert info["key_provider"] == "keychain"
    assert "SecretService" in info["key_provider_detail"]
    assert [s["id"] for s in json.loads(sessionseal("list", "--json", env=env).out)] == [sid]

    # Another process reads the entry with stock keyring: service 'sessionseal', account = vault id.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import keyring,sys; v=keyring.get_password('sessionseal', sys.argv[1]); "
            "print(v.split(';')[0], len(v.split(';')))",
            vault_id,
        ],
        env={**env, "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert probe.stdout.split() == ["sseal-mk1", "3"]  # the key, and the vault's head (issue 20)
    assert b"hello from the keychain test" not in b"".join(
        p.read_bytes() for p in (tmp_path / "vault").rglob("*") if p.is_file()
    )
    assert sessionseal("delete", sid, "--yes", env=env).code == 0


def test_a_whole_vault_rollback_is_seen_through_the_real_secret_service(
    secret_service: SecretService, tmp_path: Path, sanitizer_cache: str
) -> None:
    """Issue 20, item 7: the keychain keeps the vault's head; a vault directory put back from an
    older copy (everything in it authentic and consistent) is seen, refuses writes, still reads,
    and becomes the vault again only when the owner accepts it."""
    env = _env(secret_service, tmp_path, sanitizer_cache) | {"SESSIONSEAL_KEYCHAIN_HEAD_INTERVAL": "0"}
    vault = tmp_path / "vault"
    assert sessionseal("init", env=env).code == 0
    old = sessionseal("save", env=env, input=MINIMAL).out.strip()
    shutil.copytree(vault, tmp_path / "backup")
    assert sessionseal("save", env=env, input=MINIMAL).code == 0
    before = json.loads(sessionseal("head", "show", "--json", env=env).out)
    assert before["rolled_back"] is False and before["keychain_head"] == before["recorded_head"] > 0

    shutil.rmtree(vault)
    shutil.copytree(tmp_path / "backup", vault)
    entry = _keychain_entry(env, before)
    shown = json.loads(sessionseal("head", "show", "--json", env=env).out)
    assert shown["rolled_back"] is True and shown["keychain_head"] == before["keychain_head"]
    verified = sessionseal("verify", "--json", env=env)
    assert verified.code == 15
    assert [p["code"] for p in json.loads(verified.out)["problems"] if p["severity"] == "error"] == ["rollback"]
    refused = sessionseal("save", env=env, input=MINIMAL)
    assert refused.code == errors.VaultRolledBack.exit_code == 16 and "head accept" in refused.err
    assert sessionseal("delete", old, "--yes", env=env).code == 16
    assert "hello from the keychain test" in sessionseal("show", old, env=env).out  # reads work
    listed = sessionseal("list", env=env)
    assert listed.code == 0 and old in listed.out and "older than its head" in listed.err
    assert _keychain_entry(env, before) == entry  # never written while they disagree

    accepted = json.loads(sessionseal("head", "accept", "--json", env=env).out)
    assert accepted["accepted"] is True and accepted["keychain_head"] > before["keychain_head"]
    assert sessionseal("save", env=env, input=MINIMAL).code == 0
    assert sessionseal("verify", env=env).code == 0


def _keychain_entry(env: dict[str, str], shown: dict[str, object]) -> str:
    vault_id = json.loads((Path(env["SESSIONSEAL_VAULT"]) / "vault.json").read_text())["vault_id"]
    probe = subprocess.run(
        [sys.executable, "-c", "import keyring,sys; print(keyring.get_password('sessionseal', sys.argv[1]))", vault_id],
        env={**env, "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    value = probe.stdout.strip()
    assert value.startswith("sseal-mk1;") and f";head={shown['keychain_head']}:" in value
    return value


def test_library_reads_the_key_once_per_process(real_backend: None, tmp_path: Path) -> None:
    from sessionseal import _keystore

    with Vault.init(tmp_path / "v") as v:
        sid = v.save({"title": "lib"})
        vault_id = v.vault_id
    _keystore._cache.clear()
    calls = 0
    original = KeychainProvider._call

    def counting(self: KeychainProvider, action: str, fn: Callable[..., object]) -> object:
        nonlocal calls
        calls += 1
        return original(self, action, fn)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(KeychainProvider, "_call", counting)
        for _ in range(3):
            with Vault.open(tmp_path / "v") as again:
                assert again.load(sid).title == "lib"
    assert calls == 1
    Vault.open(tmp_path / "v").destroy()
    assert keyring.get_password("sessionseal", str(vault_id)) is None


def test_locked_keychain_fails_fast_with_advice(
    secret_service_factory: Callable[..., SecretService], tmp_path: Path, sanitizer_cache: str
) -> None:
    ss = secret_service_factory()
    env = _env(ss, tmp_path, sanitizer_cache)
    assert sessionseal("init", env=env).code == 0
    sid = sessionseal("save", env=env, input=MINIMAL).out.strip()
    ss.lock()
    # browse too: its app never starts, the error is the CLI's (Textual, when there, is the tui extra).
    for args in (("list",), ("show", sid), ("save",), *([("browse",)] if find_spec("textual") else [])):
        r = sessionseal(*args, env=env, input=MINIMAL, timeout=30)
        assert r.code == errors.KeyUnavailable.exit_code, r.err
        assert_answered(r.err)
        assert "the OS keychain is locked" in r.err and "unlock" in r.err
        assert r.err.count("\n") == 1


def test_init_on_a_locked_keychain_fails_fast(locked_secret_service: SecretService, tmp_path: Path) -> None:
    r = sessionseal("init", env=_env(locked_secret_service, tmp_path), timeout=30)
    assert r.code == errors.KeyUnavailable.exit_code
    assert_answered(r.err)
    assert not (tmp_path / "vault" / "vault.json").exists()


@pytest.mark.slow
def test_keychain_waiting_on_a_prompt_never_hangs_the_cli(
    prompting_secret_service: SecretService, tmp_path: Path
) -> None:
    # With a display the stock backend blocks forever on gcr-prompter (tests/test_infra_keychain.py
    # shows it); the CLI, with no terminal, must not prompt: the keychain refuses at once.
    r = sessionseal("init", env=_env(prompting_secret_service, tmp_path), timeout=30)
    assert r.code == errors.KeyUnavailable.exit_code, r.err
    assert_answered(r.err)


@pytest.mark.slow
def test_interactive_mode_is_bounded_too(prompting_secret_service: SecretService, tmp_path: Path) -> None:
    # Even when prompting is allowed (a person at a terminal), every call has a deadline.
    code = textwrap.dedent(
        """
        import uuid
        from sessionseal import KeychainProvider
        from sessionseal.errors import KeyUnavailable
        p = KeychainProvider(interactive=True, timeout=2)
        try:
            p.load(uuid.uuid4())
        except KeyUnavailable as e:
            print(e)
        """
    )
    env = _env(prompting_secret_service, tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    # The call's own 2 s deadline ended it (the prompt would have waited until the timeout).
    assert out.startswith("the OS keychain did not answer within 2 s"), out


def test_no_keychain_at_all(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "SESSIONSEAL_VAULT": str(tmp_path / "vault")}
    r = sessionseal("init", env=env)
    assert r.code == errors.KeyUnavailable.exit_code
    assert "--key-provider passphrase" in r.err
    assert_answered(r.err)


def test_demo_without_keychain_uses_and_names_the_passphrase_provider(tmp_path: Path, sanitizer_cache: str) -> None:
    r = sessionseal("demo", env={"HOME": str(tmp_path), "SESSIONSEAL_CACHE_DIR": sanitizer_cache}, timeout=120)
    assert r.code == 0, r.err
    assert "key provider: passphrase" in r.out
    assert "none found" in r.out


def test_demo_with_keychain_names_it_and_cleans_up(
    secret_service: SecretService, tmp_path: Path, sanitizer_cache: str
) -> None:
    env = secret_service.env_for(home=tmp_path, SESSIONSEAL_CACHE_DIR=sanitizer_cache)
    r = sessionseal("demo", env=env, timeout=120)
    assert r.code == 0, r.err
    assert "key provider: OS keychain" in r.out
    assert "removed the demo vault and its key" in r.out
