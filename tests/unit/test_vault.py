"""The vault's library API: init, save, load, list, delete, info, and what it refuses."""

from __future__ import annotations

import os
import re
import stat
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import KeychainProvider, PassphraseProvider, Session, Vault
from sessionseal.errors import (
    IntegrityError,
    InvalidInput,
    KeyNotFound,
    SessionNotFound,
    VaultExists,
    VaultNotFound,
    WrongPassphrase,
)
from tests.memkeyring import MemoryKeyring
from tests.unit.conftest import vault_bytes

MINIMAL = {"title": "t", "messages": [{"role": "user", "content": "hello"}]}


def test_minimal_document_round_trips(vault: Vault) -> None:
    sid = vault.save(MINIMAL)
    s = vault.load(sid)
    assert s.title == "t"
    assert s.messages[0].role == "user"
    assert s.messages[0].content[0].text == "hello"  # type: ignore[union-attr]


def test_full_model_round_trips_exactly(vault: Vault) -> None:
    session = Session.model_validate(
        {
            "title": "Refactor",
            "description": "d",
            "tags": ["a", "b"],
            "status": "paused",
            "pinned": True,
            "workspace": "/w",
            "working_directory": "/w/src",
            "environment": {"LANG": "C"},
            "config": {"model": "m", "max_tokens": 100},
            "preferences": {"theme": "dark"},
            "messages": [
                {
                    "role": "assistant",
                    "model": "m1",
                    "usage": {"input_tokens": 3, "output_tokens": 4},
                    "cost_usd": 0.5,
                    "content": [
                        {"type": "thinking", "text": "hm"},
                        {"type": "tool_call", "id": "c1", "name": "bash", "arguments": {"cmd": "ls"}},
                    ],
                },
                {
                    "role": "tool",
                    "content": [{"type": "tool_result", "tool_call_id": "c1", "content": "x", "is_error": True}],
                },
            ],
            "tool_history": [{"tool": "bash", "call_id": "c1", "status": "error", "duration_ms": 3}],
            "tool_state": {"bash": {"cwd": "/w"}},
            "open_files": ["a.py"],
            "watched_files": ["b.py"],
            "processes": [{"pid": 12, "command": "pytest", "state": "running"}],
            "connections": [{"name": "fs", "transport": "stdio", "command": ["mcp-fs"]}],
            "stats": {"duration_seconds": 5, "command_count": 1, "message_count": 2, "cost_usd": 0.5},
            "outcome": "ok",
            "links": {"parent": str(uuid.uuid4())},
        }
    )
    sid = vault.save(session, touch=False)
    assert vault.load(sid).model_dump() == session.model_dump()


def test_unknown_fields_survive(vault: Vault) -> None:
    doc = {
        **MINIMAL,
        "future_field": {"x": [1, 2]},
        "messages": [{"role": "user", "content": [{"type": "image", "media": "png", "url": "u"}], "extra": 1}],
    }
    loaded = vault.load(vault.save(doc)).model_dump(mode="json")
    assert loaded["future_field"] == {"x": [1, 2]}
    assert loaded["messages"][0]["extra"] == 1
    assert loaded["messages"][0]["content"][0] == {"type": "image", "media": "png", "url": "u"}


def test_saving_again_keeps_id_and_bumps_generation(vault: Vault) -> None:
    sid = vault.save(MINIMAL)
    s = vault.load(sid)
    s.title = "second"
    assert vault.save(s) == sid
    [summary] = vault.list()
    assert summary.title == "second"
    assert summary.generation == 2


def test_list_newest_first_with_summary_fields(vault: Vault) -> None:
    a = vault.save({**MINIMAL, "title": "a", "tags": ["x"]})
    b = vault.save({**MINIMAL, "title": "b", "stats": {"cost_usd": 1.25}})
    summaries = vault.list()
    assert [s.id for s in summaries] == [b, a]
    assert summaries[0].cost_usd == 1.25
    assert summaries[1].tags == ["x"]
    assert summaries[1].message_count == 1
    assert all(s.size_stored > 0 and s.size_original > 0 for s in summaries)


