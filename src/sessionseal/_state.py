"""The vault's anchored state: high-water marks kept in the key table (issue 20).

Several things the vault used to infer from *missing* files (a session never written, a key
never used, an audit log never started, a config never set) are what someone who can write the
vault directory, without its key, can fake by deleting or restoring files.  The state records
what was written, where that person cannot reach it: in the key table, sealed under the master
key and rotated with it, in ``TABLE_STATE`` frames (docs/spec/container-v1.md, "Key table
state").  Every file is then checked against a lower bound it cannot roll back:

- ``marks``: each session's latest generation and committed size;
- ``tombs``: the files an erasure left to overwrite (the only keyless files ever removed);
- ``config``: the config file's generation and hash (or that there is none);
- ``audit``: the audit log's head (sequence number and MAC) and its base after retention;
- ``audit_keys``: the audit log's MAC keys, a fresh one from each master-key rotation on;
- ``index``: the generation of the last index rewrite;
- ``head``: the state counter last written to the key store (the vault's head outside the
  vault) and when, so that the next write is due after a bounded interval;
- ``remote_keys``: per device id on a remote (issue 26), that device's private X25519 and
  Ed25519 keys, the remote's id and the remote data keys of the epochs it holds
  (docs/spec/remote-v1.md, "Keys"), sealed here so that they follow the master key;
- ``erased``: per device id on a remote, the sessions erased here since that device's last
  push, which its next push turns into a tombstone (docs/sync.md, "Deletes"): recorded by the
  rotation that erases them, in the same write, so that no delete is inferred from an absence.

``counter`` grows by one with every state frame: the key store's head names it.

A table written before issue 20 has no state frame: :attr:`VaultState.tracked` is false and
nothing is checked against it until ``migrate`` records the vault's state as it is.

This module only encodes and decodes; :mod:`._keytable` stores, and the vault's components
decide what to record and when.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from .errors import IntegrityError

__all__ = [
    "NO_CONFIG",
    "ZERO_MAC",
    "AuditHead",
    "RemoteKeys",
    "StateChange",
    "VaultState",
    "decode_frame",
    "encode_change",
    "encode_full",
    "tomb_of",
]

ZERO_MAC: Final = "0" * 64
#: The config mark of a vault without a config file.
NO_CONFIG: Final = (0, "")
_FULL: Final = "full"
_DELTA: Final = "delta"


def tomb_of(header_raw: bytes) -> bytes:
    """The tomb of a container file: the first 16 bytes of SHA-256 of its header's bytes.

    A header holds a data key wrapped afresh for every version written, so a tomb names one
    file version and nothing else; it is unguessable without the file and names no session id
    (docs/spec/audit-log.md promises an erased id cannot even be tested against the vault).
    """
    return hashlib.sha256(header_raw).digest()[:16]


def _corrupt() -> IntegrityError:
    return IntegrityError("the vault's key table failed its integrity check; run 'sessionseal verify'")


@dataclass(frozen=True)
class AuditHead:
    """The audit log's head as last anchored: its latest record, and the base left by the log's
    own retention (the last record of the files it removed)."""

    seq: int
    mac: str
    base_seq: int = 0
    base_mac: str = ZERO_MAC


@dataclass(frozen=True, repr=False)
class RemoteKeys:
    """One device's keys on one remote (docs/spec/remote-v1.md, "Keys"); ``repr`` shows no key.

    A change puts a device's record whole: the record is small, and a put is one rule to fold.
    """

    x25519: bytes  # private: receives epoch keys
    ed25519: bytes  # private: signs heads
    created_at: str  # the device record's, so that a retried PUT of it is the same bytes
    remote: bytes = b""  # the remote's id (16 bytes) once known: made with epoch 1, or given at enrolment
    epochs: tuple[tuple[int, bytes], ...] = ()  # (epoch, K_e), ascending
    #: (epoch, maker id, key), ascending: the keys of epochs two devices made at once, by maker
    #: (docs/spec/remote-v1.md, "Two makers of one epoch"); empty but after such a race.
    makers: tuple[tuple[int, bytes, bytes], ...] = ()

    def __repr__(self) -> str:
        return f"RemoteKeys(epochs={[e for e, _ in self.epochs]})"


@dataclass
class StateChange:
    """What one write adds to the state (every field optional).  Marks only rise: a mark
    lower than the one recorded is ignored (two processes may commit out of order)."""

    marks: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    unmarks: set[bytes] = field(default_factory=set)
    tombs: set[bytes] = field(default_factory=set)
    untombs: set[bytes] = field(default_factory=set)
    #: (generation, sha256 hex) of config.sst, or ``(generation, "")`` for "no config file"; the
    #: generation is the highest written or accepted, and never falls (a lower one is ignored)
    config: tuple[int, str] | None = None
    audit: AuditHead | None = None
    audit_keys: dict[int, bytes] = field(default_factory=dict)
    index: int | None = None
    head: tuple[int, int] | None = None  # (counter, unix seconds) of a key-store head write
    remote_keys: dict[bytes, RemoteKeys] = field(default_factory=dict)  # device id -> its keys, put whole
    #: device id -> the sessions erased here that its next push tombstones, put whole (empty: none)
    erased: dict[bytes, frozenset[bytes]] = field(default_factory=dict)

    def update(self, other: StateChange) -> None:
        """Fold *other* (a later change) into this one."""
        for sid, mark in other.marks.items():
            if sid not in self.marks or mark > self.marks[sid]:
                self.marks[sid] = mark
            self.unmarks.discard(sid)
        for sid in other.unmarks:
            self.marks.pop(sid, None)
        self.unmarks |= other.unmarks
        self.tombs = (self.tombs - other.untombs) | other.tombs
        self.untombs = (self.untombs - other.tombs) | other.untombs
        if other.config is not None and (self.config is None or other.config[0] >= self.config[0]):
            self.config = other.config
        if other.audit is not None and (self.audit is None or other.audit.seq >= self.audit.seq):
            self.audit = other.audit
        self.audit_keys.update(other.audit_keys)
        if other.index is not None:
            self.index = max(self.index or 0, other.index)
        if other.head is not None:
            self.head = other.head
        self.remote_keys.update(other.remote_keys)
        self.erased.update(other.erased)

    def __bool__(self) -> bool:
        return bool(
            self.marks
            or self.unmarks
            or self.tombs
            or self.untombs
            or self.config is not None
            or self.audit is not None
            or self.audit_keys
            or self.index is not None
            or self.head is not None
            or bool(self.remote_keys)
            or bool(self.erased)
        )


@dataclass
class VaultState:
    """The state as the key table's frames leave it."""

    tracked: bool = False
    counter: int = 0
    marks: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    tombs: set[bytes] = field(default_factory=set)
    config: tuple[int, str] | None = None
    audit: AuditHead | None = None
    audit_keys: dict[int, bytes] = field(default_factory=dict)
    index: int = 0
    head: tuple[int, int] = (0, 0)
    remote_keys: dict[bytes, RemoteKeys] = field(default_factory=dict)
    erased: dict[bytes, frozenset[bytes]] = field(default_factory=dict)  # never empty sets

    def __repr__(self) -> str:
        return f"VaultState(counter={self.counter}, marks={len(self.marks)}, tombs={len(self.tombs)})"  # no keys

    def mark(self, session_id: bytes) -> tuple[int, int] | None:
        return self.marks.get(session_id)

    def apply(self, change: StateChange) -> None:
        """Apply *change* in memory (the counter is the caller's: one per frame)."""
        for sid, mark in change.marks.items():
            old = self.marks.get(sid)
            if old is None or mark > old:
                self.marks[sid] = mark
        for sid in change.unmarks:
            self.marks.pop(sid, None)
        self.tombs |= change.tombs
        self.tombs -= change.untombs
        if change.config is not None and (self.config is None or change.config[0] >= self.config[0]):
            self.config = change.config  # its generation only rises, as a mark's does
        if change.audit is not None and (self.audit is None or change.audit.seq >= self.audit.seq):
            self.audit = change.audit
        self.audit_keys.update(change.audit_keys)
        if change.index is not None:
            self.index = max(self.index, change.index)
        if change.head is not None:
            self.head = change.head
        self.remote_keys.update(change.remote_keys)
        for dev, sids in change.erased.items():
            if sids:
                self.erased[dev] = sids
            else:
                self.erased.pop(dev, None)


