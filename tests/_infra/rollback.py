"""The rollback matrix's harness (issue 20; tests/integration/test_rollback_matrix.py).

A vault is built once per key provider, with a snapshot of every file after each build step
(so every file has "earlier versions"). Each case copies the final vault, damages one file (or
the whole directory), then runs what a user would run next, each operation in a process of its
own: ``verify``, ``verify --repair``, ``list``, a new ``save``, a re-save, a ``cleanup`` that
removes nothing, the automatic cleanup at open, ``audit verify``. Then the damaged file is put
back as it was, and every session acknowledged before the damage must still decrypt to what it
held (or to what the re-save wrote): no key dropped, no file shredded.

Processes are forked from a *zygote* that imported sessionseal once (tests/_infra/_forkserver.py,
as tests/_infra/crash.py's workers are), so an operation costs a fork, not an interpreter start. The zygote itself never loads a
vault key: each forked child starts with nothing cached, as a new ``sessionseal`` command does,
and reads the key store (the real Secret Service, or the key file) afresh.

Only the public API is used (``sessionseal.Vault``, ``KeychainProvider``, ``PassphraseProvider``),
and file names are learnt by watching the directory, never computed: the vault's internals are
being moved (issue 19) and this harness must outlive that.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests._infra import _forkserver

PASSPHRASE = "rollback matrix passphrase"
#: A literal the vault's config redacts; no built-in rule knows it.
LITERAL = "Nightjar-7734-Ledger"
#: The withdrawn policy of config v1: it would remove every session but the pinned one.
WITHDRAWN_POLICY: dict[str, Any] = {"keep_last": 0, "min_age": 0, "auto_interval": "1h"}
#: The policy in force (config v2): it removes nothing.
CURRENT_POLICY: dict[str, Any] = {"keep_last": 1000, "min_age": 0, "auto_interval": "1h"}
#: What the manual ``cleanup`` of a case runs: a policy that removes nothing.
NOOP_CLEANUP: dict[str, Any] = {"keep_last": 1000, "min_age": 0}
KEYRING_SERVICE = "sessionseal"  # docs/keychain.md: service "sessionseal", account = vault id


def _doc(title: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "status": "completed", "messages": [{"role": "user", "content": text}], **extra}


# --------------------------------------------------------------------------------------------
# Operations, run in a forked child of the zygote (fresh process state, nothing cached)


def _open(args: Mapping[str, Any], *, auto_cleanup: bool = False) -> Any:
    from sessionseal import Vault

    if args["provider"] == "passphrase":
        return Vault.open(args["path"], passphrase=PASSPHRASE, auto_cleanup=auto_cleanup)
    return Vault.open(args["path"], auto_cleanup=auto_cleanup)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _session_files(path: Path) -> set[str]:
    return {n for n in os.listdir(path / "sessions") if n.endswith(".sst") and not n.startswith(".")}


def _snapshot(path: Path, dest: Path) -> None:
    shutil.copytree(path, dest, symlinks=True, copy_function=shutil.copy2)


def op_build(args: Mapping[str, Any]) -> dict[str, Any]:
    """Build the vault, snapshotting it after each step; return the model of what it holds."""
    from sessionseal import PassphraseProvider, Vault

    path, snaps = Path(args["path"]), Path(args["snapshots"])
    provider: Any = PassphraseProvider(PASSPHRASE, log2_n=14) if args["provider"] == "passphrase" else "keychain"
    files: dict[str, str] = {}  # role -> file name under sessions/
    ids: dict[str, str] = {}

    def save(v: Any, role: str, doc: dict[str, Any]) -> None:
        before = _session_files(path)
        ids[role] = str(v.save(doc))
        (new,) = _session_files(path) - before
        files[role] = new

    def refused_open() -> None:
        # A refusal before the key is available leaves an unkeyed record in audit/pending.log.
        path.chmod(0o750)
        try:
            with contextlib.suppress(Exception):
                _open({"path": path, "provider": args["provider"]}).close()
        finally:
            path.chmod(0o700)

    def reopen() -> Any:
        return _open({"path": path, "provider": args["provider"]})

    # s1: a config with a literal and a policy later withdrawn; one session, to be erased.
    with Vault.init(path, key_provider=provider) as v:
        v.set_config({"sanitizer": {"literals": [LITERAL]}, "retention": WITHDRAWN_POLICY})
        save(v, "X", _doc("to be erased", "erased later"))
    _snapshot(path, snaps / "s1")
    # s2: the erasure rotates the master key (epoch 2): every earlier key table is dead.
    with reopen() as v:
        v.delete(ids["X"])
    del ids["X"], files["X"]
    _snapshot(path, snaps / "s2")
    # s3: four sessions, one pinned.
    with reopen() as v:
        save(v, "A", _doc("alpha", "first version of alpha"))
        save(v, "B", _doc("bravo", "bravo grows by appends"))
        save(v, "C", _doc("charlie", "charlie has a checkpoint"))
        save(v, "D", _doc("delta", "delta is pinned"))
        v.pin(ids["D"])
    _snapshot(path, snaps / "s3")
    # s4: a new version of A, appends to B, a checkpoint of C, a refusal (pending.log).
    with reopen() as v:
        v.save({**_doc("alpha", "second version of alpha"), "id": ids["A"]})
        v.append(ids["B"], [{"role": "assistant", "content": "bravo turn 2"}])
        v.append(ids["B"], [{"role": "user", "content": "bravo turn 3"}])
        v.checkpoint(ids["C"], "before-rename")
    refused_open()
    _snapshot(path, snaps / "s4")
    # s5 (the vault as the cases find it): the policy withdrawn for one that removes nothing,
    # a fifth session, more appends, a rename; and one more refusal waiting in pending.log.
    with reopen() as v:
        v.set_config({"sanitizer": {"literals": [LITERAL]}, "retention": CURRENT_POLICY})
        save(v, "E", _doc("echo", "echo is the newest"))
        v.append(ids["B"], [{"role": "assistant", "content": "bravo turn 4"}])
        v.rename(ids["C"], "charlie renamed")
    refused_open()
    _snapshot(path, snaps / "s5")
    return {"ids": ids, "files": files, "steps": ["s1", "s2", "s3", "s4", "s5"], "rotated_after": "s1"}


def op_check(args: Mapping[str, Any]) -> dict[str, Any]:
    """Each session's digest (or the error loading it), and its checkpoints' count."""
    out: dict[str, Any] = {}
    with _open(args) as v:
        for sid in args["ids"]:
            try:
                digest = _digest(v.load_json(sid))
                checkpoints = len(v.checkpoints(sid))
                out[sid] = {"digest": digest, "checkpoints": checkpoints}
            except Exception as exc:
                out[sid] = {"error": type(exc).__name__}
    return {"sessions": out}


def op_verify(args: Mapping[str, Any]) -> dict[str, Any]:
    with _open(args) as v:
        r = v.verify(repair=bool(args.get("repair")))
    return {
        "ok": r.ok,
        "problems": [[p.severity, p.code, p.path] for p in r.problems],
        "repaired": list(r.repaired),
    }


def op_list(args: Mapping[str, Any]) -> dict[str, Any]:
    with _open(args) as v:
        summaries, problems = v.list_with_problems(archived=None)
    return {"ids": [str(s.id) for s in summaries], "problems": len(problems)}


def op_save(args: Mapping[str, Any]) -> dict[str, Any]:
    with _open(args) as v:
        doc = dict(args["doc"])
        if args.get("id"):
            doc["id"] = args["id"]
        sid = v.save(doc)
    return {"id": str(sid)}


def op_load(args: Mapping[str, Any]) -> dict[str, Any]:
    with _open(args) as v:
        data = v.load_json(args["id"])
    return {"digest": _digest(data), "has_literal": LITERAL.encode() in data}


def op_cleanup(args: Mapping[str, Any]) -> dict[str, Any]:
    with _open(args) as v:
        r = v.cleanup(args["policy"])
    return {"removed": [str(s) for s in r.removed], "orphans_removed": r.orphans_removed}


def op_open_auto(args: Mapping[str, Any]) -> dict[str, Any]:
    v = _open(args, auto_cleanup=True)
    try:
        r = v.last_auto_cleanup
        if r is None:
            return {"ran": False, "removed": [], "orphans_removed": 0}
        return {"ran": True, "removed": [str(s) for s in r.removed], "orphans_removed": r.orphans_removed}
    finally:
        v.close()


def op_audit_verify(args: Mapping[str, Any]) -> dict[str, Any]:
    with _open(args) as v:
        r = v.verify_audit()
    return {"ok": r.ok, "problems": [p.code for p in r.problems]}


def op_keychain(args: Mapping[str, Any]) -> dict[str, Any]:
    """Read or write the vault's keychain entry as any program of the user could (test set-up:
    the copies of a case share the vault id, hence the entry)."""
    from keyring.backends import SecretService

    backend = SecretService.Keyring()  # type: ignore[no-untyped-call]  # unannotated in keyring
    if "value" in args:
        backend.set_password(KEYRING_SERVICE, args["vault_id"], args["value"])  # type: ignore[no-untyped-call]
    return {"value": backend.get_password(KEYRING_SERVICE, args["vault_id"])}  # type: ignore[no-untyped-call]


OPS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "build": op_build,
    "check": op_check,
    "verify": op_verify,
    "list": op_list,
    "save": op_save,
    "load": op_load,
    "cleanup": op_cleanup,
    "open_auto": op_open_auto,
    "audit_verify": op_audit_verify,
    "keychain": op_keychain,
}


def _run_op(req: Mapping[str, Any]) -> dict[str, Any]:
    from sessionseal.errors import SessionSealError

    try:
        return {"ok_call": True, **OPS[req["op"]](req["args"])}
    except SessionSealError as exc:
        # A documented refusal: what the CLI turns into its exit code (docs/cli.md).
        return {"ok_call": False, "error": type(exc).__name__, "exit": exc.exit_code}
    except Exception as exc:  # an undocumented failure is a finding (exit 70 at the CLI)
        return {"ok_call": False, "error": type(exc).__name__, "exit": 70, "trace": traceback.format_exc()}


#: Modules every child would otherwise import afresh (0.3-0.5 s of wall time per operation on a
#: loaded machine, a dozen operations a case): the keyring stack a keychain vault reads its key
#: through, and what a save, a verify or a cleanup loads lazily. Only code is loaded here: no
#: backend is chosen, no D-Bus connection made, no vault opened, so each child still starts with
#: nothing cached and reads the key store afresh.
PRELOAD: tuple[str, ...] = (
    "keyring",
    "keyring.backends.SecretService",
    "keyring.backends.chainer",
    "keyring.backends.fail",
    "keyring.backends.null",
    "secretstorage",
    "secretstorage.dhcrypto",
    "jeepney.io.blocking",
    # keyring's backend discovery imports every backend it has an entry point for
    "keyring.backends.kwallet",
    "keyring.backends.libsecret",
    "keyring.backends.macOS",
    "keyring.backends.Windows",
    "keyrings.alt.file",
    "keyrings.alt.Gnome",
    "keyrings.alt.Google",
    "keyrings.alt.Windows",
    "keyrings.alt.keyczar",
    "keyrings.alt.multi",
    "cryptography.hazmat.backends.openssl",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.asymmetric.padding",
    "getpass",
    "zipp",
    "pydantic.plugin._loader",
    "sessionseal._config",
    "sessionseal._retention",
    "sessionseal._sanitize",
    "sessionseal._sanitize._engine",
    "sessionseal._sanitize._native",
    "sessionseal._sanitize._cache",
    "sessionseal._sanitize._rules",
    "pydantic.functional_serializers",
    "pydantic.type_adapter",
)


def _child(req: dict[str, Any]) -> int:
    """In a forked child: the operation; its reply on stdout, one JSON document."""
    sys.stdout.write(json.dumps(_run_op(req)))
    return 0


def zygote() -> None:
    """The zygote's loop (tests/_infra/_forkserver.py): an operation forked per request."""
    _forkserver.serve(
        _child,
        preload=("sessionseal:KeychainProvider", "sessionseal:PassphraseProvider", "sessionseal:Vault"),
        optional=PRELOAD,
    )


