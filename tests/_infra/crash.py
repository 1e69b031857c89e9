"""Crash and concurrency harness (issue 9; docs/reliability.md): workers doing save, update,
append, checkpoint, delete, cleanup and rekey are killed with SIGKILL at random points, or run
side by side; a model of every acknowledged operation is then checked against the vault.

Workers are forked from a *zygote* (tests/_infra/_forkserver.py), a process that imported
sessionseal once, so a kill round costs a fork instead of an interpreter start (about 0.5 s
here).  Each worker appends to its own ack file, unbuffered, one line per event::

    B {op...}     the operation is about to start
    A {op...}     it returned: acknowledged (for cleanup, with the ids it removed)
    X {op...}     it raised (the error class is in the record); treated as "may have happened"

A SIGKILL loses nothing a worker wrote to the ack file (the page cache survives the process),
so the last ``B`` without its ``A`` is exactly the operation in flight.

The model: every session a worker created is mutated only by that worker; sessions tagged
``expire`` may also be removed by any worker's cleanup.  After the run, each session must be
in the state its acknowledged operations left it in, or in the state of the one operation
that was in flight (or failed) on it, never anything else; acknowledged deletes are gone;
and ``verify(read_data=True)`` finds no error.

Used by ``tests/integration/test_crash.py`` (short, in CI) and ``scripts/soak.py`` (long).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests._infra import _forkserver

PASSPHRASE = "crash harness"
#: The cleanup policy of the workers: remove every session tagged "expire", nothing else.
CLEANUP_POLICY = {"min_age": 0, "tags": [{"tag": "expire", "max_age": 0}]}
#: Operation weights of a worker.
WEIGHTS = {
    "save": 6,
    "update": 4,
    "append": 10,
    "edit": 2,
    "checkpoint": 2,
    "delete": 2,
    "cleanup": 1,
    "rekey": 1,
    "list": 2,
}


# -- the worker (runs in a forked child) -----------------------------------------------------


def _filler(rng: random.Random) -> str:
    # Sizes from a line to a few MB: a kill lands inside a long write often enough.
    size = rng.choice([40, 400, 4_000, 40_000, 400_000, 2_000_000])
    return "w" * size


def work(args: dict[str, Any]) -> None:  # noqa: PLR0912 - one loop over the operations
    """Run operations until killed, or for ``duration`` seconds, acking each to ``ack``."""
    from sessionseal import Vault
    from sessionseal.errors import SessionNotFound, SessionSealError

    fd = os.open(args["ack"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def note(kind: str, rec: dict[str, Any]) -> None:
        os.write(fd, f"{kind} {json.dumps(rec, sort_keys=True)}\n".encode())

    rng = random.Random(args["seed"])
    owned: dict[str, bool] = dict(args["owned"])  # session id -> tagged expire
    weights = args.get("weights") or WEIGHTS
    deadline = time.monotonic() + args["duration"] if args.get("duration") else None
    tag = args["tag"]
    done: set[str] = set()
    with Vault.open(args["vault"], passphrase=PASSPHRASE, auto_cleanup=False) as v:
        note("R", {"pid": os.getpid()})
        i = 0
        while deadline is None or time.monotonic() < deadline:
            i += 1
            op = rng.choices(list(weights), weights=list(weights.values()))[0]
            marker = f"{tag}.{i}"
            if op in ("update", "append", "edit", "checkpoint", "delete") and not owned:
                op = "save"
            rec: dict[str, Any] = {"op": op, "marker": marker}
            if op == "save":
                rec["id"], rec["expire"] = str(uuid.uuid4()), rng.random() < 0.3
            elif op in ("update", "append", "edit", "checkpoint", "delete"):
                rec["id"] = rng.choice(sorted(owned))
                rec["expire"] = owned[rec["id"]]
            note("B", rec)
            try:
                if op in ("save", "update"):
                    v.save(
                        {
                            "id": rec["id"],
                            "title": marker,
                            "tags": ["expire"] if rec["expire"] else ["keep"],
                            "messages": [{"role": "user", "content": f"{marker} {_filler(rng)}"}],
                        }
                    )
                elif op == "append":
                    v.append(rec["id"], [{"role": "assistant", "content": f"{marker} {_filler(rng)}"}])
                elif op == "edit":
                    v.rename(rec["id"], marker)
                elif op == "checkpoint":
                    v.checkpoint(rec["id"])
                elif op == "delete":
                    v.delete(rec["id"])
                elif op == "cleanup":
                    rec["removed"] = sorted(str(s) for s in v.cleanup(CLEANUP_POLICY).removed)
                elif op == "rekey":
                    v.rekey()
                elif op == "list":
                    v.list()
            except SessionNotFound:
                # Another worker's cleanup removed an expire session: ours no more.
                note("X", {**rec, "error": "SessionNotFound"})
                owned.pop(rec.get("id", ""), None)
                continue
            except SessionSealError as exc:
                note("X", {**rec, "error": type(exc).__name__})
                owned.pop(rec.get("id", ""), None)  # ambiguous from now on: left alone
                continue
            note("A", rec)
            done.add(op)
            if op == "save":
                owned[rec["id"]] = rec["expire"]
            elif op == "delete":
                owned.pop(rec["id"])
            elif op == "cleanup":
                for sid in rec["removed"]:
                    owned.pop(sid, None)
            if args.get("until_all") and done >= set(weights):
                break  # every operation acknowledged once: the coverage round ends here
    os.close(fd)


def _worker(req: dict[str, Any]) -> int:
    """In a forked child: :func:`work`; a failure's traceback goes to the ack file's ``.err``
    (whose appearance tells :func:`_wait_ready` the worker did not start)."""
    try:
        work(req["args"])
    except BaseException:
        import traceback

        with open(req["args"]["ack"] + ".err", "w") as f:
            traceback.print_exc(file=f)
        return 1
    return 0


def zygote() -> None:
    """The zygote's loop (tests/_infra/_forkserver.py): a worker forked per request."""
    _forkserver.serve(_worker, preload=("sessionseal:Vault",))


