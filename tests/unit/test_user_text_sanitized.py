"""Every text a user can store goes through the sanitizer (issue 21, "Structure").

The write paths are enumerated, not picked: the Vault's public methods, AsyncVault's, the
fields an edit may change (:data:`EDITABLE`) and the CLI's commands.  Each one is either a
*path* below, which stores a vendor-prefixed token through it, or is listed with the reason it
stores no user text.  A new method, field or command that is neither fails
``test_every_write_path_is_classified``; each path then must leave the token nowhere: not in any
stored session, checkpoint name, the index (``list --json``), the audit log, nor in any file
of the vault.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from sessionseal import AsyncVault, Vault
from sessionseal._vault._store import EDITABLE
from sessionseal.cli import cli
from tests.memkeyring import MemoryKeyring

#: A well-formed GitHub classic token (rule ``github-pat``); its redacted form is ``[REDACTED:…]``.
TOKEN = "ghp_" + "Zq8Wm3Nx7Kp2Lr9Ts4Vb6Yc1Hd5Fg0Jk3Mn8Q"
#: A short, well-formed AWS access key id: its placeholder is longer than the key.
AKID = "AKIA" + "QWERTYUIOPASDFGH"
#: Tags that hold a secret: alone, inside other text, and a tag of 64 characters (the most a
#: tag may have) that the placeholder makes longer than that.
TAGS = [TOKEN, f"ci-{TOKEN}", "k" * 43 + "-" + AKID]
SECRETS = (TOKEN, AKID)
#: Events to append: a message, and a state event that sets the tags and the title.
EVENTS = [{"role": "user", "content": TOKEN}, {"type": "state", "tags": TAGS, "title": TOKEN}]

# -- The Vault ------------------------------------------------------------------------------

#: Public methods that store no text a user gives, and why.
NO_USER_TEXT: dict[str, str] = {
    "MAX_SESSION_BYTES": "a constant",
    "init": "creates an empty vault",
    "open": "opens a vault",
    "close": "releases descriptors",
    "destroy": "erases the vault",
    "load": "reads",
    "load_json": "reads",
    "list": "reads",
    "list_json": "reads",
    "list_with_problems": "reads",
    "latest": "reads",
    "search": "reads; the search text is not stored nor audited",
    "checkpoints": "reads",
    "stats": "reads",
    "usage": "reads (the audit names the filters used, never their values)",
    "info": "reads",
    "head": "reads (accept stores the audit log's head: a MAC)",
    "formats": "reads",
    "plan_cleanup": "reads",
    "audit_entries": "reads",
    "audit_records": "reads",
    "verify": "checks, stores nothing given",
    "verify_audit": "checks, stores nothing given",
    "config": "reads",
    "set_config": "the vault's settings: a closed set of keys and values, not a session nor the index",
    "accept_config": "stores a MAC of the settings",
    "export": "writes outside the vault what is stored, already sanitized",
    "delete": "an id",
    "reindex": "rebuilds the index from the stored (sanitized) sessions",
    "migrate": "rewrites what is stored",
    "rekey": "keys only",
    "change_passphrase": "a passphrase is a key, never stored",
    "cleanup": "erases",
    "delete_checkpoint": "an id and a checkpoint's number or stored name",
    "restore_checkpoint": "an id and a checkpoint's number or stored name",
    "link": "ids",
    "set_status": "one of a fixed set of statuses",
    "pin": "a flag",
    "unpin": "a flag",
    "archive": "a flag",
    "unarchive": "a flag",
}

#: Fields an edit may change that hold no user text, and why; the others must have a path.
EDITABLE_NOT_TEXT: dict[str, str] = {
    "status": "one of a fixed set of statuses (set_status, archive)",
    "archived_from": "the status before archive",
    "pinned": "a flag",
    "links": "session ids (link)",
    "redactions": "counts, computed",
}
#: The Vault method that edits each text field in EDITABLE.
EDITABLE_TEXT: dict[str, str] = {"title": "rename", "description": "describe", "tags": "tag"}


class Api:
    """A vault's methods called the same way through :class:`Vault` or :class:`AsyncVault`."""

    def __init__(self, vault: Vault, is_async: bool) -> None:
        self.vault, self.is_async = vault, is_async

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if not self.is_async:
            return getattr(self.vault, name)(*args, **kwargs)
        return asyncio.run(getattr(AsyncVault(self.vault), name)(*args, **kwargs))


def _doc(**extra: Any) -> dict[str, Any]:
    return {"title": "plain", "messages": [{"role": "user", "content": "hello"}], **extra}


