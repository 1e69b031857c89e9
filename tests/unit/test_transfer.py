"""Export and import (issue 8): bundles move sessions between vaults with different keys,
plaintext formats need consent, everything imported is sanitized, bad input imports nothing."""

from __future__ import annotations

import json
import os
import struct
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, Vault, errors
from sessionseal._export import BUNDLE_MAGIC, open_bundle, render, seal_bundle
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

SECRET = "ghp_" + "Tr4nsf3r" * 4 + "Ab12"
FAST = 14  # scrypt 2^14 in tests (the default is 2^17)


@pytest.fixture
def other(tmp_path: Path) -> Vault:
    return Vault.init(tmp_path / "other", key_provider=KeychainProvider(backend=MemoryKeyring()))


def _session(vault: Vault, title: str, **fields: object) -> uuid.UUID:
    messages = [
        {"role": "user", "content": f"{title}: deploy with {SECRET}"},
        {
            "role": "assistant",
            "content": [{"type": "tool_call", "name": "bash", "arguments": {"cmd": "ls"}, "id": "c"}],
        },
        {"role": "tool", "content": [{"type": "tool_result", "tool_call_id": "c", "content": "a.txt"}]},
    ]
    return vault.save({"title": title, "messages": messages, **fields})


def test_a_bundle_moves_sessions_to_a_vault_with_other_keys(vault: Vault, other: Vault) -> None:
    a = _session(vault, "alpha", tags=["ship"])
    b = _session(vault, "beta")
    vault.append(b, [{"role": "user", "content": "appended later"}])
    result = vault.export([a, b], passphrase="correct horse", log2_n=FAST)
    assert result.data is not None and result.data.startswith(BUNDLE_MAGIC)
    assert SECRET.encode() not in result.data and b"alpha" not in result.data  # encrypted, and compressed
    imported = other.import_sessions(result.data, passphrase="correct horse")
    assert (imported.source, imported.imported, imported.skipped) == ("bundle", [a, b], [])
    for sid in (a, b):
        assert json.loads(other.load_json(sid)) == json.loads(vault.load_json(sid))
    assert other.load(b).messages[-1].content[0].text == "appended later"  # type: ignore[union-attr]
    # Importing again skips what is there; copy and replace are explicit.
    again = other.import_sessions(result.data, passphrase="correct horse")
    assert again.imported == [] and [s for s, _ in again.skipped] == [str(a), str(b)]
    copied = other.import_sessions(result.data, passphrase="correct horse", on_conflict="copy")
    assert len(copied.imported) == 2 and not set(copied.imported) & {a, b}
    other.rename(a, "renamed here")
    replaced = other.import_sessions(result.data, passphrase="correct horse", on_conflict="replace")
    assert replaced.imported == [a, b] and other.load(a).title == "alpha"
    [kept] = other.checkpoints(a)  # the replaced version is kept
    assert kept.name.startswith("before import") and kept.title == "renamed here"
    actions = [r["action"] for r in other.audit_records()]
    assert actions.count("import") == 4 and "export" in [r["action"] for r in vault.audit_records()]


def test_export_all_and_filters(vault: Vault) -> None:
    from sessionseal import ListQuery

    a = _session(vault, "a", tags=["keep"])
    _session(vault, "b")
    c = _session(vault, "c", tags=["keep"])
    vault.archive(c)
    everything = vault.export(passphrase="p", log2_n=FAST)
    assert len(everything.session_ids) == 3  # archived ones too
    tagged = vault.export(query=ListQuery(tags=("keep",), archived=None), passphrase="p", log2_n=FAST)
    assert set(tagged.session_ids) == {a, c}
    bundle = open_bundle(tagged.data or b"", b"p")
    assert bundle.manifest["sessions"] == [str(s) for s in tagged.session_ids]
    with pytest.raises(errors.InvalidInput, match="no session to export"):
        vault.export(query=ListQuery(tags=("nope",)), passphrase="p")
    with pytest.raises(errors.SessionNotFound):
        vault.export([uuid.uuid4()], passphrase="p")


def test_wrong_passphrase_and_tampering_fail_cleanly(vault: Vault, other: Vault) -> None:
    data = vault.export([_session(vault, "x"), _session(vault, "y")], passphrase="right", log2_n=FAST).data
    assert data is not None
    with pytest.raises(errors.WrongPassphrase):
        other.import_sessions(data, passphrase="wrong")
    with pytest.raises(errors.WrongPassphrase):
        other.import_sessions(data, passphrase="")
    assert other.list() == []
    assert any(r["action"] == "import" and r["outcome"] != "ok" for r in other.audit_records())
    prefix = struct.calcsize(">8sBBBB16s")
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(errors.IntegrityError):
        open_bundle(bytes(flipped), b"right")
    with pytest.raises(errors.IntegrityError):
        open_bundle(data[:-10], b"right")  # cut inside the last frame (whole frames: below)
    salt = bytearray(data)
    salt[prefix - 1] ^= 1  # another salt: another key
    with pytest.raises(errors.WrongPassphrase):
        open_bundle(bytes(salt), b"right")
    costly = bytearray(data)
    costly[9] = 40  # scrypt 2^40 would exhaust memory: refused before any work
    with pytest.raises(errors.IntegrityError):
        open_bundle(bytes(costly), b"right")
    newer = bytearray(data)
    newer[8] = 2
    with pytest.raises(errors.UnsupportedVersion, match="upgrade"):
        open_bundle(bytes(newer), b"right")
    with pytest.raises(errors.IntegrityError):
        open_bundle(BUNDLE_MAGIC + b"\x01", b"right")