class Zygote:
    """The zygote, seen from the test: a worker forked per :meth:`fork`."""

    def __init__(self) -> None:
        self.server = _forkserver.Server("from tests._infra.crash import zygote; zygote()", os.environ)

    def fork(self, args: dict[str, Any]) -> int:
        return self.server.spawn({"args": args})

    def wait(self, pid: int, timeout: float) -> int | None:
        return self.server.wait(pid, timeout)

    def close(self) -> None:
        self.server.close()


@contextlib.contextmanager
def zygote_process() -> Iterator[Zygote]:
    z = Zygote()
    try:
        yield z
    finally:
        z.close()


# -- the model -------------------------------------------------------------------------------


@dataclass
class State:
    """A session as its owner's acknowledged operations left it."""

    title: str
    turns: list[str]
    expire: bool


@dataclass
class Model:
    sessions: dict[str, State] = field(default_factory=dict)
    #: Sessions an unacknowledged operation touched: any of these states (None: gone).
    ambiguous: dict[str, list[State | None]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    acked: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)

    def owned(self, expire_ok: bool = True) -> dict[str, bool]:
        return {sid: st.expire for sid, st in self.sessions.items() if expire_ok or not st.expire}

    def apply_log(self, ack: Path) -> None:
        """Apply one worker's ack file: acknowledged operations exactly, the rest as options."""
        pending: dict[str, Any] | None = None
        for line in ack.read_text().splitlines():
            kind, _, body = line.partition(" ")
            if kind == "R":
                continue
            rec = json.loads(body)
            if kind == "B":
                pending = rec
            elif kind == "A":
                self._apply(rec)
                self.acked[rec["op"]] += 1
                pending = None
            elif kind == "X":
                self._maybe(rec)
                self.in_flight[rec["op"]] += 1
                pending = None
        if pending is not None:
            self._maybe(pending)
            self.in_flight[pending["op"]] += 1

    def _after(self, rec: dict[str, Any], before: State | None) -> State | None:
        op = rec["op"]
        if op in ("save", "update"):
            return State(rec["marker"], [rec["marker"]], rec["expire"])
        assert before is not None
        if op == "append":
            return State(before.title, [*before.turns, rec["marker"]], before.expire)
        if op == "edit":
            return State(rec["marker"], before.turns, before.expire)
        if op == "delete":
            return None
        return before  # checkpoint: the session is unchanged

    def _apply(self, rec: dict[str, Any]) -> None:
        op = rec["op"]
        if op == "cleanup":
            for sid in rec["removed"]:
                self.sessions.pop(sid, None)
                self.ambiguous.pop(sid, None)
                self.gone.add(sid)
            return
        if op in ("rekey", "list"):
            return
        sid = rec["id"]
        if sid in self.ambiguous or sid in self.gone:
            return  # another worker's cleanup took it (an expire session; its log was read first)
        after = self._after(rec, self.sessions.get(sid))
        if after is None:
            self.sessions.pop(sid, None)
            self.gone.add(sid)
        else:
            self.sessions[sid] = after

    def _maybe(self, rec: dict[str, Any]) -> None:
        op = rec["op"]
        if op == "cleanup":
            for sid, st in list(self.sessions.items()):
                if st.expire:
                    self.ambiguous[sid] = [st, None]
                    del self.sessions[sid]
            return
        if op in ("rekey", "list"):
            return
        sid = rec["id"]
        before = self.sessions.pop(sid, None)
        if before is None and op != "save":
            return  # already ambiguous, or removed by a cleanup
        self.ambiguous[sid] = [before, self._after(rec, before)]

    def expire_may_vanish(self) -> None:
        """With several workers, any expire session may have gone to another's cleanup."""
        for sid, st in list(self.sessions.items()):
            if st.expire:
                self.ambiguous[sid] = [st, None]
                del self.sessions[sid]


