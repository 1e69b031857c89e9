"""``sessionseal doctor`` against a real Secret Service (issue 22): an unlocked keychain is
``ok``, a locked one an ``error`` with a hint, reported fast, never by a prompt."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests._infra.forkcli import sessionseal
from tests._infra.keychain import SecretService


def _checks(out: str) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in json.loads(out)["checks"]}


def test_doctor_reports_the_keychain_unlocked_then_locked(
    secret_service_factory: Callable[..., SecretService], tmp_path: Path
) -> None:
    ss = secret_service_factory()
    env = ss.env_for(home=tmp_path, SESSIONSEAL_VAULT=str(tmp_path / "vault"))
    assert sessionseal("init", env=env).code == 0
    r = sessionseal("doctor", "--json", env=env, timeout=60)
    keychain = _checks(r.out)["keychain"]
    assert (r.code, keychain["status"]) == (0, "ok"), r.out + r.err
    assert "keychain" in keychain["message"].lower() or "secret" in keychain["message"].lower()
    ss.lock()
    r = sessionseal("doctor", "--json", env=env, timeout=60)
    checks = _checks(r.out)
    assert (r.code, checks["keychain"]["status"]) == (1, "error"), r.out + r.err
    assert "unlock" in checks["keychain"]["hint"] and "vault" not in checks
    # The keychain refused at once: not the message of the doctor's own 10 s deadline (a prompt
    # would have run into it), whatever the command's wall time on a loaded machine.
    assert "did not answer" not in checks["keychain"]["message"], checks
    human = sessionseal("doctor", env=env, timeout=60)
    assert human.code == 1 and human.out.startswith("error  keychain")


def test_doctor_on_a_locked_keychain_that_could_prompt_does_not(
    secret_service_factory: Callable[..., SecretService], xvfb_display: str, tmp_path: Path
) -> None:
    """A locked keychain whose bus can reach a display: stock keyring would wait on the unlock
    prompt; the doctor (never interactive) reports the keychain and exits within its bound."""
    ss = secret_service_factory(display=xvfb_display)
    env = ss.env_for(home=tmp_path, SESSIONSEAL_VAULT=str(tmp_path / "vault"))
    assert sessionseal("init", env=env).code == 0
    ss.lock()
    r = sessionseal("doctor", "--json", env=env, timeout=60)
    keychain = _checks(r.out)["keychain"]
    assert (r.code, keychain["status"]) == (1, "error"), r.out + r.err
    assert "did not answer" not in keychain["message"], keychain  # refused, never prompted
