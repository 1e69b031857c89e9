"""Fuzzing the vault's own files (issue 9): index, key table, config, audit log and anchor,
vault.json and autoclean.json, the passphrase key file, the keychain value, export bundles.

Each starts from the files of a real vault, mutated; where authentication makes byte
mutations fail early, hostile documents are also sealed with the vault's real keys, so that
the decoders behind the MAC see them.  The harness is in _fuzz.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import struct
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import assume
from hypothesis import strategies as st

from sessionseal import KeychainProvider, PassphraseProvider, Vault, _audit, _container, _crypto, _export
from sessionseal._audit import ANCHOR, AUDIT_DIR, CURRENT, PENDING, AuditLog
from sessionseal._audit._records import FORMAT_UNTRACKED
from sessionseal._config import read_config
from sessionseal._configfile import CONFIG_FILE, audit_settings, read_config_body, write_config_body
from sessionseal._container import FrameType, Kind
from sessionseal._fs import Dir
from sessionseal._index import INDEX_FILE, Index
from sessionseal._keystore import MasterKeys, decode_keys, encode_keys
from sessionseal._keytable import KEYTABLE, KeyTable
from sessionseal._passphrase import KEYFILE, MAX_LOG2_N, MIN_LOG2_N
from sessionseal._vault import _opening
from sessionseal.errors import IntegrityError, InvalidInput, KeyStoreError
from tests.memkeyring import MemoryKeyring
from tests.unit._fuzz import JSON, LENGTHS, documented, dumps, frame_offsets, fuzz, mutations, tweaked_json

# -- a real vault, made once -----------------------------------------------------------------


@dataclass
class World:
    tmp: Path
    vault: Vault
    provider: KeychainProvider
    master: MasterKeys
    secret: bytes
    files: dict[str, bytes]
    scratch: Dir

    @property
    def vid(self) -> uuid.UUID:
        return self.vault.vault_id


def put(d: Dir, name: str, data: bytes) -> None:
    """Replace a file owner-only, without the fsyncs of write_atomic (scratch files)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=d.fd)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def fake_scrypt(passphrase: bytes, salt: bytes, *, log2_n: int, r: int, p: int) -> bytes:
    """scrypt's stand-in (a hash): the fuzz is about parsing.  It checks that no parameter
    read from a file reaches scrypt unchecked (an absurd cost must be refused before any work)."""
    assert MIN_LOG2_N <= log2_n <= MAX_LOG2_N and 1 <= r <= 32 and 1 <= p <= 16, (log2_n, r, p)
    return hashlib.sha256(b"%d %d %d|" % (log2_n, r, p) + salt + b"|" + passphrase).digest()


@functools.cache
def world() -> World:
    tmp = Path(tempfile.mkdtemp(prefix="sessionseal-fuzz-"))
    provider = KeychainProvider(backend=MemoryKeyring())
    vault = Vault.init(tmp / "vault", key_provider=provider)
    ids = [
        vault.save({"title": f"s{i}", "tags": ["x"], "messages": [{"role": "user", "content": f"hi {i}"}]})
        for i in range(3)
    ]
    vault.append(ids[0], [{"role": "assistant", "content": "more"}])
    vault.checkpoint(ids[1], "cp")
    vault.set_config(
        {"sanitizer": {"literals": ["db.internal.example"]}, "retention": {"max_age": "90d", "keep_last": 2}}
    )
    vault.delete(ids[2])
    vault.load(ids[0])
    vault.list()
    root = tmp / "vault"
    files = {name: (root / name).read_bytes() for name in (INDEX_FILE, KEYTABLE, CONFIG_FILE, "vault.json")}
    secret = vault.parts.keys.keytable().vault_secret
    files[f"{AUDIT_DIR}/{CURRENT}"], files[f"{AUDIT_DIR}/{ANCHOR}"] = _untracked_audit(
        vault.vault_id, secret, (root / AUDIT_DIR / CURRENT).read_bytes()
    )
    scratch = Dir(tmp / "scratch", create=True)
    return World(tmp, vault, provider, vault.parts.keys.master(), secret, files, scratch)