def observe(vault: Any, sid: str) -> State | None:
    """The session as stored, read the way ``load`` reads it but without its audit record
    (an fsync each: hundreds per round made a round's cost grow with the vault)."""
    from sessionseal import Session
    from sessionseal.errors import SessionNotFound

    try:
        s = Session.model_validate_json(vault.parts.store.document(vault.parts.store.open(uuid.UUID(sid))))
    except SessionNotFound:
        return None
    turns = [m.content[0].text.split(" ", 1)[0] for m in s.messages]  # type: ignore[union-attr]
    return State(s.title, turns, "expire" in s.tags)


def check(vault: Any, model: Model, *, index: bool = False) -> tuple[list[str], Counter[str]]:
    """Compare the vault with the model and resolve the ambiguous sessions to what is there;
    with *index*, the full-text index too (:func:`tests._infra.ftscrash.index_failures`).

    Returns the failures (empty: nothing lost, nothing unexpected) and the verify warnings.
    """
    failures: list[str] = []
    result = vault.verify(read_data=True)
    warnings = Counter(p.code for p in result.warnings)
    failures += [f"verify: {p.code}: {p.describe()}" for p in result.errors]
    # Temp files of killed writers are removed by the next open, under the vault lock.
    failures += [f"leftover {p.path}" for p in result.warnings if p.code == "temp-file" and "killed" in p.message]
    listed = {str(s.id) for s in vault.list()}
    for sid, st in list(model.sessions.items()):
        seen = observe(vault, sid)
        if seen != st:
            failures.append(f"session {sid}: expected {st}, found {seen}")
        elif sid not in listed:
            failures.append(f"session {sid} loads but is not listed")
    for sid, options in list(model.ambiguous.items()):
        seen = observe(vault, sid)
        if seen not in options:
            failures.append(f"session {sid}: expected one of {options}, found {seen}")
            continue
        del model.ambiguous[sid]
        if seen is None:
            model.gone.add(sid)
        else:
            model.sessions[sid] = seen
    for sid in model.gone:
        if sid in model.sessions:
            continue  # (not possible: ids are never reused)
        if sid in listed or observe(vault, sid) is not None:
            failures.append(f"session {sid} was deleted (acknowledged) but is still there")
    unknown = listed - set(model.sessions) - model.gone
    failures += [f"session {sid} appeared from nowhere" for sid in sorted(unknown)]
    if index:
        from tests._infra.ftscrash import index_failures

        failures += index_failures(vault)
    return failures, warnings


# -- runs ------------------------------------------------------------------------------------


@dataclass
class Figures:
    kills: int = 0
    rounds: int = 0
    acked: Counter[str] = field(default_factory=Counter)
    in_flight: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    sessions: int = 0
    seconds: float = 0.0

    def add(self, other: Figures, label: str) -> None:
        """Add the figures of another run; its failures are prefixed with *label* (its seed)."""
        self.kills += other.kills
        self.rounds += other.rounds
        self.acked.update(other.acked)
        self.in_flight.update(other.in_flight)
        self.warnings.update(other.warnings)
        self.failures += [f"{label}: {x}" for x in other.failures]
        self.sessions += other.sessions
        self.seconds += other.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "kills": self.kills,
            "rounds": self.rounds,
            "acknowledged": dict(sorted(self.acked.items())),
            "in_flight_at_kill_or_failed": dict(sorted(self.in_flight.items())),
            "verify_warnings": dict(sorted(self.warnings.items())),
            "failures": self.failures,
            "sessions_at_end": self.sessions,
            "seconds": round(self.seconds, 1),
        }


def init_vault(path: Path) -> None:
    from sessionseal import PassphraseProvider, Vault

    Vault.init(path, key_provider=PassphraseProvider(PASSPHRASE, log2_n=14)).close()