def test_delete_removes_file_and_key(vault: Vault, vault_path: Path) -> None:
    sid = vault.save(MINIMAL)
    vault.delete(sid)
    assert vault.list() == []
    assert list((vault_path / "sessions").iterdir()) == []
    with pytest.raises(SessionNotFound):
        vault.load(sid)
    with pytest.raises(SessionNotFound):
        vault.delete(sid)


def test_not_found_and_bad_ids(vault: Vault) -> None:
    with pytest.raises(SessionNotFound):
        vault.load(uuid.uuid4())
    with pytest.raises(InvalidInput):
        vault.load("not-a-uuid")


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({"messages": [{"content": "no role"}]}, id="missing-role"),
        pytest.param({"status": "weird"}, id="bad-enum"),
        pytest.param({"tags": ["has space"]}, id="bad-tag"),
        pytest.param({"messages": "nope"}, id="wrong-type"),
        pytest.param(b"\x00\xff garbage", id="binary"),
        pytest.param("{not json", id="malformed"),
    ],
)
def test_bad_input_is_refused_and_touches_nothing(vault: Vault, vault_path: Path, doc: object) -> None:
    vault.save(MINIMAL)
    before = vault_bytes(vault_path)
    with pytest.raises(InvalidInput) as info:
        vault.save(doc)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert vault_bytes(vault_path) == before


def test_error_message_never_echoes_the_value(vault: Vault) -> None:
    with pytest.raises(InvalidInput) as info:
        vault.save({"status": "ghp_secretvalue123456"})
    assert "ghp_secretvalue" not in str(info.value)


def test_modes_are_owner_only_whatever_the_umask(vault_path: Path, provider: KeychainProvider) -> None:
    old = os.umask(0)
    try:
        v = Vault.init(vault_path, key_provider=provider)
        v.save(MINIMAL)
        v.close()
    finally:
        os.umask(old)
    for p in [vault_path, *vault_path.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), p


def test_file_names_reveal_nothing(vault: Vault, vault_path: Path) -> None:
    sid = vault.save({**MINIMAL, "title": "secret-project-name"})
    names = [p.name for p in vault_path.rglob("*")]
    assert not any(str(sid) in n or sid.hex in n or "secret" in n for n in names)


def test_init_twice_refuses(vault: Vault, vault_path: Path, provider: KeychainProvider) -> None:
    with pytest.raises(VaultExists):
        Vault.init(vault_path, key_provider=provider)


def test_init_refuses_non_empty_directory(tmp_path: Path, provider: KeychainProvider) -> None:
    (tmp_path / "v").mkdir(mode=0o700)
    (tmp_path / "v" / "notes.txt").write_text("mine")
    with pytest.raises(VaultExists):
        Vault.init(tmp_path / "v", key_provider=provider)


def test_open_missing_vault(tmp_path: Path) -> None:
    with pytest.raises(VaultNotFound):
        Vault.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir(mode=0o700)
    with pytest.raises(VaultNotFound):
        Vault.open(tmp_path / "empty")


def test_reopen_reads_the_key_from_the_keychain(vault_path: Path) -> None:
    backend = MemoryKeyring()
    v = Vault.init(vault_path, key_provider=KeychainProvider(backend=backend))
    sid = v.save(MINIMAL)
    v.close()
    [(service, account)] = backend.store
    assert service == "sessionseal"
    assert account == v.vault_id.__str__()
    with Vault.open(vault_path, key_provider=KeychainProvider(backend=backend)) as again:
        assert again.load(sid).title == "t"


def test_missing_keychain_entry(vault_path: Path) -> None:
    from sessionseal import _keystore

    backend = MemoryKeyring()
    v = Vault.init(vault_path, key_provider=KeychainProvider(backend=backend))
    v.save(MINIMAL)
    v.close()
    backend.store.clear()
    _keystore._cache.clear()
    with (
        Vault.open(vault_path, key_provider=KeychainProvider(backend=backend)) as again,
        pytest.raises(KeyNotFound),
    ):
        again.list()