class Zygote:
    """A process that imported sessionseal once and forks one child per operation."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.server = _forkserver.Server("from tests._infra.rollback import zygote; zygote()", env)
        self.calls = 0

    def run(self, op: str, /, **args: Any) -> dict[str, Any]:
        """Run *op* in a fresh child; its reply (``ok_call`` false with the error class when it
        raised, or with ``error`` "died" and its exit status when it ended without a reply)."""
        done = self.server.run({"op": op, "args": args}, timeout=120.0)
        self.calls += 1
        if not done.stdout:
            return {"ok_call": False, "error": "died", "exit": done.returncode, "trace": done.stderr}
        reply: dict[str, Any] = json.loads(done.stdout)
        return reply

    def close(self) -> None:
        self.server.close()


@contextlib.contextmanager
def zygote_process(env: Mapping[str, str]) -> Iterator[Zygote]:
    z = Zygote(env)
    try:
        yield z
    finally:
        z.close()


# --------------------------------------------------------------------------------------------
# The built vault and its snapshots


@dataclass
class Built:
    """A vault as the cases find it (``pristine``), its earlier states, and what it holds."""

    provider: str
    pristine: Path
    snapshots: dict[str, Path]  # step -> directory, oldest first; the last is ``pristine``
    ids: dict[str, str]  # role (A..E) -> session id
    files: dict[str, str]  # role -> file name in sessions/
    digests: dict[str, dict[str, Any]]  # session id -> {"digest", "checkpoints"}
    vault_id: str
    keychain_value: str | None  # the keychain entry as the build left it
    #: snapshots taken before the last master key rotation (their key tables are dead)
    dead_epochs: frozenset[str] = frozenset()
    checkpoint_file: str = ""


def build(z: Zygote, provider: str, work: Path) -> Built:
    path, snaps = work / "built", work / "snapshots"
    snaps.mkdir()
    reply = z.run("build", path=path, snapshots=snaps, provider=provider)
    assert reply["ok_call"], reply
    ids: dict[str, str] = reply["ids"]
    vault_id = json.loads((path / "vault.json").read_text())["vault_id"]
    value = None
    if provider == "keychain":
        # The entry as the last snapshot left it: it holds the vault's head, which the check
        # below moves on (every operation is recorded), so it is put back after the check.
        got = z.run("keychain", vault_id=vault_id)
        assert got["ok_call"] and got["value"], got
        value = got["value"]
    check = z.run("check", path=path, provider=provider, ids=list(ids.values()))
    assert check["ok_call"], check
    digests = check["sessions"]
    assert all("digest" in d for d in digests.values()), digests
    if value is not None:
        assert z.run("keychain", vault_id=vault_id, value=value)["ok_call"]
    ckpts = sorted(p.name for p in (path / "checkpoints").iterdir())
    assert len(ckpts) == 1, ckpts
    return Built(
        provider=provider,
        pristine=snaps / reply["steps"][-1],
        snapshots={s: snaps / s for s in reply["steps"][:-1]},
        ids=ids,
        files=reply["files"],
        digests=digests,
        vault_id=vault_id,
        keychain_value=value,
        dead_epochs=frozenset(reply["steps"][: reply["steps"].index(reply["rotated_after"]) + 1]),
        checkpoint_file=f"checkpoints/{ckpts[0]}",
    )


# --------------------------------------------------------------------------------------------
# Damage


@dataclass(frozen=True)
class Damage:
    """One way to damage a vault: ``kind`` is deleted, truncated, rolled-back or whole-vault."""

    target: str  # the file's role: keytable, index, config, audit-log, ..., session-B, whole-vault
    kind: str
    variant: str = ""  # the cut (to-0, half, minus-1), or the snapshot rolled back to
    #: files it touches, relative to the vault ("*" for the whole directory)
    paths: tuple[str, ...] = ()
    #: (path, content) to put in place, or None to delete; for truncation, the size as text
    actions: tuple[tuple[str, bytes | int | None], ...] = ()
    snapshot: str = ""

    @property
    def case_id(self) -> str:
        return "/".join(x for x in (self.target, self.kind, self.variant) if x)


def write_like_a_restore(path: Path, data: bytes) -> None:
    """What a backup restore or a sync tool does: a new file, renamed into place, owner-only."""
    tmp = path.with_name(f".restore-{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def apply_damage(vault: Path, built: Built, damage: Damage) -> None:
    if damage.kind == "whole-vault":
        shutil.rmtree(vault)
        shutil.copytree(built.snapshots[damage.snapshot], vault, symlinks=True, copy_function=shutil.copy2)
        return
    for rel, what in damage.actions:
        target = vault / rel
        if what is None:
            target.unlink()
        elif isinstance(what, int):
            os.truncate(target, what)
        else:
            write_like_a_restore(target, what)


def undo_damage(vault: Path, built: Built, damage: Damage) -> None:
    """Put back what the damage took: the vault's own files of before it (a backup restore)."""
    if damage.kind == "whole-vault":
        shutil.rmtree(vault)
        shutil.copytree(built.pristine, vault, symlinks=True, copy_function=shutil.copy2)
        return
    for rel in damage.paths:
        original = built.pristine / rel
        target = vault / rel
        if original.exists():
            write_like_a_restore(target, original.read_bytes())
        else:
            target.unlink(missing_ok=True)