def test_a_whole_frame_dropped_is_refused() -> None:
    docs = [b'{"id":"1"}', b'{"id":"2"}']
    data = seal_bundle(docs, {"sessions": ["1", "2"]}, b"pw", log2_n=FAST)
    prefix = struct.calcsize(">8sBBBB16s")
    pos, frames = prefix + 116, []
    while pos < len(data):
        end = pos + 4 + int.from_bytes(data[pos : pos + 4], "big")
        frames.append((pos, end))
        pos = end
    assert len(frames) == 3 and open_bundle(data, b"pw").documents == docs
    with pytest.raises(errors.IntegrityError):
        open_bundle(data[: frames[-1][0]], b"pw")


def test_json_import_is_sanitized_and_all_or_nothing(vault: Vault) -> None:
    doc = {"title": "pasted", "messages": [{"role": "user", "content": f"token {SECRET}"}]}
    result = vault.import_sessions(json.dumps(doc).encode())
    [sid] = result.imported
    assert sum(result.redactions.values()) == 1 and SECRET not in vault.load_json(sid).decode()
    bad = [doc, {"messages": "not a list"}]
    with pytest.raises(errors.InvalidInput, match="document 2"):
        vault.import_sessions(json.dumps(bad).encode())
    with pytest.raises(errors.InvalidInput, match="neither"):
        vault.import_sessions(b"title: yaml is not imported")
    with pytest.raises(errors.InvalidInput, match="not a session object"):
        vault.import_sessions(b"[1, 2]")
    assert len(vault.list()) == 1


def test_plaintext_formats_need_consent_and_render_the_sanitized_document(vault: Vault, tmp_path: Path) -> None:
    sid = _session(vault, "render me", tags=["t"])
    for fmt in ("json", "yaml", "markdown"):
        with pytest.raises(errors.InvalidInput, match="plaintext"):
            vault.export([sid], format=fmt)
    as_json = json.loads(vault.export([sid], format="json", plaintext=True).data or b"")
    assert as_json == json.loads(vault.load_json(sid))
    assert yaml.safe_load(vault.export([sid], format="yaml", plaintext=True).data or b"") == as_json
    md = (vault.export([sid], format="markdown", plaintext=True).data or b"").decode()
    assert md.startswith("# render me") and "**tool call** `bash`" in md and "[REDACTED:" in md
    assert SECRET not in md
    # Files are owner-only, never clobbered unless asked.
    out = tmp_path / "s.md"
    vault.export([sid], format="markdown", plaintext=True, out=out)
    assert out.stat().st_mode & 0o777 == 0o600
    with pytest.raises(errors.InvalidInput, match="exists"):
        vault.export([sid], format="markdown", plaintext=True, out=out)
    vault.export([sid], format="json", plaintext=True, out=out, overwrite=True)
    assert json.loads(out.read_text()) == as_json
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".s.md")] == []  # no temp left


def test_markdown_fences_cannot_be_closed_by_content() -> None:
    doc = {"title": "t", "messages": [{"role": "tool", "content": [{"type": "tool_result", "content": "a ``` b"}]}]}
    md = render("markdown", [doc]).decode()
    assert "````\na ``` b\n````" in md


def test_cli_export_import_round_trip(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    monkeypatch.setenv("SESSIONSEAL_BUNDLE_PASSPHRASE", "bundle secret")
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    run("--vault", a, "init")
    run("--vault", b, "init")
    doc = {"title": "moving", "tags": ["m"], "messages": [{"role": "user", "content": f"key {SECRET}"}]}
    sid = run("--vault", a, "save", "-", input=json.dumps(doc)).output.strip()
    bundle = str(tmp_path / "out.bundle")
    r = run("--vault", a, "export", "--all", "--tag", "m", "--out", bundle, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["sessions"] == [sid]
    assert os.stat(bundle).st_mode & 0o777 == 0o600
    r = run("--vault", b, "import", bundle)
    assert r.exit_code == 0 and r.output.splitlines()[0] == sid
    assert json.loads(run("--vault", b, "show", sid, "--json").output)["title"] == "moving"
    monkeypatch.setenv("SESSIONSEAL_BUNDLE_PASSPHRASE", "not it")
    assert run("--vault", b, "import", bundle).exit_code == 12
    assert run("--vault", a, "export", sid, "--format", "markdown", "--out", "-").exit_code == 8
    r = run("--vault", a, "export", sid, "--format", "markdown", "--plaintext", "--out", "-")
    assert r.exit_code == 0 and "# moving" in r.output and SECRET not in r.output
    assert run("--vault", a, "export", "--out", bundle).exit_code == 2  # neither ids nor --all
    assert run("--vault", a, "export", sid, "--out", bundle).exit_code == 8  # exists
    assert run("--vault", a, "export", sid, "--out", "-").exit_code == 2  # a bundle to a terminal