def test_wrong_master_key_is_an_integrity_error(vault_path: Path) -> None:
    from sessionseal import _keystore

    backend = MemoryKeyring()
    v = Vault.init(vault_path, key_provider=KeychainProvider(backend=backend))
    v.save(MINIMAL)
    v.close()
    [(k, value)] = backend.store.items()
    backend.store[k] = _keystore.encode_keys(_keystore.MasterKeys({1: os.urandom(32)}))
    _keystore._cache.clear()
    with (
        Vault.open(vault_path, key_provider=KeychainProvider(backend=backend)) as again,
        pytest.raises(IntegrityError),
    ):
        again.list()
    assert value != backend.store[k]


def test_passphrase_vault(vault_path: Path) -> None:
    v = Vault.init(vault_path, key_provider=PassphraseProvider("correct horse", log2_n=14))
    sid = v.save(MINIMAL)
    v.close()
    assert (vault_path / "keyfile.json").exists()
    with Vault.open(vault_path, passphrase="correct horse") as again:
        assert again.load(sid).title == "t"
    with Vault.open(vault_path, passphrase="wrong"), pytest.raises(WrongPassphrase):
        Vault.open(vault_path, passphrase="wrong").list()


def test_info(vault: Vault, vault_path: Path) -> None:
    vault.save(MINIMAL)
    info = vault.info()
    assert info.vault_path == str(vault_path)
    assert info.key_provider == "keychain"
    assert info.session_count == 1
    assert info.stored_bytes > 0


def test_a_failed_init_leaves_no_key_behind(vault_path: Path) -> None:
    backend = MemoryKeyring()
    vault_path.mkdir(mode=0o700)
    (vault_path / "keytable.sst").mkdir()  # makes the key table write fail
    with pytest.raises(OSError):  # noqa: PT011 - StorageError or UnsafePermissions, both OSError
        Vault.init(vault_path, key_provider=KeychainProvider(backend=backend))
    assert backend.store == {}


def test_many_sessions_and_reopen(vault_path: Path) -> None:
    backend = MemoryKeyring()
    with Vault.init(vault_path, key_provider=KeychainProvider(backend=backend)) as v:
        ids = {v.save({**MINIMAL, "title": f"s{i}"}) for i in range(30)}
        for sid in list(ids)[:10]:
            v.delete(sid)
            ids.remove(sid)
    with Vault.open(vault_path, key_provider=KeychainProvider(backend=backend)) as v:
        assert {s.id for s in v.list()} == ids


def test_session_moved_under_another_id_is_detected(vault: Vault, vault_path: Path) -> None:
    a = vault.save({**MINIMAL, "title": "a"})
    b = vault.save({**MINIMAL, "title": "b"})
    files = {p.name: p.read_bytes() for p in (vault_path / "sessions").iterdir()}
    # Swap the two containers' contents under each other's names.
    (na, da), (nb, db) = files.items()
    (vault_path / "sessions" / na).write_bytes(db)
    (vault_path / "sessions" / nb).write_bytes(da)
    for sid in (a, b):
        with pytest.raises(IntegrityError):
            vault.load(sid)


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)
_messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "tool"]), "content": _text}), max_size=6
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    title=_text,
    messages=_messages,
    env=st.dictionaries(st.from_regex(r"[A-Z_]{1,12}", fullmatch=True), _text, max_size=4),
)
def test_round_trip_is_stable_and_never_plaintext(
    vault: Vault, vault_path: Path, title: str, messages: list[dict[str, str]], env: dict[str, str]
) -> None:
    sid = vault.save({"title": title, "messages": messages, "environment": env})
    first = vault.load(sid)
    # Sanitizing is idempotent: saving what was loaded stores the same document.
    vault.save(first)
    second = vault.load(sid)
    assert second.model_dump(exclude={"updated_at"}) == first.model_dump(exclude={"updated_at"})
    assert len(second.messages) == len(messages)
    on_disk = vault_bytes(vault_path)
    for text in [title, *(m["content"] for m in messages)]:
        probe = text.encode()
        if len(probe) >= 24:
            assert probe[:24] not in on_disk


