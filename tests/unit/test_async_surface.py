"""`AsyncVault` mirrors `Vault`: every public member, with the same parameters (issue 19).

docs/api.md promises "the same methods as coroutines"; these tests hold the two classes to it
by introspection, so a method added to `Vault` without its async twin fails here, and a few real
calls show the coroutines do what the sync methods do.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from sessionseal import AsyncRecorder, AsyncVault, KeychainProvider, Recorder, Vault, _async
from sessionseal.errors import SessionNotFound


def _public(cls: type) -> dict[str, Any]:
    return {n: inspect.getattr_static(cls, n) for n in dir(cls) if not n.startswith("_")}


def _norm(annotation: Any) -> str:
    # Annotations are strings (PEP 563); `builtins.list` is how a class with a `list` method
    # spells the builtin, and means the same.
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return text.replace("builtins.", "")


#: The sync return type and what the async twin returns instead.
_ASYNC_RETURNS = {"Vault": "AsyncVault", "Recorder": "AsyncRecorder"}


def _async_return(sync: str) -> str:
    sync = _norm(sync)
    if sync.startswith("Iterator["):
        return "AsyncIterator[" + sync[len("Iterator[") :]
    return _ASYNC_RETURNS.get(sync, sync)


def _params(fn: Any) -> list[tuple[str, Any, Any, str]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default, _norm(p.annotation)) for p in sig.parameters.values()]


SYNC = _public(Vault)
ASYNC = _public(AsyncVault)
#: Set by `Vault.__init__` on the instance (properties on `AsyncVault`): compared on real instances below.
INSTANCE_ATTRIBUTES = {"path", "vault_id", "last_auto_cleanup", "parts", "remotes", "backups", "maintenance"}


def test_the_two_classes_have_the_same_public_names() -> None:
    assert sorted(set(SYNC) - set(ASYNC)) == [], "Vault members missing from AsyncVault"
    extra = set(ASYNC) - set(SYNC) - INSTANCE_ATTRIBUTES
    assert sorted(extra) == [], "AsyncVault members Vault does not have"


@pytest.mark.parametrize("name", sorted(SYNC))
def test_each_member_has_a_twin_of_the_same_shape(name: str) -> None:
    sync, other = SYNC[name], ASYNC.get(name)
    assert other is not None, f"AsyncVault.{name} is missing"
    if isinstance(sync, property):
        assert isinstance(other, property), name  # attributes read no disk: a plain property
        return
    if isinstance(sync, (classmethod, staticmethod)):
        assert type(other) is type(sync), name
        sync_fn, async_fn = sync.__func__, other.__func__
    elif inspect.isfunction(sync):
        assert inspect.isfunction(other), name
        sync_fn, async_fn = sync, other
    else:  # a constant
        assert other == sync, name
        return
    # Same parameters: names, kinds (keyword-only stays keyword-only), defaults, types.
    assert _params(async_fn) == _params(sync_fn), name
    ret = _norm(inspect.signature(async_fn).return_annotation)
    assert ret == _async_return(inspect.signature(sync_fn).return_annotation), name
    if ret.startswith("AsyncIterator["):
        assert inspect.isasyncgenfunction(async_fn), f"AsyncVault.{name} should be an async generator"
    else:
        assert inspect.iscoroutinefunction(async_fn), f"AsyncVault.{name} should be a coroutine"
    if name != "close":
        assert re.search(rf"Vault\.{name}\b", async_fn.__doc__ or ""), f"AsyncVault.{name} should cite Vault.{name}"


def test_context_managers_match() -> None:
    # `with Vault` / `async with AsyncVault`, `with vault.record()` / `async with await avault.record()`.
    for sync_cls, async_cls in ((Vault, AsyncVault), (Recorder, AsyncRecorder)):
        assert hasattr(sync_cls, "__enter__") and hasattr(sync_cls, "__exit__")
        assert inspect.iscoroutinefunction(async_cls.__aenter__)
        assert inspect.iscoroutinefunction(async_cls.__aexit__)
        assert not hasattr(async_cls, "__enter__")  # `with` on the async form fails loudly, not silently


def test_instance_attributes_match(vault_path: Path, provider: KeychainProvider) -> None:
    # `path`, `vault_id`, `last_auto_cleanup` are set on the instance, so only a real one shows them.
    async def main() -> None:
        async with await AsyncVault.init(vault_path, key_provider=provider) as av:
            sync_names = {n for n in dir(av.sync) if not n.startswith("_")}
            async_names = {n for n in dir(av) if not n.startswith("_")} - {"sync"}
            assert sync_names == async_names
            for name in (
                *INSTANCE_ATTRIBUTES - {"remotes", "backups", "maintenance"},
                "audit_log_path",
                "MAX_SESSION_BYTES",
            ):
                assert getattr(av, name) == getattr(av.sync, name), name
            # The remotes: the same calls, awaited (add checks over the network: never on the loop).
            assert av.remotes.sync is av.sync.remotes
            await av.remotes.add("r", "s3://bucket/x", check=False)
            assert [r.name for r in await av.remotes.list()] == [r.name for r in av.sync.remotes.list()] == ["r"]
            assert (await av.remotes.remove("r")).name == "r"
            # The backups: a snapshot and a recovery kit, awaited (a whole copy, and scrypt).
            assert av.backups.sync is av.sync.backups
            snap = await av.backups.snapshot(vault_path.parent / "snap")
            assert snap.files > 0 and (vault_path.parent / "snap" / "vault.json").exists()
            assert await av.backups.export_kit(vault_path.parent / "kit.json", "kit passphrase") >= 1
            # The tier merges: the mode is the vault's; a run and the status, awaited (seconds of CPU).
            assert av.maintenance.sync is av.sync.maintenance and av.maintenance.mode == "thread"
            av.maintenance.mode = "manual"
            assert av.sync.maintenance.mode == "manual"
            assert await av.maintenance.run() == 0 and not (await av.maintenance.status()).due

    asyncio.run(main())


def test_calls_through_the_async_vault(vault_path: Path, provider: KeychainProvider) -> None:
    async def main() -> None:
        async with await AsyncVault.init(vault_path, key_provider=provider) as av:
            sid = await av.save({"title": "async", "messages": [{"role": "user", "content": "hello"}]})
            assert await av.append(sid, ({"role": "assistant", "content": f"reply {i}"} for i in range(2))) == 2
            assert len((await av.load(sid)).messages) == 3
            cp = await av.checkpoint(sid, "first")
            assert [c.name for c in await av.checkpoints(sid)] == [cp.name] == ["first"]
            assert [h.id for h in await av.search("reply 1")] == [str(sid)]
            summaries, problems = await av.list_with_problems()
            assert [s.id for s in summaries] == [sid] and problems == []
            assert (await av.verify()).ok
            assert (await av.verify_audit()).ok
            entries, report = await av.audit_entries(session=sid)
            assert report.ok and {"save", "append"} <= {e["action"] for e in entries}
            actions = [rec["action"] async for rec in av.audit_records()]
            assert actions[0] == "init" and "checkpoint.create" in actions
            assert [f.state for f in await av.formats()] == [f.state for f in av.sync.formats()]
            cfg = await av.set_config({"audit": {"rotate_bytes": 1 << 20}})
            assert (await av.config()) == cfg
            exported = await av.export(iter([sid]), format="json", plaintext=True)
            assert exported.session_ids == [sid] and exported.data is not None
            await av.delete(sid)
            with pytest.raises(SessionNotFound):
                await av.load(sid)
            assert await av.list() == []
            assert (await av.import_sessions(exported.data)).imported == [sid]
            assert (await av.load(sid)).title == "async"

    asyncio.run(main())


def test_audit_records_are_read_in_batches(
    vault_path: Path, provider: KeychainProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several batches and a partial last one: the async iterator yields every record, in the
    # sync order (a small batch stands in for a long log).
    monkeypatch.setattr(_async, "_AUDIT_BATCH", 4)

    async def main() -> None:
        async with await AsyncVault.init(vault_path, key_provider=provider) as av:
            sid = await av.save({"title": "t", "messages": []})
            for i in range(9):
                await av.rename(sid, f"t{i}")
            got = [rec async for rec in av.audit_records()]
            assert got == list(av.sync.audit_records())
            assert [r["action"] for r in got] == ["init", "save"] + ["rename"] * 9

    asyncio.run(main())