def _roles(built: Built) -> dict[str, str]:
    """Role -> path relative to the vault, for every file the matrix damages."""
    roles = {f"session-{r}": f"sessions/{name}" for r, name in sorted(built.files.items())}
    roles |= {
        "checkpoint": built.checkpoint_file,
        "keytable": "keytable.sst",
        "index": "index.sst",
        "config": "config.sst",
        "audit-log": "audit/audit.log",
        "pending-log": "audit/pending.log",
        "vault-json": "vault.json",
    }
    if (built.pristine / "audit/anchor.sst").is_file():
        # A vault of before issue 20 anchors its audit log in audit/anchor.sst; a vault whose
        # state is tracked has none (the head is in the key table's state).
        roles["audit-anchor"] = "audit/anchor.sst"
    if built.provider == "passphrase":
        roles["keyfile"] = "keyfile.json"
    for rel in roles.values():
        assert (built.pristine / rel).is_file(), rel
    return roles


CUTS: dict[str, Callable[[int], int]] = {"to-0": lambda n: 0, "half": lambda n: n // 2, "minus-1": lambda n: n - 1}


def damages(built: Built) -> list[Damage]:
    """Every single-file damage, a few compound ones, and every whole-vault rollback."""
    out: list[Damage] = []
    roles = _roles(built)
    for role, rel in roles.items():
        out.append(Damage(role, "deleted", paths=(rel,), actions=((rel, None),)))
        size = (built.pristine / rel).stat().st_size
        for cut, at in CUTS.items():
            out.append(Damage(role, "truncated", cut, paths=(rel,), actions=((rel, at(size)),)))
        current = (built.pristine / rel).read_bytes()
        seen = {current}
        for step, snap in reversed(built.snapshots.items()):
            if not (snap / rel).is_file():
                continue
            old = (snap / rel).read_bytes()
            if old in seen:
                continue
            seen.add(old)
            out.append(Damage(role, "rolled-back", step, paths=(rel,), actions=((rel, old),), snapshot=step))
    # Compound damage, as the reproductions do it.
    index = roles["index"]
    for role in ("session-A", "session-B"):
        rel = roles[role]
        for step, snap in reversed(built.snapshots.items()):
            if not (snap / rel).is_file() or (snap / rel).read_bytes() == (built.pristine / rel).read_bytes():
                continue
            old = (snap / rel).read_bytes()
            out.append(
                Damage(
                    f"{role}+index",
                    "rolled-back",
                    f"{step}+index-deleted",
                    paths=(rel, index),
                    actions=((rel, old), (index, None)),
                    snapshot=step,
                )
            )
            old_index = (snap / index).read_bytes()
            out.append(
                Damage(
                    f"{role}+index",
                    "rolled-back",
                    f"{step}+index-{step}",
                    paths=(rel, index),
                    actions=((rel, old), (index, old_index)),
                    snapshot=step,
                )
            )
            break  # the newest earlier version is enough
    # Every file of audit/: the log, its pending records (and the anchor, in a vault of before).
    audit = tuple(roles[r] for r in ("audit-log", "audit-anchor", "pending-log") if r in roles)
    out.append(Damage("audit-dir", "deleted", paths=audit, actions=tuple((r, None) for r in audit)))
    # The audit directory put back as it was at an earlier step, as a whole (a backup restore of
    # audit/): the log as it was, pending.log as it was or gone.
    for step, snap in reversed(built.snapshots.items()):
        if not (snap / roles["audit-log"]).is_file():
            continue
        back = tuple((r, (snap / r).read_bytes() if (snap / r).is_file() else None) for r in audit)
        out.append(Damage("audit-pair", "rolled-back", step, paths=audit, actions=back, snapshot=step))
    out += _fts_damages(built, roles)
    for step in reversed(built.snapshots):
        out.append(Damage("whole-vault", "whole-vault", step, paths=("*",), snapshot=step))
    return out


def _fts_files(root: Path) -> tuple[str, ...]:
    """The files of the full-text index (issue 23) under a vault or a snapshot, relative to it."""
    fts = root / "fts"
    return tuple(sorted(f"fts/{n}" for n in os.listdir(fts))) if fts.is_dir() else ()


def _fts_damages(built: Built, roles: Mapping[str, str]) -> list[Damage]:
    """fts/ deleted, or put back as it was at an earlier step as a whole (its files have random
    names, so a file-by-file rollback names nothing), alone or with the key table and index.sst."""
    now = _fts_files(built.pristine)
    out = [Damage("fts-dir", "deleted", paths=now, actions=tuple((r, None) for r in now))]
    for step, snap in reversed(built.snapshots.items()):
        then = _fts_files(snap)
        back: tuple[tuple[str, bytes | int | None], ...] = tuple((r, (snap / r).read_bytes()) for r in then) + tuple(
            (r, None) for r in now if r not in then
        )
        paths = tuple(sorted(set(now) | set(then)))
        out.append(Damage("fts-dir", "rolled-back", step, paths=paths, actions=back, snapshot=step))
        both = tuple(roles[r] for r in ("keytable", "index"))
        out.append(
            Damage(
                "fts-dir+keytable+index",
                "rolled-back",
                step,
                paths=paths + both,
                actions=back + tuple((r, (snap / r).read_bytes()) for r in both),
                snapshot=step,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# One case


@dataclass
class Outcome:
    """What each operation did after the damage (each reply as the zygote gave it)."""

    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def make_due(vault: Path) -> None:
    """Make the automatic cleanup due now (autoclean.json holds only its next run, in the clear)."""
    due = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    path = vault / "autoclean.json"
    write_like_a_restore(path, json.dumps({"next_run": due}).encode() + b"\n")


def run_case(z: Zygote, built: Built, damage: Damage, work: Path) -> Outcome:
    start = time.monotonic()
    vault = work / "vault"
    shutil.copytree(built.pristine, vault, symlinks=True, copy_function=shutil.copy2)
    if built.keychain_value is not None:
        reset = z.run("keychain", vault_id=built.vault_id, value=built.keychain_value)
        assert reset["ok_call"], reset
    apply_damage(vault, built, damage)
    base: dict[str, Any] = {"path": vault, "provider": built.provider}
    out = Outcome()
    s = out.steps
    s["verify"] = z.run("verify", **base)
    s["repair"] = z.run("verify", repair=True, **base)
    s["list"] = z.run("list", **base)
    s["save"] = z.run("save", doc=_doc("new after damage", f"the literal {LITERAL} must be redacted"), **base)
    if s["save"]["ok_call"]:
        s["save-read"] = z.run("load", id=s["save"]["id"], **base)
    resaved = _doc("alpha re-saved", "third version of alpha")
    s["resave"] = z.run("save", doc=resaved, id=built.ids["A"], **base)
    if s["resave"]["ok_call"]:
        s["resave-read"] = z.run("load", id=built.ids["A"], **base)
    s["cleanup"] = z.run("cleanup", policy=NOOP_CLEANUP, **base)
    if (vault / "vault.json").exists():
        make_due(vault)
    s["auto-cleanup"] = z.run("open_auto", **base)
    s["audit"] = z.run("audit_verify", **base)
    undo_damage(vault, built, damage)
    out.final = z.run("check", ids=list(built.ids.values()), **base)
    out.seconds = time.monotonic() - start
    return out