def test_planted_phrase_is_in_no_vault_file(vault: Vault, vault_path: Path) -> None:
    phrase = "the quick brown fox recorded in a private transcript 4f1c"
    vault.save(
        {"title": phrase, "description": phrase, "tags": ["fox"], "messages": [{"role": "user", "content": phrase}]}
    )
    on_disk = vault_bytes(vault_path)
    for n in (12, 16, len(phrase)):
        assert phrase[:n].encode() not in on_disk
    assert b"fox" not in b"".join(p.name.encode() for p in vault_path.rglob("*"))


def test_async_vault_does_not_block_the_loop(vault_path: Path) -> None:
    import asyncio

    from sessionseal import AsyncVault
    from tests.unit._loop import gate

    async def main() -> tuple[list[str], list[str]]:
        v = await AsyncVault.init(vault_path, key_provider=PassphraseProvider("p", log2_n=15))
        loop, calls = asyncio.get_running_loop(), list[str]()
        for name in ("save", "list", "load", "delete"):
            setattr(v.sync, name, gate(loop, getattr(v.sync, name), calls))
        big = {"messages": [{"role": "user", "content": "x" * 2_000_000}]}
        ids = [await v.save(big) for _ in range(3)]
        titles = [s.title for s in await v.list()]
        assert len({(await v.load(i)).id for i in ids}) == 3
        await v.delete(ids[0])
        await v.close()
        return calls, titles

    calls, titles = asyncio.run(main())
    assert len(titles) == 3
    # Each call ran in a worker thread while the loop went on (scrypt, zstd and fsync included).
    assert calls == ["save"] * 3 + ["list"] + ["load"] * 3 + ["delete"]


def test_key_table_append_in_flight_is_not_an_integrity_error(
    vault: Vault, vault_path: Path, provider: KeychainProvider
) -> None:
    sid = vault.save(MINIMAL)
    table = vault_path / "keytable.sst"
    whole = table.read_bytes()
    vault.save({**MINIMAL, "id": "22222222-2222-4222-8222-222222222222"})
    grown = table.read_bytes()
    table.write_bytes(grown[: len(whole) + 20])  # another process's delta, half written
    with Vault.open(vault_path, key_provider=provider) as reader:
        assert reader.load(sid).title == "t"
    table.write_bytes(whole[:150])  # a cut inside the snapshot (the first frame) is never forgiven
    with Vault.open(vault_path, key_provider=provider) as reader, pytest.raises(IntegrityError):
        reader.load(sid)


def test_config_is_encrypted_validated_and_versioned(vault: Vault, vault_path: Path) -> None:
    from sessionseal.errors import InvalidInput as Bad

    assert vault.config().sanitizer.literals == []
    vault.set_config(
        {"sanitizer": {"literals": ["db7.internal.example"], "rules": [{"id": "ticket", "regex": "TCK-[0-9]{6}"}]}}
    )
    assert vault.config().sanitizer.literals == ["db7.internal.example"]
    assert b"db7.internal" not in vault_bytes(vault_path)
    before = vault_bytes(vault_path)
    for bad in ({"sanitizer": {"rules": [{"id": "x", "regex": "("}]}}, {"unknown": 1}, "{nope"):
        with pytest.raises(Bad):
            vault.set_config(bad)
    assert vault_bytes(vault_path) == before
    cfg = vault_path / "config.sst"
    data = bytearray(cfg.read_bytes())
    data[-1] ^= 1
    cfg.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        vault.config()