def _untracked_audit(vault_id: uuid.UUID, secret: bytes, log: bytes) -> tuple[bytes, bytes]:
    """The audit log and ``anchor.sst`` a vault made before issue 20 keeps for the same records.

    A new vault anchors its log's head in the key table (no anchor file) and MACs its records
    under the state's audit keys (format 3, ``k``); the fuzz below is of the untracked format
    and its anchor, which vaults of before still read and write.  So the same records are
    chained again as such a vault chains them: format 2, no ``k``, the vault secret's MAC key
    (the seq is kept: the subjects' boxes are bound to it), and the anchor sealed over the head.
    """
    mac_key, anchor_key = AuditLog.keys(secret)
    out, prev, seq = bytearray(), "0" * 64, 0
    for line in log.splitlines():
        rec = json.loads(line[: line.rfind(b',"mac"')] + b"}")
        rec.pop("k", None)
        rec |= {"v": FORMAT_UNTRACKED, "prev": prev}
        data, prev = _audit.record_line(mac_key, rec)
        out += data
        seq = rec["seq"]
    anchor = {"seq": seq, "mac": prev, "base_seq": 0, "base_mac": "0" * 64}
    return bytes(out), _sealed_anchor(vault_id, anchor_key, json.dumps(anchor).encode())


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    # Made before the first example: hypothesis' deadline would count their making to it.
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_crypto, "scrypt_key", fake_scrypt)
        world()
        _audit_root()
        _keyfile()
        _bundle()
        _index_states()
        _table_states()
    yield
    if world.cache_info().currsize:
        w = world()
        if _audit_root.cache_info().currsize:
            root, locks, log = _audit_root()
            log.close()
            locks.close()
            root.close()
        w.vault.close()
        w.scratch.close()
        shutil.rmtree(w.tmp, ignore_errors=True)
    for cached in (world, _audit_root, _index_states, _table_states, _keyfile):
        cached.cache_clear()


@pytest.fixture(autouse=True)
def _fake_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_crypto, "scrypt_key", fake_scrypt)


def _file(name: str, **kw: Any) -> st.SearchStrategy[bytes]:
    def make() -> st.SearchStrategy[bytes]:
        data = world().files[name]
        hot = [*frame_offsets(data), 9, 10, 28, 44, 52, 56] if data.startswith(_container.MAGIC) else []
        return mutations(data, hot=hot, **kw)

    return st.deferred(make)


def _seal(kind: int, object_id: uuid.UUID, key: bytes, frames: list[tuple[int, bytes]], **kw: Any) -> bytes:
    w = world()
    args: dict[str, Any] = {"generation": 1, "kek_epoch": w.master.current_epoch} | kw
    return _container.seal(kind=kind, vault_id=w.vid, object_id=object_id, kek=key, frames=frames, **args)