def _transcript(root: Path) -> Path:
    project = root / "claude" / "projects" / "-home-dev-shop"
    project.mkdir(parents=True)
    agent_id = "7d0e2c52-5b6f-4a8e-9c11-1f2a3b4c5d6e"
    line = {
        "type": "user",
        "uuid": "u0",
        "parentUuid": None,
        "sessionId": agent_id,
        "timestamp": "2026-03-14T10:00:00.000Z",
        "cwd": "/home/dev/shop",
        "message": {"role": "user", "content": f"push with {TOKEN}"},
    }
    path = project / f"{agent_id}.jsonl"
    path.write_text(json.dumps(line) + "\n")
    return path


def _record(api: Api, sid: uuid.UUID, tmp: Path) -> None:
    if api.is_async:

        async def run() -> None:
            async with await AsyncVault(api.vault).record(title=TOKEN, tags=TAGS, autosave=None) as rec:
                rec.append_message("user", TOKEN)
                rec.update_state(tags=TAGS, description=TOKEN)
                await rec.checkpoint(f"cp-{TOKEN}")

        asyncio.run(run())
        return
    with api.vault.record(title=TOKEN, tags=TAGS, description=TOKEN, autosave=None) as rec:
        rec.append_message("user", TOKEN)
        rec.append_tool_call("shell", {"cmd": f"gh auth login --with-token {TOKEN}"})
        rec.update_state(tags=TAGS, title=f"t {TOKEN}", workspace=TOKEN)
        rec.checkpoint(f"cp-{TOKEN}")


#: Every Vault method that stores user text, and a way to store the token through it.
PATHS: dict[str, Callable[[Api, uuid.UUID, Path], object]] = {
    "save": lambda api, sid, tmp: api(
        "save", _doc(title=TOKEN, description=TOKEN, tags=TAGS, workspace=f"/w/{TOKEN}", extra={"k": TOKEN})
    ),
    "append": lambda api, sid, tmp: api("append", sid, EVENTS),
    "import_sessions": lambda api, sid, tmp: api(
        "import_sessions", json.dumps(_doc(id=str(uuid.uuid4()), title=TOKEN, tags=TAGS)).encode()
    ),
    "import_transcripts": lambda api, sid, tmp: api("import_transcripts", [_transcript(tmp)]),
    "fork": lambda api, sid, tmp: api("fork", sid, title=TOKEN),
    "rename": lambda api, sid, tmp: api("rename", sid, TOKEN),
    "describe": lambda api, sid, tmp: api("describe", sid, TOKEN),
    "tag": lambda api, sid, tmp: api("tag", sid, add=TAGS),
    "checkpoint": lambda api, sid, tmp: api("checkpoint", sid, f"cp-{TOKEN}"),
    "record": _record,
}


def _public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_") and not isinstance(inspect.getattr_static(cls, n), property)}


def test_every_write_path_is_classified() -> None:
    vault_methods = _public(Vault)
    unclassified = vault_methods - set(PATHS) - set(NO_USER_TEXT)
    assert not unclassified, f"add these Vault methods to PATHS (with a test) or NO_USER_TEXT: {unclassified}"
    assert not (set(PATHS) | set(NO_USER_TEXT)) - vault_methods, "names a method the Vault no longer has"
    # AsyncVault runs the Vault's methods in a worker thread: it must have no write path of its own.
    assert _public(AsyncVault) - vault_methods <= {"sync", "parts", "path", "vault_id", "last_auto_cleanup"}
    assert set(EDITABLE) == set(EDITABLE_TEXT) | set(EDITABLE_NOT_TEXT), "classify the new editable field"
    assert set(EDITABLE_TEXT.values()) <= set(PATHS)


@pytest.fixture
def vault(vault_path: Path, memory_keyring: MemoryKeyring) -> Iterator[Vault]:
    v = Vault.init(vault_path)
    try:
        yield v
    finally:
        v.close()


def _everything(vault: Vault, vault_path: Path) -> str:
    """All that the vault holds, as text: sessions, checkpoint names, index, audit, files."""
    parts = [vault.list_json(archived=None)[0].decode()]
    for s in vault.list(archived=None):
        parts.append(vault.load_json(s.id).decode())
        parts += [json.dumps([c.name, c.title]) for c in vault.checkpoints(s.id)]
    parts += [json.dumps(r) for r in vault.audit_records()]
    parts += [p.read_bytes().decode("latin-1") for p in sorted(vault_path.rglob("*")) if p.is_file()]
    return "\n".join(parts)