def test_only_tokens_keep_a_fingerprint_in_the_vault(vault: Vault) -> None:
    token = "ghp_Zb0zDXrzRQpTA3VynMF143hT3wSZhx38g0mT"
    vault.set_config({"sanitizer": {"rules": [{"id": "acme-key", "regex": r"ACK-[0-9a-f]{40}", "fingerprint": True}]}})
    acme = "ACK-" + "3f9c2a7be1d84c6f9a0b5e2d7c1f8a4b6e9d0c3a"
    content = f"password=Summer2024! then {token} and {acme}"
    sid = vault.save(
        {"messages": [{"role": "user", "content": content}], "environment": {"DB_PASSWORD": "Summer2024!"}}
    )
    s = vault.load(sid)
    text = s.messages[0].content[0].text  # type: ignore[union-attr]
    assert re.fullmatch(
        r"password=\[REDACTED:generic-secret-assignment\] then \[REDACTED:github-pat:[0-9a-f]{8}\]"
        r" and \[REDACTED:acme-key:[0-9a-f]{8}\]",
        text,
    )
    assert s.environment == {"DB_PASSWORD": "[REDACTED:secret-named-value]"}
    # The same token in another session of the vault: the same placeholder.
    again = vault.load(vault.save({"messages": [{"role": "user", "content": token}]}))
    assert again.messages[0].content[0].text == text.split(" ")[2]  # type: ignore[union-attr]


def test_user_rules_and_literals_apply_at_save(vault: Vault, vault_path: Path) -> None:
    vault.set_config(
        {
            "sanitizer": {
                "literals": ["db7.corp.internal"],
                "rules": [{"id": "ticket-id", "regex": r"TCK-[0-9]{6}", "keywords": ["tck-"]}],
            }
        }
    )
    sid = vault.save({"messages": [{"role": "user", "content": "see TCK-123456 on db7.corp.internal"}]})
    text = vault.load(sid).messages[0].content[0].text  # type: ignore[union-attr]
    # User rules and literals name values people choose: no fingerprint unless a rule asks.
    assert text == "see [REDACTED:ticket-id] on [REDACTED:literal]"
    from sessionseal.errors import InvalidInput as Bad

    with pytest.raises(Bad):
        vault.set_config(
            {"sanitizer": {"rules": [{"id": "ticket-id", "regex": "x"}, {"id": "ticket-id", "regex": "y"}]}}
        )


def test_bad_allowlist_regex_is_refused_without_echoing_it(vault: Vault) -> None:
    from sessionseal.errors import InvalidInput as Bad

    with pytest.raises(Bad) as info:
        vault.set_config({"sanitizer": {"allowlist": ["ok-value", "re:acme-internal-(db"]}})
    assert "acme-internal" not in str(info.value)
    assert "entry 2" in str(info.value)


def test_a_table_replaced_twice_at_the_same_inode_is_not_taken_for_ours(
    vault_path: Path, provider: KeychainProvider, tmp_path: Path
) -> None:
    """Found by the concurrency harness (issue 9): ext4 hands a freed inode to the next new
    file at once, so after rotations by another process the key table (and the index) could
    be back at the inode and size this process cached.  A delta appended under the stale
    data key then made the table unreadable: every session lost.  The header is compared now.

    The reuse is made certain here: the other process's table is written into our inode."""
    import shutil

    with Vault.init(vault_path, key_provider=provider) as first:
        kept = first.save(MINIMAL)
        first.rekey()  # both files rewritten as one snapshot each
        first.list()  # the table and the index cached by this process
        twin = tmp_path / "twin"
        shutil.copytree(vault_path, twin)
        with Vault.open(twin, key_provider=provider) as other:
            other.rekey()
            other.rekey()  # the key store now holds only the twin's new master key
        for name in ("keytable.sst", "index.sst"):
            with open(vault_path / name, "r+b") as f:  # same inode, same size, another header
                data = (twin / name).read_bytes()
                f.write(data)  # the sizes may differ by a byte or two (the state's counters)
                f.truncate()
        # The twin's table anchors the twin's audit log (issue 20): its history comes along.
        (vault_path / "audit" / "audit.log").write_bytes((twin / "audit" / "audit.log").read_bytes())
        assert not first.parts.keys.keytable().is_current(first.parts.ctx.root)
        assert first.parts.index.cached is not None and not first.parts.index.cached.is_current(first.parts.ctx.root)
        added = first.save(MINIMAL)  # appends a key-table delta and an index delta
    with Vault.open(vault_path, key_provider=provider) as fresh:
        assert {s.id for s in fresh.list()} == {kept, added}
        assert fresh.verify(read_data=True).problems == []