# -- encoding: canonical JSON (sorted keys, no whitespace), ids and tombs in hex --------------


def _audit_json(head: AuditHead) -> dict[str, Any]:
    return {"seq": head.seq, "mac": head.mac, "base_seq": head.base_seq, "base_mac": head.base_mac}


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _remote_json(keys: dict[bytes, RemoteKeys]) -> dict[str, Any]:
    return {
        dev.hex(): {
            "x": _b64(k.x25519),
            "e": _b64(k.ed25519),
            "c": k.created_at,
            "r": k.remote.hex(),
            "k": {str(e): _b64(key) for e, key in k.epochs},
            # Only after a race, so that a state without one is the bytes it always was.
            **({"m": [[e, m.hex(), _b64(key)] for e, m, key in k.makers]} if k.makers else {}),
        }
        for dev, k in sorted(keys.items())
    }


def _erased_json(erased: dict[bytes, frozenset[bytes]]) -> dict[str, list[str]]:
    return {dev.hex(): sorted(s.hex() for s in sids) for dev, sids in sorted(erased.items())}


def encode_full(state: VaultState) -> bytes:
    """The ``full`` frame payload: the whole state (written with every snapshot)."""
    doc: dict[str, Any] = {
        "t": _FULL,
        "counter": state.counter,
        "marks": {sid.hex(): list(m) for sid, m in sorted(state.marks.items())},
        "tombs": sorted(t.hex() for t in state.tombs),
        "config": None if state.config is None else list(state.config),
        "audit": None if state.audit is None else _audit_json(state.audit),
        "audit_keys": {str(e): _b64(k) for e, k in sorted(state.audit_keys.items())},
        "index": state.index,
        "head": list(state.head),
    }
    if state.remote_keys:  # absent until a remote is used: a table without remotes is as before
        doc["remote_keys"] = _remote_json(state.remote_keys)
    if state.erased:  # absent while no erasure awaits a push
        doc["erased"] = _erased_json(state.erased)
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def encode_change(counter: int, change: StateChange) -> bytes:
    """A ``delta`` frame payload: *change*, as the state's *counter*-th frame."""
    doc: dict[str, Any] = {"t": _DELTA, "counter": counter}
    if change.marks:
        doc["marks"] = {sid.hex(): list(m) for sid, m in sorted(change.marks.items())}
    if change.unmarks:
        doc["unmarks"] = sorted(s.hex() for s in change.unmarks)
    if change.tombs:
        doc["tombs"] = sorted(t.hex() for t in change.tombs)
    if change.untombs:
        doc["untombs"] = sorted(t.hex() for t in change.untombs)
    if change.config is not None:
        doc["config"] = list(change.config)
    if change.audit is not None:
        doc["audit"] = _audit_json(change.audit)
    if change.audit_keys:
        doc["audit_keys"] = {str(e): _b64(k) for e, k in sorted(change.audit_keys.items())}
    if change.index is not None:
        doc["index"] = change.index
    if change.head is not None:
        doc["head"] = list(change.head)
    if change.remote_keys:
        doc["remote_keys"] = _remote_json(change.remote_keys)
    if change.erased:
        doc["erased"] = _erased_json(change.erased)
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def _int(v: Any) -> int:
    if type(v) is not int or v < 0:
        raise ValueError
    return v