def open_vault(path: Path) -> Any:
    from sessionseal import Vault

    return Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False)


def crash_rounds(
    zyg: Zygote, vault_path: Path, work_dir: Path, *, kills: int, seed: int, max_delay: float = 0.5
) -> Figures:
    """*kills* rounds of: fork a worker, let it run a random while, SIGKILL it, check."""
    rng = random.Random(seed)
    model, figures, t0 = Model(), Figures(), time.monotonic()
    for r in range(kills):
        ack = work_dir / f"ack-{r}"
        pid = zyg.fork(
            {
                "vault": str(vault_path),
                "ack": str(ack),
                "seed": rng.getrandbits(32),
                "owned": model.owned(),
                "tag": f"r{r}",
            }
        )
        _wait_ready(ack)
        time.sleep(rng.uniform(0.0, max_delay))
        os.kill(pid, signal.SIGKILL)
        zyg.wait(pid, timeout=30)
        figures.kills += 1
        figures.rounds += 1
        model.apply_log(ack)
        with open_vault(vault_path) as v:
            failures, warnings = check(v, model)
        figures.warnings.update(warnings)
        figures.failures += [f"round {r}: {f}" for f in failures]
        if failures:
            break
        ack.unlink()
    if not figures.failures:
        # A last round that is not killed: the worker runs until it has acknowledged every kind
        # of operation once, so that the run exercises each whatever the machine's speed (where
        # the random kills land depends on it).
        ack = work_dir / "ack-coverage"
        args = {"vault": str(vault_path), "ack": str(ack), "seed": rng.getrandbits(32), "tag": "cov"}
        pid = zyg.fork({**args, "owned": model.owned(), "until_all": True})
        status = zyg.wait(pid, timeout=600)
        model.apply_log(ack)
        if status != 0:
            figures.failures.append(f"the coverage round exited {status}")
        with open_vault(vault_path) as v:
            failures, warnings = check(v, model, index=True)
        figures.warnings.update(warnings)
        figures.failures += [f"coverage round: {f}" for f in failures]
    figures.acked, figures.in_flight = model.acked, model.in_flight
    figures.sessions, figures.seconds = len(model.sessions), time.monotonic() - t0
    return figures


def concurrent_run(
    zyg: Zygote, vault_path: Path, work_dir: Path, *, workers: int, duration: float, seed: int, kill_one: bool
) -> Figures:
    """*workers* workers side by side for *duration* seconds; one is SIGKILLed midway when
    *kill_one* (its locks must not block the others).  Every worker must finish in time."""
    rng = random.Random(seed)
    model, figures, t0 = Model(), Figures(), time.monotonic()
    acks, pids = [], []
    for w in range(workers):
        ack = work_dir / f"worker-{w}"
        acks.append(ack)
        pids.append(
            zyg.fork(
                {
                    "vault": str(vault_path),
                    "ack": str(ack),
                    "seed": rng.getrandbits(32),
                    "owned": {},
                    "tag": f"w{w}",
                    "duration": duration,
                }
            )
        )
    for ack in acks:
        _wait_ready(ack)
    if kill_one:
        time.sleep(duration / 2)
        os.kill(pids[0], signal.SIGKILL)
        figures.kills += 1
    for w, pid in enumerate(pids):
        status = zyg.wait(pid, timeout=duration + 120)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            zyg.wait(pid, timeout=30)
            figures.failures.append(f"worker {w} did not finish within {duration + 120:g} s: a deadlock?")
        elif status != 0 and not (kill_one and w == 0):
            err = Path(str(acks[w]) + ".err")
            figures.failures.append(f"worker {w} exited {status}: {err.read_text() if err.exists() else ''}")
    for ack in acks:
        model.apply_log(ack)
    model.expire_may_vanish()
    with open_vault(vault_path) as v:
        failures, warnings = check(v, model, index=True)
    figures.failures += failures
    figures.warnings.update(warnings)
    figures.acked, figures.in_flight = model.acked, model.in_flight
    figures.sessions, figures.seconds = len(model.sessions), time.monotonic() - t0
    figures.rounds = 1
    return figures


def _wait_ready(ack: Path, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(FileNotFoundError):
            if ack.read_bytes().startswith(b"R "):
                return
        err = Path(str(ack) + ".err")
        if err.exists():
            raise RuntimeError(f"worker failed to start: {err.read_text()}")
        time.sleep(0.005)
    raise TimeoutError(f"worker {ack.name} did not start")