@pytest.mark.parametrize("is_async", [False, True], ids=["Vault", "AsyncVault"])
@pytest.mark.parametrize("name", sorted(PATHS))
def test_no_write_path_stores_a_secret(
    vault: Vault, vault_path: Path, tmp_path: Path, name: str, is_async: bool
) -> None:
    sid = vault.save(_doc())
    PATHS[name](Api(vault, is_async), sid, tmp_path)
    held = _everything(vault, vault_path)
    for secret in SECRETS:
        assert secret not in held, f"{name} stored a secret in the clear"
    assert "[REDACTED:github-pat" in held  # the path did store something
    for s in vault.list(archived=None):
        vault.load(s.id)  # what was stored still loads: a redacted tag is still a valid tag


# -- Tags -----------------------------------------------------------------------------------


def test_a_tag_without_a_secret_is_kept_byte_for_byte(vault: Vault) -> None:
    sid = vault.save(_doc(tags=["Ünïcode-tag", "a/b:c"]))
    tags = ["release-2.0", "x" * 64, "ghp_short", "naïve+tag"]
    assert vault.tag(sid, add=tags) == ["Ünïcode-tag", "a/b:c", *tags]
    assert vault.load(sid).tags == ["Ünïcode-tag", "a/b:c", *tags]
    assert vault.load(sid).redactions == {}


def test_a_tag_with_a_secret_is_stored_redacted(vault: Vault) -> None:
    sid = vault.save(_doc())
    after = vault.tag(sid, add=TAGS)
    [alone, inside, long] = after
    assert alone.startswith("[REDACTED:github-pat:") and alone.endswith("]")
    assert inside == f"ci-{alone}"  # the text around the secret is kept, as in a title
    assert long.startswith("[REDACTED:aws-access-key-id") and len(long) <= 64  # too long: the placeholder alone
    s = vault.load(sid)
    assert s.tags == after and s.redactions == {"github-pat": 2, "aws-access-key-id": 1}
    [entry] = json.loads(vault.list_json()[0])
    assert entry["tags"] == after
    # Giving the secret again changes nothing, and removes the tag it was stored as.
    assert vault.tag(sid, add=[TOKEN]) == after and vault.load(sid).redactions == s.redactions
    assert vault.tag(sid, remove=[TOKEN, f"ci-{TOKEN}", long]) == []


def test_tags_redacted_to_the_same_value_are_one_tag(vault: Vault) -> None:
    sid = vault.save(_doc(tags=["a-password=Hunter2hunter2", "a-password=Tr0ub4dor&3x"]))
    saved = vault.load(sid).tags
    assert saved == ["a-password=[REDACTED:generic-secret-assignment]"]
    assert vault.tag(sid, add=["a-password=C0rrectHorse!!"]) == saved


# -- The CLI --------------------------------------------------------------------------------