def _marks(doc: Any) -> dict[bytes, tuple[int, int]]:
    if not isinstance(doc, dict):
        raise ValueError
    out = {}
    for k, v in doc.items():
        sid = bytes.fromhex(k)
        if len(sid) != 16 or not isinstance(v, list) or len(v) != 2:
            raise ValueError
        out[sid] = (_int(v[0]), _int(v[1]))
    return out


def _ids(doc: Any) -> set[bytes]:
    if not isinstance(doc, list):
        raise ValueError
    out = {bytes.fromhex(x) for x in doc}
    if any(len(x) != 16 for x in out):
        raise ValueError
    return out


def _audit(doc: Any) -> AuditHead | None:
    if doc is None:
        return None
    head = AuditHead(_int(doc["seq"]), str(doc["mac"]), _int(doc["base_seq"]), str(doc["base_mac"]))
    if len(head.mac) != 64 or len(head.base_mac) != 64:
        raise ValueError
    return head


def _keys(doc: Any) -> dict[int, bytes]:
    if not isinstance(doc, dict):
        raise ValueError
    out = {int(e): base64.b64decode(k, validate=True) for e, k in doc.items()}
    if any(len(k) != 32 or e < 1 for e, k in out.items()):
        raise ValueError
    return out


def _maker_key(doc: Any) -> tuple[int, bytes, bytes]:
    epoch, maker, key = doc
    out = (_int(epoch), bytes.fromhex(maker), base64.b64decode(key, validate=True))
    if out[0] < 1 or len(out[1]) != 16 or len(out[2]) != 32:
        raise ValueError
    return out


