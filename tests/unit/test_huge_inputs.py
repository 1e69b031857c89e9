"""Issue 18, item 12: only documented errors escape.  A document nested 100,000 deep and an
integer of 5,000 digits exited 70 ("internal error") from ``save`` and ``append``: Python's
parser raises RecursionError past about 1,000 levels and ValueError past
``sys.get_int_max_str_digits()`` (4,300).  Every input path now answers exit 8 (InvalidInput),
one line that names no value, and stores nothing.  (Also found: a 5,000-digit integer given to
``Vault.set_config`` as a Python object was stored, and the vault's config never parsed again;
a ``--since`` of 99999999999999d overflowed.)  The fuzz tests plant both too
(tests/unit/_fuzz.py: HUGE_TEXTS, huge_value)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, Vault, errors
from sessionseal._export import seal_bundle
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring
from tests.unit._fuzz import DEEP_TEXT, deep, long_int_text
from tests.unit.conftest import vault_bytes

FAST = 14
DIGITS = 5000


def _message(extra: bytes) -> bytes:
    """A message object whose ``extra`` field is *extra* (raw JSON text)."""
    return b'{"role":"user","content":"hi","extra":' + extra + b"}"


def _session(extra: bytes) -> bytes:
    return b'{"title":"t","messages":[' + _message(extra) + b"]}"


HUGE = {"deep": DEEP_TEXT, "long int": long_int_text(DIGITS)}


@pytest.fixture
def run(memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    monkeypatch.setenv("SESSIONSEAL_BUNDLE_PASSPHRASE", "bundle pass")
    runner = CliRunner()

    def invoke(*args: str, input: bytes | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    assert invoke("init").exit_code == 0
    return invoke


def _refused(r: Result) -> None:
    assert r.exit_code == errors.InvalidInput.exit_code, r.output
    [line] = r.output.splitlines()
    assert line.startswith("sessionseal: error: ") and "internal error" not in line
    assert "9999" not in line and "[[" not in line  # no value echoed


@pytest.mark.parametrize("kind", sorted(HUGE))
def test_the_cli_refuses_huge_json_with_exit_8_on_every_input_path(
    run: Callable[..., Result], kind: str, tmp_path: Path
) -> None:
    sid = run("save", input=_session(b"1")).output.strip()
    vault = tmp_path / "vault"
    before = vault_bytes(vault)
    huge = HUGE[kind]
    _refused(run("save", input=_session(huge)))
    _refused(run("save", input=huge))
    _refused(run("append", sid, input=_message(huge) + b"\n"))
    _refused(run("import", "-", input=_session(huge)))
    _refused(run("import", "-", input=b"[" + _session(huge) + b"]"))
    bundle = seal_bundle(
        [_session(huge)], {"format": "sessionseal bundle", "sessions": []}, b"bundle pass", log2_n=FAST
    )
    _refused(run("import", "-", input=bundle))
    _refused(run("config", "set", input=b'{"audit":{"rotate_bytes":' + huge + b"}}"))
    assert vault_bytes(vault) == before
    assert json.loads(run("show", sid, "--json").output)["messages"][0]["extra"] == 1


def test_a_transcript_line_holding_them_is_reported_not_raised(
    run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "claude" / "projects" / "-p"
    project.mkdir(parents=True)
    line = b'{"type":"user","uuid":"u1","sessionId":"s","timestamp":"2026-03-14T10:00:00Z","message":%s}\n'
    for name, huge in HUGE.items():
        (project / f"{name.replace(' ', '-')}.jsonl").write_bytes(line % _message(huge))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    r = run("import-transcripts", "--claude", "--json")
    assert r.exit_code in (0, 9), r.output
    assert len(json.loads(r.output)["files"]) == 2


def test_huge_durations_are_bad_input(run: Callable[..., Result]) -> None:
    for when in ("99999999999999d", "9" * DIGITS + "d"):
        _refused(run("list", "--since", when))
        _refused(run("audit", "show", "--until", when))


def test_the_library_refuses_them_from_python_objects(tmp_path: Path) -> None:
    provider = KeychainProvider(backend=MemoryKeyring())
    with Vault.init(tmp_path / "v", key_provider=provider) as v:
        sid = v.save({"messages": [{"role": "user", "content": "x"}]})
        big = 10**DIGITS
        nested = deep(100_000)
        for value in (big, -big, nested):
            with pytest.raises(errors.InvalidInput):
                v.save({"messages": [{"role": "user", "content": "x", "extra": value}]})
            with pytest.raises(errors.InvalidInput):
                v.append(sid, [{"role": "user", "content": "x", "extra": value}])
        for text in HUGE.values():
            with pytest.raises(errors.InvalidInput):
                v.save(_session(text))
            with pytest.raises(errors.InvalidInput):
                v.set_config(b'{"audit":{"rotate_bytes":' + text + b"}}")
        # Accepted by the model (a Python int has no bound), refused by its JSON parser: it was
        # stored, and every later open failed with "the vault's config does not parse".
        for config in ({"audit": {"rotate_bytes": big}}, {"retention": {"keep_last": big}}):
            with pytest.raises(errors.InvalidInput) as exc:
                v.set_config(config)
            assert "999" not in str(exc.value)
        assert v.config().audit.rotate_bytes == 8 << 20
    with Vault.open(tmp_path / "v", key_provider=provider) as v:
        assert v.verify().ok
        assert v.config().audit.rotate_bytes == 8 << 20


def test_pythons_digit_limit_is_what_the_cli_meets() -> None:
    # The 5,000 digits of the issue are past the interpreter's default limit (4,300): the case
    # above exercises the ValueError path, not a merely large number.
    assert sys.get_int_max_str_digits() < DIGITS
