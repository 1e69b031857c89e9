"""Checkpoints and forks (issue 7): named restore points that restore without losing anything,
are bound to their session and number, and are erased with their session."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sessionseal import KeychainProvider, Vault, errors
from sessionseal._checkpoints import check_label, fork_document, number_of, restored_document
from sessionseal.cli import cli
from tests._infra.erasure import delete_cut_short
from tests.memkeyring import MemoryKeyring

SECRET = "ghp_" + "Kp7" * 12


def _texts(vault: Vault, sid: object) -> list[str]:
    return [m.content[0].text for m in vault.load(sid).messages]  # type: ignore[arg-type,union-attr]


def _new(vault: Vault) -> uuid.UUID:
    return vault.save({"title": "live", "tags": ["a"], "messages": [{"role": "user", "content": "one"}]})


def _ckpt_files(vault: Vault) -> list[Path]:
    return sorted(vault.parts.ctx.ckpts.path.iterdir())


def test_checkpoint_captures_the_session_with_its_appends(vault: Vault) -> None:
    sid = _new(vault)
    vault.append(sid, [{"role": "assistant", "content": "two"}])
    cp = vault.checkpoint(sid, "after two")
    assert (cp.number, cp.name, cp.reason, cp.message_count) == (1, "after two", "manual", 2)
    vault.append(sid, [{"role": "user", "content": "three"}])
    auto = vault.checkpoint(sid)
    assert (auto.number, auto.name, auto.message_count) == (2, "checkpoint-2", 3)
    assert [c.name for c in vault.checkpoints(sid)] == ["after two", "checkpoint-2"]
    # The session itself is untouched by a checkpoint.
    assert _texts(vault, sid) == ["one", "two", "three"]


def test_restore_in_place_keeps_what_it_replaces(vault: Vault) -> None:
    sid = _new(vault)
    vault.checkpoint(sid, "start")
    vault.append(sid, [{"role": "assistant", "content": "two"}, {"type": "state", "working_directory": "/w"}])
    vault.tag(sid, add=["later"])
    vault.pin(sid)
    generation = vault.list()[0].generation
    saved = vault.restore_checkpoint(sid, "start")
    assert saved.reason == "before-restore" and saved.message_count == 2 and saved.name == "before-restore-2"
    s = vault.load(sid)
    assert [m.content[0].text for m in s.messages] == ["one"]  # type: ignore[union-attr]
    assert s.working_directory is None
    # What was set about the session stays: a restore must not unpin it (retention) or drop tags.
    assert s.pinned and s.tags == ["a", "later"]
    [summary] = vault.list()
    assert summary.generation == generation + 1 and summary.message_count == 1  # a new version
    # ... and the restore itself can be undone.
    vault.restore_checkpoint(sid, saved.number)
    assert _texts(vault, sid) == ["one", "two"]
    assert [c.reason for c in vault.checkpoints(sid)] == ["manual", "before-restore", "before-restore"]


def test_fork_and_continuation_are_linked_new_sessions(vault: Vault) -> None:
    sid = _new(vault)
    vault.append(sid, [{"type": "state", "working_directory": "/w", "environment": {"LANG": "C"}}])
    vault.checkpoint(sid, "cp")
    vault.append(sid, [{"role": "assistant", "content": "two"}])
    vault.pin(sid)
    f = vault.fork(sid)
    fs = vault.load(f)
    assert fs.links.forked_from == sid and fs.title == "live (fork)" and not fs.pinned and fs.tags == ["a"]
    assert [m.content[0].text for m in fs.messages] == ["one", "two"]  # type: ignore[union-attr]
    assert fs.created_at > vault.load(sid).created_at and vault.checkpoints(f) == []
    at = vault.fork(sid, checkpoint="cp", title=f"retry {SECRET}")
    ats = vault.load(at)
    assert len(ats.messages) == 1 and SECRET not in ats.title and sum(ats.redactions.values()) == 1
    c = vault.fork(sid, continuation=True)
    cs = vault.load(c)
    assert cs.links.continued_from == sid and cs.links.forked_from is None
    assert cs.messages == [] and cs.working_directory == "/w" and cs.environment == {"LANG": "C"}
    assert cs.stats.message_count == 0 and cs.redactions == {}
    assert {s.id for s in vault.list()} == {sid, f, at, c}
    # The source is as it was.
    assert _texts(vault, sid) == ["one", "two"]


def test_names_are_unique_not_numbers_and_sanitized(vault: Vault) -> None:
    sid = _new(vault)
    vault.checkpoint(sid, "x")
    with pytest.raises(errors.InvalidInput, match="that name already"):
        vault.checkpoint(sid, " x ")
    for bad in ("", "7", "#7", "a\nb", "n" * 201):
        with pytest.raises(errors.InvalidInput):
            vault.checkpoint(sid, bad)
    cp = vault.checkpoint(sid, f"with {SECRET}")
    assert SECRET not in cp.name and "[REDACTED:" in cp.name
    # By number, by '#number' and by name.
    assert vault.delete_checkpoint(sid, "#1").name == "x"
    assert [c.number for c in vault.checkpoints(sid)] == [2]
    with pytest.raises(errors.SessionNotFound, match="no such checkpoint"):
        vault.restore_checkpoint(sid, "x")
    with pytest.raises(errors.SessionNotFound, match="no such checkpoint"):
        vault.fork(sid, checkpoint=99)
    other = uuid.uuid4()
    with pytest.raises(errors.SessionNotFound, match="no session"):
        vault.checkpoints(other)
    with pytest.raises(errors.SessionNotFound, match="no session"):
        vault.checkpoint(other, "y")


def test_a_checkpoint_is_bound_to_its_session_and_number(vault: Vault) -> None:
    a, b = _new(vault), _new(vault)
    vault.checkpoint(a, "a1")
    vault.append(a, [{"role": "user", "content": "more"}])
    vault.checkpoint(a, "a2")
    vault.checkpoint(b, "b1")
    ca1, ca2 = (vault.parts.ctx.ckpts.path / f"{vault.parts.keys.file_name(a)}-{n}.ckp" for n in (1, 2))
    cb1 = vault.parts.ctx.ckpts.path / f"{vault.parts.keys.file_name(b)}-1.ckp"
    saved = ca1.read_bytes()
    # Swapped numbers: checkpoint 2's file put in place of checkpoint 1.
    shutil.copy(ca2, ca1)
    with pytest.raises(errors.IntegrityError):
        vault.checkpoints(a)
    # Another session's checkpoint moved in.
    shutil.copy(cb1, ca1)
    with pytest.raises(errors.IntegrityError):
        vault.restore_checkpoint(a, 1)
    # A checkpoint put in place of the session file, and a flipped bit.
    ca1.write_bytes(saved)
    session_file = vault.parts.ctx.sessions.path / (vault.parts.keys.file_name(a) + ".sst")
    shutil.copy(ca1, session_file)
    with pytest.raises(errors.IntegrityError):
        vault.load(a)
    data = bytearray(saved)
    data[-3] ^= 1
    ca1.write_bytes(bytes(data))
    with pytest.raises(errors.IntegrityError):
        vault.fork(a, checkpoint=1)
    # A checkpoint's META length is bounded before anything is read.
    data = bytearray(saved)
    data[116:120] = (1 << 30).to_bytes(4, "big")
    ca1.write_bytes(bytes(data))
    with pytest.raises(errors.IntegrityError):
        vault.checkpoints(a)


def test_deleting_the_session_erases_its_checkpoints(vault: Vault) -> None:
    sid, keep = _new(vault), _new(vault)
    vault.checkpoint(sid, "1st")
    vault.checkpoint(sid, "2nd")
    vault.checkpoint(keep, "k")
    stolen = [p.read_bytes() for p in _ckpt_files(vault) if p.name.startswith(vault.parts.keys.file_name(sid))]
    vault.delete(sid)
    assert [p.name for p in _ckpt_files(vault)] == [f"{vault.parts.keys.file_name(keep)}-1.ckp"]
    # Copies taken before the delete no longer open: the session's key is gone.
    for n, data in enumerate(stolen, 1):
        put_back = vault.parts.ctx.ckpts.path / f"{vault.parts.keys.file_name(sid)}-{n}.ckp"
        put_back.write_bytes(data)
        put_back.chmod(0o600)
    with pytest.raises(errors.SessionNotFound):
        vault.checkpoints(sid)
    # ... and cleanup leaves them: nothing proves them erased (the delete overwrote what it left),
    # so they are reported, not removed (issue 20: only recorded leftovers go).
    plan = vault.plan_cleanup({"keep_last": 10})
    assert plan.orphans == 0 and plan.keyless == 2
    result = vault.cleanup({"keep_last": 10})
    assert result.orphans_removed == 0 and len(_ckpt_files(vault)) == 3
    assert [c.name for c in vault.checkpoints(keep)] == ["k"]


def test_cleanup_removes_the_checkpoints_a_cut_short_delete_left(vault: Vault) -> None:
    sid, keep = _new(vault), _new(vault)
    vault.checkpoint(sid, "1st")
    vault.checkpoint(sid, "2nd")
    vault.checkpoint(keep, "k")
    delete_cut_short(vault, sid)  # rotated, then every overwrite failed: the files stay, tombed
    assert len(_ckpt_files(vault)) == 3
    result = vault.cleanup({"keep_last": 10})
    assert result.orphans_removed == 3  # the session file and its two checkpoints
    assert [p.name for p in _ckpt_files(vault)] == [f"{vault.parts.keys.file_name(keep)}-1.ckp"]
    assert [c.name for c in vault.checkpoints(keep)] == ["k"]
    assert vault.parts.keys.state(fresh=True).tombs == set()


def test_retention_erases_checkpoints_with_their_session(vault: Vault) -> None:
    sid = vault.save({"title": "old", "messages": [], "status": "completed"})
    vault.checkpoint(sid, "c")
    result = vault.cleanup({"keep_last": 0, "min_age": 0})
    assert sid in result.removed and _ckpt_files(vault) == []


def test_recorder_checkpoint_flushes_first(vault: Vault) -> None:
    with vault.record(title="rec", autosave=None) as rec:
        rec.append_message("user", "hello")
        cp = rec.checkpoint("greeted")
        rec.append_message("assistant", "hi")
    assert cp.message_count == 1
    vault.restore_checkpoint(rec.session_id, "greeted")
    assert _texts(vault, rec.session_id) == ["hello"]


def test_async_checkpoints_and_fork(vault_path: Path, provider: KeychainProvider) -> None:
    import asyncio

    from sessionseal import AsyncVault

    async def main() -> None:
        async with await AsyncVault.open(vault_path, key_provider=provider) as av:
            rec = await av.record(title="a", autosave=None)
            async with rec:
                rec.append_message("user", "x")
                await rec.checkpoint("c")
            sid = rec.session_id
            assert [c.name for c in await av.checkpoints(sid)] == ["c"]
            f = await av.fork(sid, checkpoint="c")
            await av.restore_checkpoint(sid, 1)
            await av.delete_checkpoint(sid, "c")
            assert (await av.load(f)).links.forked_from == sid

    Vault.init(vault_path, key_provider=provider).close()
    asyncio.run(main())


def test_pure_helpers() -> None:
    assert number_of("ab", "ab-3.ckp") == 3
    for name in ("ab-03.ckp", "ab-.ckp", "abc-3.ckp", "ab-3.sst", "ab-x.ckp", "ab-٣.ckp"):
        assert number_of("ab", name) is None
    assert check_label("  fine name ") == "fine name"
    doc = {"id": "c", "title": "old", "tags": ["t"], "pinned": False, "messages": [1]}
    now = {"id": "c", "title": "new", "tags": [], "pinned": True, "messages": [1, 2], "links": {"parent": "p"}}
    out = restored_document(doc, now, "T")
    assert out == {
        "id": "c",
        "title": "new",
        "tags": [],
        "pinned": True,
        "messages": [1],
        "links": {"parent": "p"},
        "updated_at": "T",
    }
    new = uuid.uuid4()
    forked = fork_document({**now, "status": "completed"}, new, "T", title=None, continuation=False)
    assert forked["id"] == str(new) and forked["status"] == "active" and forked["title"] == "new (fork)"
    assert forked["links"]["forked_from"] == "c" and forked["messages"] == [1, 2]


def test_cli_checkpoint_and_fork(
    memory_keyring: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    monkeypatch.delenv("SESSIONSEAL_PASSPHRASE", raising=False)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    run("init")
    saved = run("save", "-", input=json.dumps({"title": "t", "messages": [{"role": "user", "content": "a"}]}))
    sid = saved.output.strip()
    r = run("checkpoint", "create", sid, "first", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["number"] == 1
    run("append", sid, input='{"role": "user", "content": "b"}\n')
    assert run("checkpoint", "create", sid, "first").exit_code == 8
    assert run("checkpoint", "create", sid, "12").exit_code == 8
    listed = json.loads(run("checkpoint", "list", sid, "--json").output)
    assert [c["name"] for c in listed] == ["first"]
    assert "#1" in run("checkpoint", "list", sid).output
    r = run("checkpoint", "restore", sid, "first", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["saved_before_restore"]["number"] == 2
    assert len(json.loads(run("show", sid, "--json").output)["messages"]) == 1
    assert "checkpoints: #1 first, #2 before-restore-2" in run("show", sid).output
    r = run("checkpoint", "restore", sid, "2", "--fork", "--title", "again")
    new = r.output.strip().splitlines()[0]
    shown = json.loads(run("show", new, "--json").output)
    assert shown["title"] == "again" and len(shown["messages"]) == 2 and shown["links"]["forked_from"] == sid
    assert run("checkpoint", "restore", sid, "first", "--title", "x").exit_code == 2
    r = run("fork", sid, "--continue", "--json")
    cont = json.loads(r.output)["id"]
    assert f"continues {sid}" in run("show", cont).output
    assert run("checkpoint", "delete", sid, "nope").exit_code == 3
    assert run("checkpoint", "delete", sid, "first").exit_code == 0
    assert run("fork", "00000000-0000-0000-0000-000000000009").exit_code == 3
    actions = [json.loads(line)["action"] for line in run("audit", "show", "--json").output.splitlines() if line]
    assert {"checkpoint.create", "checkpoint.restore", "checkpoint.delete", "fork"} <= set(actions)
    assert os.listdir(tmp_path / "vault" / "checkpoints")