def _config(doc: Any) -> tuple[int, str] | None:
    if doc is None:
        return None
    gen, digest = doc
    if not isinstance(digest, str) or len(digest) not in (0, 64):
        raise ValueError
    return _int(gen), digest


def _remote_keys(doc: Any) -> dict[bytes, RemoteKeys]:
    if not isinstance(doc, dict):
        raise ValueError
    out = {}
    for dev, k in doc.items():
        device, remote = bytes.fromhex(dev), bytes.fromhex(k["r"])
        epochs = tuple(sorted(_keys(k["k"]).items()))
        makers = tuple(sorted(_maker_key(m) for m in k.get("m", [])))
        keys = RemoteKeys(
            base64.b64decode(k["x"], validate=True),
            base64.b64decode(k["e"], validate=True),
            k["c"],
            remote,
            epochs,
            makers,
        )
        if len(device) != 16 or len(remote) not in (0, 16) or len(keys.x25519) != 32 or len(keys.ed25519) != 32:
            raise ValueError
        if not isinstance(keys.created_at, str):
            raise ValueError
        out[device] = keys
    return out


def _erased(doc: Any) -> dict[bytes, frozenset[bytes]]:
    if not isinstance(doc, dict):
        raise ValueError
    out = {bytes.fromhex(dev): frozenset(_ids(sids)) for dev, sids in doc.items()}
    if any(len(dev) != 16 for dev in out):
        raise ValueError
    return out


def _pair(doc: Any) -> tuple[int, int]:
    a, b = doc
    return _int(a), _int(b)


def decode_frame(state: VaultState, payload: bytes) -> None:
    """Apply one state frame to *state*.

    :raises IntegrityError: not a state frame this build wrote, or out of order (its counter is
        not the next one).
    """
    try:
        doc = orjson.loads(payload)
        kind, counter = doc["t"], _int(doc["counter"])
        if kind == _FULL:
            if state.tracked and counter < state.counter:
                raise ValueError
            state.marks = _marks(doc["marks"])
            state.tombs = _ids(doc["tombs"])
            state.config = _config(doc["config"])
            state.audit = _audit(doc["audit"])
            state.audit_keys = _keys(doc["audit_keys"])
            state.index = _int(doc["index"])
            state.head = _pair(doc["head"])
            state.remote_keys = _remote_keys(doc.get("remote_keys", {}))
            state.erased = {d: s for d, s in _erased(doc.get("erased", {})).items() if s}
        elif kind == _DELTA and state.tracked and counter == state.counter + 1:
            change = StateChange(
                marks=_marks(doc.get("marks", {})),
                unmarks=_ids(doc.get("unmarks", [])),
                tombs=_ids(doc.get("tombs", [])),
                untombs=_ids(doc.get("untombs", [])),
                config=_config(doc.get("config")),
                audit=_audit(doc.get("audit")),
                audit_keys=_keys(doc.get("audit_keys", {})),
                index=None if "index" not in doc else _int(doc["index"]),
                head=None if "head" not in doc else _pair(doc["head"]),
                remote_keys=_remote_keys(doc.get("remote_keys", {})),
                erased=_erased(doc.get("erased", {})),
            )
            state.apply(change)
        else:
            raise ValueError
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
        raise _corrupt() from None
    state.tracked, state.counter = True, counter