#: Commands that store user text, as arguments ({sid}: a session's id, {doc}: a session JSON
#: file, {T}: the token, {claude}: a transcript directory).
CLI_PATHS: dict[str, list[str]] = {
    "save": ["save", "{doc}", "--title", "{T}", "--tag", "{T}", "--tag", "ci-{T}"],
    "append": ["append", "{sid}", "{events}"],
    "import": ["import", "{doc}"],
    "import-transcripts": ["import-transcripts", "--claude", "{claude}"],
    "fork": ["fork", "{sid}", "--title", "{T}"],
    "rename": ["rename", "{sid}", "{T}"],
    "describe": ["describe", "{sid}", "{T}"],
    "tag": ["tag", "{sid}", "+{T}", "ci-{T}"],
    "checkpoint create": ["checkpoint", "create", "{sid}", "cp-{T}"],
    "checkpoint restore": ["checkpoint", "restore", "{sid}", "1", "--fork", "--title", "{T}"],
}
#: Commands that store no user text (beyond what the Vault paths above cover), and why.
CLI_NO_USER_TEXT: dict[str, str] = {
    "init": "creates an empty vault",
    "show": "reads",
    "list": "reads",
    "search": "reads",
    "latest": "reads",
    "resume": "reads",
    "delete": "an id",
    "rekey": "keys",
    "reindex": "rebuilds from what is stored",
    "index merge": "merges what is stored",
    "info": "reads",
    "migrate": "rewrites what is stored",
    "config show": "reads",
    "config set": "the vault's settings (Vault.set_config)",
    "config accept": "a MAC",
    "schema": "prints",
    "demo": "a demo vault of its own, of fixed text",
    "audit show": "reads",
    "browse": "its keys call Vault.tag, rename, checkpoint and fork, classified above (tests/unit/test_browse.py)",
    "audit report": "reads the audit log; writes a report of its records, no session text",
    "audit verify": "checks",
    "checkpoint list": "reads",
    "checkpoint delete": "an id and a checkpoint",
    "export": "writes outside the vault what is stored",
    "hook claude-session-end": "import-transcripts of one transcript (Vault.import_transcripts)",
    "hook claude-stop": "import-transcripts of one transcript (Vault.import_transcripts)",
    "hook claude-precompact": "import-transcripts of one transcript (Vault.import_transcripts)",
    "hook codex-stop": "import-transcripts of one transcript (Vault.import_transcripts)",
    "hook gemini-session-end": "import-transcripts of one transcript (Vault.import_transcripts)",
    "hooks install": "writes the agents' settings, not the vault",
    "hooks status": "reads the agents' settings",
    "hooks uninstall": "writes the agents' settings, not the vault",
    "doctor": "reads",
    "mcp serve": "reads: its tools are read-only (docs/mcp.md)",
    "mcp install": "writes the agents' settings, not the vault",
    "mcp status": "reads the agents' settings",
    "mcp uninstall": "writes the agents' settings, not the vault",
    "passphrase change": "keys",
    "head show": "reads",
    "remote add": "a remote's name and location, of fixed shapes, into the config (Vault.remotes.add)",
    "remote list": "reads",
    "remote remove": "a remote's name",
    "remote restore": "a remote from a kit into the config; sessions only through the pull's write paths",
    "remote auto": "a remote's name and a delay, into the config (Vault.remotes.auto)",
    "snapshot": "copies the vault's files as they are (Vault.backups.snapshot): no text enters it",
    "key export": "writes a recovery kit outside the vault: a wrapped key, no text",
    "key import": "a key into the key store, no text",
    "device list": "reads the remote; makes this device's keys on first use",
    "device enroll": "a device id and pairing code; writes keys, a device record and a log entry, no text",
    "device revoke": "a device id; writes a key object and log entries, no text",
    "sync": "reads the sessions it sends (stored, already sanitized); writes only its sealed cursor and keys",
    "head accept": "a MAC",
    "verify": "checks",
    "cleanup": "erases",
    "pin": "a flag",
    "unpin": "a flag",
    "archive": "a flag",
    "unarchive": "a flag",
    "stats": "reads",
    "set-status": "a fixed set of statuses",
    "link": "ids",
    "sanitize": "stdin to stdout, no vault",
    "scan": "reads files, no vault",
}


def _leaves(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[str]:
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _leaves(sub, (*path, name))
    else:
        yield " ".join(path)


def test_every_command_is_classified() -> None:
    leaves = set(_leaves(cli))
    unclassified = leaves - set(CLI_PATHS) - set(CLI_NO_USER_TEXT)
    assert not unclassified, f"add these commands to CLI_PATHS (with a test) or CLI_NO_USER_TEXT: {unclassified}"
    assert not (set(CLI_PATHS) | set(CLI_NO_USER_TEXT)) - leaves, "names a command that no longer exists"


@pytest.mark.parametrize("command", sorted(CLI_PATHS))
def test_no_command_stores_a_secret(vault: Vault, vault_path: Path, tmp_path: Path, command: str) -> None:
    sid = vault.save(_doc())
    vault.checkpoint(sid)
    doc, events = tmp_path / "doc.json", tmp_path / "events.json"
    doc.write_text(json.dumps(_doc(id=str(uuid.uuid4()), description=TOKEN, tags=TAGS)))
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    values = {"sid": str(sid), "doc": str(doc), "events": str(events), "T": TOKEN}
    if command == "import-transcripts":
        values["claude"] = str(_transcript(tmp_path).parents[1])
    args = [a.format(**values) for a in CLI_PATHS[command]]
    r = CliRunner().invoke(cli, ["--vault", str(vault_path), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    for secret in SECRETS:
        assert secret not in r.output
    listed = CliRunner().invoke(cli, ["--vault", str(vault_path), "list", "--all", "--json"])
    assert listed.exit_code == 0 and TOKEN not in listed.output
    held = _everything(vault, vault_path)
    for secret in SECRETS:
        assert secret not in held, f"{command} stored a secret in the clear"
    assert "[REDACTED:github-pat" in held
    for s in vault.list(archived=None):
        vault.load(s.id)
