"""Fuzzing session documents (issue 9): session JSON given to save and import, the models,
appended events, hostile payloads sealed into session and checkpoint containers with the
real session key, and compressed transcripts (the JSON-lines parsers themselves are fuzzed
in test_transcripts.py).  The harness is in _fuzz.py."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import strategies as st

from sessionseal import KeychainProvider, Vault, _checkpoints, _container, _events
from sessionseal._container import FrameType, Kind
from sessionseal._transcripts import identify, read_transcript
from sessionseal.errors import IntegrityError, InvalidInput, SessionSealError, WrongPassphrase
from sessionseal.models import Session, SessionSummary, parse_model, parse_session
from tests.memkeyring import MemoryKeyring
from tests.unit._fuzz import JSON, documented, dumps, fuzz, huge_value, loads, mutations, tweaked_json

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
CLAUDE_MAIN = FIX / "claude/projects/-home-dev-parser/7f3c2a9e-4b1d-4e8a-9c55-2d6f0b8e1a47.jsonl"
CODEX_MAIN = FIX / "codex/sessions/2026/03/14/rollout-2026-03-14T10-22-31-019ceb5a-3f21-7c4e-9b8a-5d2f1e0c7a93.jsonl"

SESSION: dict[str, Any] = {  # a session document, as Vault.save takes it
    "title": "fuzz",
    "tags": ["a", "b"],
    "status": "completed",
    "created_at": "2026-03-14T09:12:53Z",
    "workspace": "/home/dev/p",
    "environment": {"PATH": "/usr/bin"},
    "messages": [
        {"role": "user", "content": "hi", "timestamp": "2026-03-14T09:12:53.204Z"},
        {
            "role": "assistant",
            "model": "m1",
            "cost_usd": 0.01,
            "usage": {"input_tokens": 3, "output_tokens": 4},
            "content": [
                {"type": "thinking", "text": "hmm"},
                {"type": "tool_call", "id": "c1", "name": "bash", "arguments": {"cmd": "ls"}},
            ],
        },
        {"role": "tool", "content": [{"type": "tool_result", "tool_call_id": "c1", "content": "ok"}]},
        {"role": "user", "content": [{"type": "image", "data": "..."}]},
    ],
    "tool_history": [{"tool": "bash", "call_id": "c1", "status": "ok", "duration_ms": 5}],
    "processes": [{"pid": 1, "command": "x"}],
    "connections": [{"name": "mcp", "transport": "stdio"}],
    "stats": {"message_count": 4, "cost_usd": 0.01},
    "links": {"parent": None, "related": []},
    "source": {"tool": "claude-code", "path": "/x"},
}
SESSION_JSON = json.dumps(SESSION).encode()


_WORLDS: dict[str, tuple[Path, Vault, uuid.UUID]] = {}


def world(name: str = "main") -> tuple[Path, Vault, uuid.UUID]:
    """A vault with one session (appended to, with a checkpoint); one per test that adds
    sessions, so that the others' listings stay small."""
    if name not in _WORLDS:
        tmp = Path(tempfile.mkdtemp(prefix=f"sessionseal-fuzz-{name}-"))
        vault = Vault.init(tmp / "vault", key_provider=KeychainProvider(backend=MemoryKeyring()))
        sid = vault.save(SESSION)
        vault.append(sid, [{"role": "user", "content": "more"}, {"type": "state", "title": "t2"}])
        vault.checkpoint(sid, "cp")
        _WORLDS[name] = tmp, vault, sid
    return _WORLDS[name]


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    # Made before the first example: hypothesis' deadline would count their making to it.
    for name in ("main", "save", "import", "transcripts"):
        world(name)
    _stored()
    _transcript_dir()
    yield
    for tmp, vault, _ in _WORLDS.values():
        vault.close()
        shutil.rmtree(tmp, ignore_errors=True)
    _WORLDS.clear()
    if _CLI_VAULT:
        shutil.rmtree(_CLI_VAULT["tmp"], ignore_errors=True)
        _CLI_VAULT.clear()
    _stored.cache_clear()
    _transcript_dir.cache_clear()


def _reads_back(vault: Vault, sid: uuid.UUID) -> None:
    """A stored session loads as a valid model (what was accepted can be read)."""
    assert isinstance(vault.load(sid), Session)


# -- session JSON: save, models, import -----------------------------------------------------------

_DOCS = st.one_of(tweaked_json(SESSION), mutations(SESSION_JSON, random=300))