def _payloads(docs: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Frame payloads: JSON-ish bytes, raw or zstd, or a payload with a bad encoding byte."""
    return st.one_of(
        docs.map(lambda b: _container.encode_payload(b, compress=False)),
        docs.map(lambda b: _container.encode_payload(b, compress=True)),
        st.binary(max_size=40),
    )


# -- index.sst ----------------------------------------------------------------------------------


def _index_state(index: Index) -> tuple[Any, Any]:
    return msgspec.to_builtins(index.entries), index.stamps


@functools.cache
def _index_states() -> list[tuple[Any, Any]]:
    """What the index reads as when cut after each of its frames (a torn tail is forgiven)."""
    w = world()
    data = w.files[INDEX_FILE]
    states = []
    for end in [*frame_offsets(data)[1:], len(data)]:
        put(w.scratch, INDEX_FILE, data[:end])
        states.append(_index_state(Index.load(w.scratch, w.vid, w.master)))
    return states


@fuzz("index.load", _file(INDEX_FILE, donors=[]), st.booleans(), memory=True)
def test_index_mutated(data: bytes, parse: bool) -> None:
    w = world()
    _index_states()
    put(w.scratch, INDEX_FILE, data)
    index, _ = documented(Index.load, w.scratch, w.vid, w.master, parse=parse)
    if index is not None and parse:
        assert _index_state(index) in _index_states()


def _index_docs() -> st.SearchStrategy[tuple[bytes, list[bytes]]]:
    def make() -> st.SearchStrategy[tuple[bytes, list[bytes]]]:
        w = world()
        put(w.scratch, INDEX_FILE, w.files[INDEX_FILE])
        index = Index.load(w.scratch, w.vid, w.master)
        name, entry = next(iter(index.entries.items()))
        snap = {"v": 2, "entries": msgspec.to_builtins(index.entries), "stamps": index.stamps}
        delta = {"put": name, "doc": msgspec.to_builtins(entry), "stamp": index.stamps[name]}
        deltas = tweaked_json(delta) | tweaked_json({"del": name}) | tweaked_json({"acc": name, "at": "2026-01-01"})
        return st.tuples(_payloads(tweaked_json(snap)), st.lists(_payloads(deltas), max_size=3))

    return st.deferred(make)


@fuzz("index.decode", _index_docs(), st.sampled_from([FrameType.INDEX_SNAPSHOT, FrameType.INDEX_DELTA]), memory=True)
def test_index_hostile_payloads(docs: tuple[bytes, list[bytes]], first: int) -> None:
    w = world()
    snapshot, deltas = docs
    frames = [(first, snapshot)] + [(FrameType.INDEX_DELTA, d) for d in deltas]
    put(w.scratch, INDEX_FILE, _seal(Kind.INDEX, uuid.UUID(int=0), w.master.current, frames))
    index, _ = documented(Index.load, w.scratch, w.vid, w.master)
    if index is not None:
        assert all(len(s) == 3 for s in index.stamps.values())


# -- keytable.sst -------------------------------------------------------------------------------


def _table_state(t: KeyTable) -> tuple[bytes, dict[uuid.UUID, bytes]]:
    return t.vault_secret, dict(t.session_keys.items())


@functools.cache
def _table_states() -> list[tuple[bytes, dict[uuid.UUID, bytes]]]:
    w = world()
    data = w.files[KEYTABLE]
    states = []
    for end in [*frame_offsets(data)[1:], len(data)]:
        put(w.scratch, KEYTABLE, data[:end])
        states.append(_table_state(KeyTable.load(w.scratch, w.vid, w.master)))
    return states


@fuzz("keytable.load", _file(KEYTABLE, donors=[]), memory=True)
def test_keytable_mutated(data: bytes) -> None:
    w = world()
    _table_states()
    put(w.scratch, KEYTABLE, data)
    table, _ = documented(KeyTable.load, w.scratch, w.vid, w.master)
    if table is not None:
        assert _table_state(table) in _table_states()


@st.composite
def _table_payloads(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    count = draw(st.sampled_from([0, 1, 2, 0xFFFFFFFF, 1 << 28]) | st.integers(0, 0xFFFFFFFF))
    entries = draw(st.lists(st.binary(min_size=48, max_size=48).map(lambda b: b[:16] + b[16:48]), max_size=3))
    if len(entries) > 0 and draw(st.booleans()):
        entries.append(entries[0])  # a duplicate id
    snapshot = draw(st.binary(min_size=32, max_size=32)) + struct.pack(">I", count) + b"".join(e[:52] for e in entries)
    snapshot = snapshot[: draw(st.integers(0, len(snapshot)))] if draw(st.booleans()) else snapshot
    frames = [(draw(st.sampled_from([FrameType.TABLE_SNAPSHOT, FrameType.TABLE_DELTA])), snapshot)]
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from([1, 2, 0, 3]))
        body = draw(st.binary(min_size=0, max_size=60))
        frames.append((draw(st.sampled_from([FrameType.TABLE_DELTA, FrameType.TABLE_SNAPSHOT])), bytes([op]) + body))
    compress = draw(st.booleans())
    return [(t, _container.encode_payload(p, compress=compress)) for t, p in frames]


@fuzz("keytable.decode", _table_payloads(), memory=True)
def test_keytable_hostile_payloads(frames: list[tuple[int, bytes]]) -> None:
    w = world()
    put(w.scratch, KEYTABLE, _seal(Kind.KEY_TABLE, uuid.UUID(int=0), w.master.current, frames))
    table, _ = documented(KeyTable.load, w.scratch, w.vid, w.master)
    if table is not None:
        assert len(table.vault_secret) == 32 and all(len(k) == 32 for k in table.session_keys.values())


# -- config.sst ---------------------------------------------------------------------------------


@fuzz("config.read_body", _file(CONFIG_FILE, donors=[]), memory=True)
def test_config_mutated(data: bytes) -> None:
    w = world()
    key = w.vault.parts.settings.config_key()
    put(w.scratch, CONFIG_FILE, w.files[CONFIG_FILE])
    want = read_config_body(w.scratch, w.vid, key)
    put(w.scratch, CONFIG_FILE, data)
    got, _ = documented(read_config_body, w.scratch, w.vid, key)
    if got is not None:
        assert got == want


def _config_docs() -> st.SearchStrategy[bytes]:
    def make() -> st.SearchStrategy[bytes]:
        doc = json.loads(world().vault.config().model_dump_json())
        doc["sanitizer"]["rules"] = [{"id": "r1", "regex": "ab+c", "keywords": ["ab"], "secret_group": 0}]
        doc["retention"]["tags"] = [{"tag": "keep", "protect": True, "keep_last": 3}]
        awkward = st.sampled_from(
            ["9" * 400 + "GiB", "9" * 30 + "d", "1e999", "-1", "0", "1y" * 50, "(", "a{99999999}"]
        )
        tweak = tweaked_json(doc)
        return tweak | st.tuples(
            st.sampled_from(["max_age", "max_size", "min_age", "auto_interval", "warn_size"]), awkward
        ).map(lambda kv: dumps({**doc, "retention": {**doc["retention"], kv[0]: kv[1]}}))

    return st.deferred(make)


@fuzz("config.decode", _config_docs(), st.booleans())
def test_config_hostile_documents(body: bytes, stored: bool) -> None:
    w = world()
    from sessionseal._config import parse_config

    if stored:
        # Behind authentication: what read_config and the audit settings make of a sealed document.
        key = w.vault.parts.settings.config_key()
        write_config_body(w.scratch, w.vid, key, body, 5)
        cfg, _ = documented(read_config, w.scratch, w.vid, key)
        settings = audit_settings(body)  # None when not the shape this build writes; never raises
        assert settings is None or len(settings) == 3
    else:
        # What 'config set' is given: user input.
        cfg, _ = documented(parse_config, body)
        if cfg is not None:
            cfg = cfg.model_validate_json(cfg.model_dump_json())  # what is stored reads back
            documented(w.vault.plan_cleanup, cfg.retention)


# -- the audit log and its anchor ----------------------------------------------------------------


@functools.cache
def _audit_root() -> tuple[Dir, Dir, AuditLog]:
    w = world()
    root = Dir(w.tmp / "audit-scratch", create=True)
    locks = root.sub("locks", create=True)
    return root, locks, AuditLog(root, locks, w.vid, lock_timeout=1)


def _reset_audit(files: dict[str, bytes]) -> Dir:
    root, _, log = _audit_root()
    d = root.sub(AUDIT_DIR, create=True)
    for name in d.names():
        os.unlink(name, dir_fd=d.fd)
    for name, data in files.items():
        put(d, name, data)
    log.max_file_bytes, log.keep_files = _audit.DEFAULT_MAX_FILE_BYTES, 0
    return d


def _lines(data: bytes) -> st.SearchStrategy[bytes]:
    """Line-level mutations of a log: lines dropped, repeated, swapped, replaced by junk with a
    well-formed MAC suffix, deeply nested JSON, or a record of another kind."""
    lines = data.split(b"\n")
    junk = st.one_of(
        JSON.map(dumps),
        st.sampled_from([b"[" * 3000, b'{"x":' * 2000, b"{}", b"[]", b"1", b"null"]),
        st.binary(max_size=60),
    ).map(lambda body: (body[:-1] if body.endswith(b"}") else body) + b',"mac":"' + b"ab" * 32 + b'"}')

    @st.composite
    def edit(draw: st.DrawFn) -> bytes:
        out = list(lines)
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(out) - 1))
            op = draw(st.sampled_from(["drop", "dup", "swap", "junk", "junk-torn"]))
            if op == "drop" and len(out) > 1:
                del out[i]
            elif op == "dup":
                out.insert(i, out[draw(st.integers(0, len(out) - 1))])
            elif op == "swap":
                j = draw(st.integers(0, len(out) - 1))
                out[i], out[j] = out[j], out[i]
            else:
                out.insert(i, draw(junk))
                if op == "junk-torn":
                    out.insert(i, b"torn fragment")
        return b"\n".join(out)

    return edit()


def _names() -> st.SearchStrategy[dict[str, bytes]]:
    """Files planted beside the log: rotated names with odd digits, a pending log."""
    name = st.sampled_from(
        ["audit-000000000001.log", "audit-\u00b2.log", "audit-\u0661\u0662.log", "audit-.log", "audit-1x.log"]
    )
    return st.dictionaries(
        name | st.just(PENDING),
        st.one_of(st.just(b""), st.binary(max_size=80), JSON.map(lambda v: dumps(v) + b"\n")),
        max_size=2,
    )


def _audit_inputs() -> st.SearchStrategy[tuple[bytes, bytes, dict[str, bytes]]]:
    def make() -> st.SearchStrategy[tuple[bytes, bytes, dict[str, bytes]]]:
        w = world()
        log, anchor = w.files[f"{AUDIT_DIR}/{CURRENT}"], w.files[f"{AUDIT_DIR}/{ANCHOR}"]
        logs = st.one_of(st.just(log), mutations(log, random=300), _lines(log))
        anchors = st.one_of(st.just(anchor), st.just(anchor), mutations(anchor, hot=frame_offsets(anchor)))
        return st.tuples(logs, anchors, st.just({}) | _names())

    return st.deferred(make)


@fuzz("audit.verify", _audit_inputs(), st.sampled_from(["verify", "repair", "append", "rotate"]))
def test_audit_log_mutated(inputs: tuple[bytes, bytes, dict[str, bytes]], action: str) -> None:
    w = world()
    log_data, anchor_data, extra = inputs
    _reset_audit({CURRENT: log_data, ANCHOR: anchor_data, **extra})
    _, _, log = _audit_root()
    if action in ("append", "rotate"):
        if action == "rotate":
            log.max_file_bytes, log.keep_files = 1, 1
        documented(log.append, w.secret, {"action": "fuzz", "outcome": "ok"})
    report, _ = documented(log.verify, w.secret, repair=action == "repair")
    documented(lambda: list(log.records()))
    original = w.files[f"{AUDIT_DIR}/{CURRENT}"]
    if report is not None and report.ok and action == "verify" and not extra:
        # Accepted: nothing was changed but an incomplete last line (a killed writer's, by design).
        assert anchor_data == w.files[f"{AUDIT_DIR}/{ANCHOR}"]
        assert log_data.startswith(original) and b"\n" not in log_data[len(original) :]
        for p in report.problems:
            assert p.describe() and "\n" not in p.describe()


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _hostile_records() -> st.SearchStrategy[tuple[int, Any]]:
    def make() -> st.SearchStrategy[tuple[int, Any]]:
        records = [
            json.loads(line[: line.rfind(b',"mac"')] + b"}")
            for line in world().files[f"{AUDIT_DIR}/{CURRENT}"].splitlines()
        ]
        return st.integers(0, len(records) - 1).flatmap(
            lambda i: st.tuples(st.just(i), tweaked_json(records[i]).map(_loads).filter(lambda v: v is not None))
        )

    return st.deferred(make)


def _sealed_anchor(vault_id: uuid.UUID, anchor_key: bytes, body: bytes) -> bytes:
    """An audit anchor container holding *body*, authentic under *anchor_key*."""
    return _container.seal(
        kind=Kind.AUDIT_ANCHOR,
        vault_id=vault_id,
        object_id=uuid.UUID(int=5),
        generation=1,
        kek=anchor_key,
        kek_epoch=0,
        frames=[(FrameType.BODY, _container.encode_payload(body, compress=False))],
    )


@fuzz(
    "audit.decode",
    _hostile_records(),
    tweaked_json({"seq": 3, "mac": "ab" * 32, "base_seq": 0, "base_mac": "0" * 64}),
    st.booleans(),
)
def test_audit_log_hostile_records(record: tuple[int, Any], anchor_doc: bytes, torn_before: bool) -> None:
    """Records with valid MACs (made with the real key) but any content, and any anchor document
    sealed with the real anchor key: what the checks behind the MACs make of them."""
    w = world()
    i, fields = record
    mac_key, anchor_key = AuditLog.keys(w.secret)
    records = [
        json.loads(line[: line.rfind(b',"mac"')] + b"}") for line in w.files[f"{AUDIT_DIR}/{CURRENT}"].splitlines()
    ]
    records[i] = fields
    out, prev = [], "0" * 64
    for rec in records:
        # Sorted and compact like canonical(), but NaN, Infinity and lone surrogates are written
        # as Python writes them: the MAC covers the bytes, whatever they are.
        try:
            body = json.dumps(
                {**rec, "prev": prev} if isinstance(rec, dict) else rec, sort_keys=True, separators=(",", ":")
            ).encode()
        except (ValueError, TypeError, RecursionError):
            assume(False)
        prev = _audit.record_mac(mac_key, body)
        out.append((body[:-1] if body.endswith(b"}") else body) + b',"mac":"' + prev.encode() + b'"}\n')
    if torn_before:
        out.insert(i, b"torn\n")
    anchor = _sealed_anchor(w.vid, anchor_key, anchor_doc)
    _reset_audit({CURRENT: b"".join(out), ANCHOR: anchor})
    _, _, log = _audit_root()
    documented(log.verify, w.secret)
    documented(lambda: list(log.records()))
    documented(log.append, w.secret, {"action": "fuzz", "outcome": "ok"})


# -- vault.json and autoclean.json: Vault.open ----------------------------------------------------


def _vault_docs() -> st.SearchStrategy[bytes]:
    return st.deferred(lambda: tweaked_json(json.loads(world().files["vault.json"])) | _file("vault.json"))


@fuzz(
    "vault.json",
    _vault_docs(),
    st.none() | st.binary(max_size=60) | tweaked_json({"next_run": "2000-01-01T00:00:00+00:00"}),
)
def test_vault_json(doc: bytes, autoclean: bytes | None) -> None:
    w = world()
    path = w.tmp / "vault"
    documented(_opening.parse_doc, doc, path)
    root = Dir(path)
    try:
        put(root, "vault.json", doc)
        if autoclean is not None:
            put(root, "autoclean.json", autoclean)
        vault, _ = documented(Vault.open, path, key_provider=w.provider)
        if vault is not None:
            try:
                _, err = documented(vault.list)
                assert vault.vault_id == w.vid or err is not None  # another id finds no key
            finally:
                vault.close()
    finally:
        put(root, "vault.json", w.files["vault.json"])
        w.vault.parts.ctx.root.unlink("autoclean.json")
        root.close()


# -- keyfile.json and the keychain value ------------------------------------------------------------


@functools.cache
def _keyfile() -> tuple[bytes, MasterKeys]:
    w = world()
    keys = MasterKeys({1: bytes(range(32)), 2: bytes(range(1, 33))})
    p = PassphraseProvider("correct horse", root=w.scratch, log2_n=MIN_LOG2_N)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_crypto, "scrypt_key", fake_scrypt)
        p.store(w.vid, keys)
    return w.scratch.read(KEYFILE, max_size=1 << 16), keys


def _keyfiles() -> st.SearchStrategy[bytes]:
    def make() -> st.SearchStrategy[bytes]:
        data = _keyfile()[0]
        doc = json.loads(data)
        awkward: st.SearchStrategy[object] = st.sampled_from(
            [1e400, -1, 2**32, 2**70, "17", " 17", "1_7", True, [], {}, None, "x" * 50]
        )
        fields = st.sampled_from(["log2_n", "r", "p", "salt", "keys", "version", "format"])
        epochs = st.sampled_from(["-1", "4294967296", "0", "1" * 5000, "x", "\u0661", " 2"])
        return st.one_of(
            tweaked_json(doc),
            mutations(data),
            st.tuples(fields, awkward).map(lambda kv: dumps({**doc, kv[0]: kv[1]})),
            epochs.map(lambda e: dumps({**doc, "keys": {**doc["keys"], e: doc["keys"]["1"]}})),
        )

    return st.deferred(make)


@fuzz("keyfile.json", _keyfiles())
def test_keyfile(data: bytes) -> None:
    w = world()
    _, keys = _keyfile()
    put(w.scratch, KEYFILE, data)
    got, _ = documented(PassphraseProvider("correct horse", root=w.scratch).load, w.vid)
    if got is not None:
        # Each key is authenticated on its own: an epoch can be dropped (the vault then fails to
        # open what it sealed), never changed or added.
        assert got.keys.items() <= keys.keys.items() and got.keys


@fuzz(
    "keychain.value",
    st.deferred(lambda: mutations(encode_keys(MasterKeys({1: bytes(32), 7: bytes(range(32))})).encode())).map(
        lambda b: b.decode("latin-1")
    )
    | st.text(max_size=60),
)
def test_keychain_value(value: str) -> None:
    original = MasterKeys({1: bytes(32), 7: bytes(range(32))})
    got, err = documented(decode_keys, value)
    assert err is None or isinstance(err, KeyStoreError)
    if got is not None:
        assert all(len(k) == 32 and e >= 1 for e, k in got.keys.items())
        if value == encode_keys(original):
            assert got == original


# -- export bundles ---------------------------------------------------------------------------------

_PASS = b"bundle pass"
_DOCS = [json.dumps({"id": str(uuid.UUID(int=i + 1)), "title": f"t{i}", "messages": []}).encode() for i in range(2)]
_MANIFEST = {"format": "sessionseal bundle", "sessions": ["a", "b"]}


@functools.cache
def _bundle() -> bytes:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_crypto, "scrypt_key", fake_scrypt)
        return _export.seal_bundle(_DOCS, _MANIFEST, _PASS, log2_n=MIN_LOG2_N)


def _bundles() -> st.SearchStrategy[bytes]:
    def make() -> st.SearchStrategy[bytes]:
        data = _bundle()
        prefix = _export._PREFIX.size
        hot = [8, 9, 10, 11, prefix, prefix + 9, prefix + 44, *frame_offsets(data, prefix + _container.HEADER_SIZE)]
        cost = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)).map(
            lambda c: data[:9] + bytes(c) + data[12:]
        )
        return mutations(data, hot=hot, donors=[world().files[INDEX_FILE]]) | cost

    return st.deferred(make)


@fuzz("bundle.open", _bundles(), memory=True)
def test_bundle_mutated(data: bytes) -> None:
    got, _ = documented(_export.open_bundle, data, _PASS)
    if got is not None:
        assert got.manifest == _MANIFEST and got.documents == _DOCS


@st.composite
def _hostile_bundles(draw: st.DrawFn) -> bytes:
    """Bundles sealed with the passphrase (a bundle's sender is not trusted): any manifest, any
    documents, any frame order, any session count."""
    manifest = draw(tweaked_json(_MANIFEST))
    session = {"id": str(uuid.UUID(int=9)), "title": "t", "messages": [{"role": "user", "content": "x"}]}
    docs = draw(st.lists(tweaked_json(session) | tweaked_json([session]), max_size=3))
    compress = draw(st.booleans())
    frames = [(FrameType.META, _container.encode_payload(manifest, compress=compress))]
    frames += [(FrameType.BODY, _container.encode_payload(d, compress=compress)) for d in docs]
    if draw(st.booleans()):
        frames = draw(st.permutations(frames))
    count = draw(st.sampled_from([len(docs), len(docs), *LENGTHS, 2**63, 2**64 - 1]))
    salt = bytes(16)
    kek = fake_scrypt(_PASS, salt, log2_n=MIN_LOG2_N, r=8, p=1)
    body = _container.seal(
        kind=Kind.BUNDLE,
        vault_id=uuid.uuid4(),
        object_id=uuid.UUID(int=0),
        generation=count,
        kek=kek,
        kek_epoch=0,
        frames=frames,
    )
    return _export._PREFIX.pack(_export.BUNDLE_MAGIC, 1, MIN_LOG2_N, 8, 1, salt) + body


@fuzz("bundle.decode", _hostile_bundles(), memory=True)
def test_bundle_hostile(data: bytes) -> None:
    documented(_export.open_bundle, data, _PASS)
    documented(world().vault.import_sessions, data, passphrase=_PASS, on_conflict="copy")


@pytest.mark.parametrize(
    ("log2_n", "r", "p"), [(23, 8, 1), (40, 8, 1), (255, 8, 1), (14, 255, 1), (14, 8, 255), (0, 0, 0)]
)
def test_an_absurd_bundle_cost_is_refused_before_any_work(
    monkeypatch: pytest.MonkeyPatch, log2_n: int, r: int, p: int
) -> None:
    monkeypatch.undo()
    data = _export._PREFIX.pack(_export.BUNDLE_MAGIC, 1, log2_n, r, p, bytes(16)) + _bundle()[_export._PREFIX.size :]
    reached: list[int] = []  # scrypt's calls: none may be made

    def scrypt(passphrase: bytes, salt: bytes, *, log2_n: int, r: int, p: int) -> bytes:
        reached.append(log2_n)
        return bytes(32)

    monkeypatch.setattr(_crypto, "scrypt_key", scrypt)
    with pytest.raises(IntegrityError):
        _export.open_bundle(data, _PASS)
    assert reached == []


# -- what the fuzzing found, kept as plain tests ------------------------------------------------------


def test_found_vault_json_and_keyfile() -> None:
    w = world()
    doc = json.loads(w.files["vault.json"])
    with pytest.raises(IntegrityError):  # AttributeError: uuid.UUID(5)
        _opening.parse_doc(dumps({**doc, "vault_id": 5}), w.tmp)
    with pytest.raises(IntegrityError):  # RecursionError
        _opening.parse_doc(deep_list(3000), w.tmp)
    keyfile = json.loads(_keyfile()[0])
    for bad_doc in (
        {**keyfile, "keys": []},  # AttributeError
        {**keyfile, "log2_n": 1e400},  # OverflowError
        {**keyfile, "keys": {"-1": keyfile["keys"]["1"]}},  # struct.error
        {**keyfile, "keys": {"4294967296": keyfile["keys"]["1"]}},
    ):
        put(w.scratch, KEYFILE, dumps(bad_doc))
        with pytest.raises(IntegrityError):
            PassphraseProvider("correct horse", root=w.scratch).load(w.vid)
    put(w.scratch, KEYFILE, b"[" * 3000)  # RecursionError
    with pytest.raises(IntegrityError):
        PassphraseProvider("correct horse", root=w.scratch).load(w.vid)


def deep_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_found_audit_log() -> None:
    w = world()
    log_data = w.files[f"{AUDIT_DIR}/{CURRENT}"]
    first, rest = log_data.split(b"\n", 1)
    mac_key, _ = AuditLog.keys(w.secret)
    forged = json.loads(first[: first.rfind(b',"mac"')] + b"}") | {"action": "audit.torn-tail", "detail": [1]}
    cases = [
        ({"audit-\u00b2.log": b""}, log_data),  # ValueError: int("²")
        ({}, first + b"\n" + b"[" * 3000 + b',"mac":"' + b"ab" * 32 + b'"}\n' + rest),  # RecursionError
        ({}, b"torn\n" + _audit.record_line(mac_key, forged)[0] + rest),  # AttributeError: detail.get
        ({PENDING: b"[" * 3000 + b"\n"}, log_data),
    ]
    _, _, log = _audit_root()
    for extra, data in cases:
        _reset_audit({CURRENT: data, ANCHOR: w.files[f"{AUDIT_DIR}/{ANCHOR}"], **extra})
        assert not log.verify(w.secret).ok or extra
        list(log.records())
        log.append(w.secret, {"action": "fuzz", "outcome": "ok"})
    # An anchor holding 1e400 (OverflowError) or nested too deep (RecursionError): reported, not raised.
    _, anchor_key = AuditLog.keys(w.secret)
    for body in (b'{"seq": 1e400, "mac": "", "base_seq": 0, "base_mac": ""}', deep_list(1500)):
        anchor = _sealed_anchor(w.vid, anchor_key, body)
        _reset_audit({CURRENT: log_data, ANCHOR: anchor})
        assert [p.code for p in log.verify(w.secret).problems] == ["anchor-invalid"]


def test_found_index_config_and_bundle() -> None:
    w = world()
    from sessionseal._config import parse_config

    snapshot = _container.encode_payload(b'{"v":2,"x":' + deep_list(3000) + b"}", compress=True)
    put(
        w.scratch,
        INDEX_FILE,
        _seal(Kind.INDEX, uuid.UUID(int=0), w.master.current, [(FrameType.INDEX_SNAPSHOT, snapshot)]),
    )
    with pytest.raises(IntegrityError):  # RecursionError from msgspec
        Index.load(w.scratch, w.vid, w.master)
    assert audit_settings(deep_list(3000)) is None  # RecursionError
    with pytest.raises(InvalidInput):  # OverflowError: int(float("9" * 400))
        parse_config({"retention": {"max_size": "9" * 400 + "GiB"}})
    # A bundle (sealed with its passphrase: its sender is not trusted) claiming 2**62 sessions:
    # [BODY] * 2**62 was built to compare (MemoryError).
    kek = fake_scrypt(_PASS, bytes(16), log2_n=MIN_LOG2_N, r=8, p=1)
    body = _container.seal(
        kind=Kind.BUNDLE,
        vault_id=uuid.uuid4(),
        object_id=uuid.UUID(int=0),
        generation=2**62,
        kek=kek,
        kek_epoch=0,
        frames=[(FrameType.META, _container.encode_payload(b"{}", compress=False))],
    )
    bundle = _export._PREFIX.pack(_export.BUNDLE_MAGIC, 1, MIN_LOG2_N, 8, 1, bytes(16)) + body
    with pytest.raises(IntegrityError):
        _export.open_bundle(bundle, _PASS)
    # A bundle whose document is not JSON: orjson.JSONDecodeError leaked from import_sessions.
    bundle = _export.seal_bundle([b"{not json"], _MANIFEST, _PASS, log2_n=MIN_LOG2_N)
    with pytest.raises(InvalidInput):
        w.vault.import_sessions(bundle, passphrase=_PASS)