@fuzz("session.save_json", _DOCS, st.booleans())
def test_save_json(data: bytes, as_str: bool) -> None:
    _, vault, _ = world("save")
    sid, err = documented(vault.save, data.decode("utf-8", "replace") if as_str else data)
    assert err is None or isinstance(err, InvalidInput)
    if sid is not None:
        _reads_back(vault, sid)


_MAPPINGS = st.one_of(
    st.dictionaries(st.sampled_from(sorted(SESSION)) | st.text(max_size=5), JSON, max_size=6),
    tweaked_json(SESSION).map(lambda b: loads(b, {}) if b[:1] == b"{" else {}),
)


@fuzz("session.save_mapping", _MAPPINGS)
def test_save_mapping(doc: dict[str, Any]) -> None:
    # Python callers give mappings: values JSON text cannot hold (lone surrogates, huge ints, NaN).
    _, vault, _ = world("save")
    sid, err = documented(vault.save, doc)
    assert err is None or isinstance(err, InvalidInput)
    if sid is not None:
        _reads_back(vault, sid)


_SUMMARY = {"id": str(uuid.UUID(int=3)), "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}


@fuzz("models", tweaked_json(SESSION) | tweaked_json(_SUMMARY) | JSON.map(dumps), st.booleans())
def test_models(data: bytes, parsed: bool) -> None:
    value: Any = data
    if parsed:
        value = loads(data)
        if not isinstance(value, dict):
            value = {"messages": value}
    for model, what in ((Session, "session"), (SessionSummary, "summary")):
        _, err = documented(parse_model, model, value, what)
        assert err is None or isinstance(err, InvalidInput)
    _, err = documented(parse_session, value)
    assert err is None or isinstance(err, InvalidInput)


_EVENTS = st.lists(
    st.one_of(
        tweaked_json({"type": "message", "role": "user", "content": "x", "model": "m", "cost_usd": 1}),
        tweaked_json({"type": "tool_call", "name": "bash", "arguments": {"a": 1}, "id": "c9"}),
        tweaked_json({"type": "tool_result", "tool_call_id": "c9", "content": "out", "is_error": False}),
        tweaked_json({"type": "state", "working_directory": "/w", "stats": {"cost_usd": 1}, "title": "t"}),
    ).map(lambda b: loads(b, {}) if b[:1] == b"{" else {"type": "?"}),
    min_size=1,
    max_size=3,
)


_APPENDED = uuid.UUID(int=0xA)


@fuzz("session.append", _EVENTS)
def test_append_events(events: list[dict[str, Any]]) -> None:
    _, vault, _ = world()
    sid = vault.save({**SESSION, "id": str(_APPENDED)})  # afresh: appends would pile up
    _, err = documented(_events.parse_events, events, str(sid))
    assert err is None or isinstance(err, InvalidInput)
    _, err = documented(vault.append, sid, events)
    assert err is None or isinstance(err, InvalidInput)
    _reads_back(vault, sid)


@fuzz(
    "session.import_json",
    st.one_of(_DOCS, st.lists(tweaked_json(SESSION), max_size=3).map(lambda ds: b"[" + b",".join(ds) + b"]")),
    st.sampled_from(["skip", "replace", "copy"]),
)
def test_import_json(data: bytes, on_conflict: str) -> None:
    _, vault, _ = world("import")
    result, err = documented(vault.import_sessions, data, on_conflict=on_conflict)
    # What import_sessions documents: bytes that start like a bundle fail as a bundle.
    assert err is None or isinstance(err, InvalidInput | IntegrityError | WrongPassphrase)
    for sid in result.imported if result is not None else []:
        _reads_back(vault, sid)


# -- issue 18, item 12: nesting 100,000 deep and integers of 5,000 digits, everywhere ----------------

#: Where a huge value goes in a session document.
_PLACES = ("extra", "message", "arguments", "stats", "tags", "environment")


def _plant(place: str, value: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SESSION_JSON)
    if place == "extra":
        doc["x"] = value
    elif place == "message":
        doc["messages"][0]["extra"] = value
    elif place == "arguments":
        doc["messages"][1]["content"][1]["arguments"] = {"cmd": value}
    elif place == "stats":
        doc["stats"]["message_count"] = value
    elif place == "tags":
        doc["tags"].append(value)
    else:
        doc["environment"]["HOME"] = value
    return doc


@fuzz("huge.library", st.sampled_from(_PLACES), st.sampled_from(["int", "deep"]))
def test_huge_python_values(place: str, kind: str) -> None:
    _, vault, sid = world("save")
    doc = _plant(place, huge_value(kind))
    for call in (
        lambda: vault.save(doc),
        lambda: vault.append(sid, [doc["messages"][0]]),
        lambda: vault.append(sid, [{"type": "state", **{k: doc[k] for k in ("stats", "tags", "environment")}}]),
        lambda: vault.set_config({"audit": {"rotate_bytes": doc.get("x", 1 << 20)}}),
        lambda: parse_session(doc),
    ):
        _, err = documented(call)
        assert err is None or isinstance(err, InvalidInput)
    vault.config()  # still parses
    _reads_back(vault, sid)


_CLI_VAULT: dict[str, Any] = {}


def _cli_vault() -> tuple[str, MemoryKeyring, str]:
    if not _CLI_VAULT:
        tmp = Path(tempfile.mkdtemp(prefix="sessionseal-fuzz-cli-"))
        kr = MemoryKeyring()
        with Vault.init(tmp / "vault", key_provider=KeychainProvider(backend=kr)) as v:
            sid = v.save(SESSION)
        _CLI_VAULT.update(tmp=tmp, path=str(tmp / "vault"), kr=kr, sid=str(sid))
    return _CLI_VAULT["path"], _CLI_VAULT["kr"], _CLI_VAULT["sid"]


@fuzz(
    "huge.cli",
    st.one_of(tweaked_json(SESSION), tweaked_json(SESSION["messages"][0])),
    st.sampled_from(["save", "append", "import", "config"]),
)
def test_cli_input_paths(data: bytes, command: str) -> None:
    """Whatever the bytes, the CLI answers 0 or a documented code, never 70 (internal error)."""
    import keyring
    from click.testing import CliRunner

    from sessionseal.cli import cli

    path, kr, sid = _cli_vault()
    args = {"save": ["save"], "append": ["append", sid], "import": ["import", "-"], "config": ["config", "set"]}
    previous = keyring.get_keyring()
    keyring.set_keyring(kr)
    try:
        r = CliRunner().invoke(cli, ["--vault", path, *args[command]], input=data, catch_exceptions=False)
    finally:
        keyring.set_keyring(previous)
    assert r.exit_code in (0, 4, 8, 12), r.output  # 4 and 12: bytes that start like a bundle
    if r.exit_code:
        assert r.output.startswith("sessionseal: error: ") and "internal error" not in r.output


# -- hostile payloads in the session's own containers, under its real key ---------------------------


@functools.cache
def _stored() -> tuple[bytes, bytes, bytes]:
    """The META, BODY and EVENTS payloads (decoded) of the world's session."""
    _, vault, sid = world()
    log = vault.parts.store.open(sid)
    return (
        _container.decode_payload(log.frames[0].data),
        _container.decode_payload(log.body),
        _container.decode_payload(log.events[0]),
    )


def _payload(docs: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        docs.map(lambda b: _container.encode_payload(b, compress=True)),
        docs.map(lambda b: _container.encode_payload(b, compress=False)),
        st.binary(max_size=20),
    )


def _hostile_logs() -> st.SearchStrategy[list[tuple[int, bytes]]]:
    def make() -> st.SearchStrategy[list[tuple[int, bytes]]]:
        meta, body, events = (json.loads(x) for x in _stored())
        metas, bodies, ops = _payload(tweaked_json(meta)), _payload(tweaked_json(body)), _payload(tweaked_json(events))
        groups = st.lists(st.tuples(ops, metas), max_size=2)
        return st.tuples(metas, bodies, groups).map(
            lambda t: (
                [(FrameType.META, t[0]), (FrameType.BODY, t[1])]
                + [f for e, m in t[2] for f in ((FrameType.EVENTS, e), (FrameType.META, m))]
            )
        )

    return st.deferred(make)


@fuzz(
    "session.decode",
    _hostile_logs(),
    st.sampled_from(["load", "list", "append", "checkpoint", "export", "edit", "search"]),
)
def test_hostile_session_payloads(frames: list[tuple[int, bytes]], action: str) -> None:
    """What every reader of a session makes of a container that authenticates (sealed with the
    session's real key) but holds any META, BODY and EVENTS payloads."""
    _, vault, sid = world()
    key = vault.parts.keys.session_key(sid, create=False)
    assert key is not None
    data = _container.seal(
        kind=Kind.SESSION, vault_id=vault.vault_id, object_id=sid, generation=50, kek=key, kek_epoch=0, frames=frames
    )
    fname = vault.parts.keys.file_name(sid) + ".sst"
    vault.parts.ctx.sessions.write_atomic(fname, data)
    try:
        documented(vault.load_json, sid)
        documented(vault.load, sid)
        if action == "list":
            documented(vault.list_with_problems, archived=None)
            documented(vault.list_json, archived=None)
        elif action == "append":
            documented(vault.append, sid, [{"role": "user", "content": "x"}])
        elif action == "checkpoint":
            documented(vault.checkpoint, sid, "fuzz")
        elif action == "export":
            documented(vault.export, [sid], format="json", plaintext=True)
            documented(vault.export, [sid], format="markdown", plaintext=True)
        elif action == "edit":
            documented(vault.rename, sid, "new title")
            documented(vault.tag, sid, add=["t"])
        elif action == "search":
            documented(vault.search, "hi")
    finally:
        vault.save({**SESSION, "id": str(sid)})  # a readable session again for the next example


def _hostile_checkpoints() -> st.SearchStrategy[list[tuple[int, bytes]]]:
    def make() -> st.SearchStrategy[list[tuple[int, bytes]]]:
        meta = {
            "name": "cp",
            "created_at": "2026-01-01T00:00:00Z",
            "reason": "manual",
            "title": "t",
            "message_count": 2,
            "size_original": 100,
            "session_generation": 3,
        }
        body = json.loads(_stored()[1])
        return st.tuples(_payload(tweaked_json(meta)), _payload(tweaked_json(body))).map(
            lambda t: [(FrameType.META, t[0]), (FrameType.BODY, t[1])]
        )

    return st.deferred(make)


@fuzz("checkpoint.decode", _hostile_checkpoints(), st.booleans())
def test_hostile_checkpoint_payloads(frames: list[tuple[int, bytes]], restore: bool) -> None:
    _, vault, sid = world()
    key = vault.parts.keys.session_key(sid, create=False)
    assert key is not None
    number = 900
    data = _container.seal(
        kind=Kind.CHECKPOINT,
        vault_id=vault.vault_id,
        object_id=sid,
        generation=number,
        kek=key,
        kek_epoch=0,
        frames=frames,
    )
    fname = _checkpoints.file_name(vault.parts.keys.file_name(sid), number)
    vault.parts.ctx.ckpts.write_atomic(fname, data)
    try:
        documented(vault.checkpoints, sid)
        if restore:
            # What a restore writes is the checkpoint's (authenticated) document: it loads, or
            # fails as an integrity error, like any stored one.
            documented(vault.restore_checkpoint, sid, number)
            documented(vault.fork, sid, checkpoint=number)
            documented(vault.load, sid)
    finally:
        vault.parts.ctx.ckpts.unlink(fname)
        if restore:
            vault.save({**SESSION, "id": str(sid)})


# -- transcripts: compressed files and the import path ---------------------------------------------

_ZST = zstandard.ZstdCompressor().compress(CODEX_MAIN.read_bytes())


@functools.cache
def _transcript_dir() -> Path:
    path = world("transcripts")[0] / "transcript-files"
    path.mkdir()
    return path


@fuzz("transcripts.zst", mutations(_ZST, hot=[4, 5, 6, 7, 8]), memory=True)
def test_compressed_transcripts(data: bytes) -> None:
    path = _transcript_dir() / "rollout-fuzz.jsonl.zst"
    path.write_bytes(data)
    t, err = documented(read_transcript, path, max_bytes=1 << 20)
    assert err is None or isinstance(err, InvalidInput)
    documented(identify, path)
    if t is not None:
        Session.model_validate(t.document)


@fuzz(
    "transcripts.import",
    st.sampled_from([CLAUDE_MAIN, CODEX_MAIN]).flatmap(
        lambda p: st.tuples(st.just(p.name), mutations(p.read_bytes()[:6000], random=300))
    ),
)
def test_import_transcripts(named: tuple[str, bytes]) -> None:
    """A damaged transcript is imported (what parses), or reported: import_transcripts never raises."""
    name, data = named
    _, vault, _ = world("transcripts")
    path = _transcript_dir() / name
    path.write_bytes(data)
    (outcome,) = vault.import_transcripts([path])
    assert outcome.action in ("new", "appended", "updated", "unchanged", "skipped", "failed")
    if outcome.error:
        assert "\n" not in outcome.error
    if outcome.session_id is not None and outcome.action != "failed":
        _reads_back(vault, outcome.session_id)


def test_an_unstorable_session_is_invalid_input() -> None:
    # Each of these passed validation, then failed to serialize: TypeError or ValueError leaked.
    _, vault, _ = world("save")
    nested: Any = 0
    for _ in range(300):
        nested = [nested]
    for doc in ({"x": 10**30}, {"title": "\ud800"}, {"x": nested}):
        with pytest.raises(InvalidInput, match="cannot be stored"):
            vault.save(doc)
    with pytest.raises(InvalidInput):
        vault.save(b'{"x": 123456789012345678901234567890}')
    with pytest.raises(InvalidInput, match="cannot be stored"):
        vault.import_sessions(b'{"x":' + b"[" * 300 + b"]" * 300 + b"}")
    with pytest.raises(SessionSealError):
        vault.save({"created_at": "9999-12-31T23:59:59-23:59"})


def test_found_in_documents() -> None:
    _, vault, sid = world("save")
    # A field name of the input, with a newline, made a two-line message.
    with pytest.raises(InvalidInput) as exc:
        parse_session({"tags": {"\n": 1}})
    assert "\n" not in str(exc.value)
    with pytest.raises(InvalidInput) as exc:
        _events.parse_events([{"type": "state", "\n": 1}], str(sid))
    assert "\n" not in str(exc.value)
    # 9999-12-31T23:59:59-23:59 is in year 10000 in UTC: OverflowError leaked from validation.
    with pytest.raises(InvalidInput):
        parse_session({"created_at": "9999-12-31T23:59:59-23:59"})
    # Saved from a mapping 220 levels deep, it did not load: pydantic's JSON parser stops at 200.
    nested: Any = 0
    for _ in range(220):
        nested = [nested]
    deep_id = vault.save({"x": nested})
    assert vault.load(deep_id).model_extra == {"x": nested}
    # Values that validate but cannot be serialized, appended as events: ValueError, TypeError.
    for _ in range(40):
        nested = [nested]
    with pytest.raises(InvalidInput):
        vault.append(sid, [{"role": "user", "content": "x", "extra": nested}])
    with pytest.raises(InvalidInput):
        vault.append(sid, [{"role": "user", "content": "x", "extra": 10**30}])


def test_found_in_stored_documents() -> None:
    """Documents that authenticate (sealed with the session's key) but have another shape:
    TypeError and AttributeError leaked from every reader."""
    _, vault, sid = world("save")
    key = vault.parts.keys.session_key(sid, create=False)
    assert key is not None
    fname = vault.parts.keys.file_name(sid) + ".sst"
    meta = _container.encode_payload(b'{"title": [], "_n": 5}', compress=False)
    events = _container.encode_payload(b'{"ops": [{"op": {}}]}', compress=False)
    message = b'{"ops":[{"op":"message","value":{}}]}'
    for body, ops in ((b"[]", message), (b'{"messages": 5}', message)):
        frames = [
            (FrameType.META, meta),
            (FrameType.BODY, _container.encode_payload(body, compress=False)),
            (FrameType.EVENTS, _container.encode_payload(ops, compress=False)),
            (FrameType.META, meta),
        ]
        data = _container.seal(
            kind=Kind.SESSION, vault_id=vault.vault_id, object_id=sid, generation=9, kek=key, kek_epoch=0, frames=frames
        )
        vault.parts.ctx.sessions.write_atomic(fname, data)
        for action in (
            lambda: vault.load_json(sid),
            lambda: vault.append(sid, [{"role": "user", "content": "x"}]),
            lambda: vault.rename(sid, "t"),
            lambda: vault.export([sid], format="markdown", plaintext=True),
        ):
            with pytest.raises(SessionSealError):
                action()
    frames[2] = (FrameType.EVENTS, events)  # {"op": {}}: unhashable in check_ops
    data = _container.seal(
        kind=Kind.SESSION, vault_id=vault.vault_id, object_id=sid, generation=9, kek=key, kek_epoch=0, frames=frames
    )
    vault.parts.ctx.sessions.write_atomic(fname, data)
    with pytest.raises(SessionSealError):
        vault.load_json(sid)
    # A body that is not JSON (NaN), saved as is: search's parse raised orjson.JSONDecodeError.
    summary = {
        "id": str(sid),
        "title": "fuzz",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    body = _container.encode_payload(b'{"title": "needle-7f3c", "x": NaN}', compress=False)
    data = _container.seal(
        kind=Kind.SESSION,
        vault_id=vault.vault_id,
        object_id=sid,
        generation=9,
        kek=key,
        kek_epoch=0,
        frames=[
            (FrameType.META, _container.encode_payload(orjson.dumps(summary), compress=False)),
            (FrameType.BODY, body),
        ],
    )
    vault.parts.ctx.sessions.write_atomic(fname, data)
    assert vault.search("needle-7f3c") == []
    vault.save({**SESSION, "id": str(sid)})
