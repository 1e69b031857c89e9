"""SIGKILL at named steps of the full-text index's updates (issue 23; docs/reliability.md,
"The full-text index").

A real writer process runs one operation (save, append, delete, cleanup, rekey) on a vault
whose index has sessions in a segment and in the delta log, and SIGKILLs *itself* at a named
step of the index's update (:data:`POINTS`): the step is reached by patching the function that
takes it, so where the kill lands never depends on the machine's speed. A fresh process then
opens the vault (which finishes a rotation killed midway) and checks the index against the
session files (:func:`check`):

* every session it lists is findable by each word it holds: from the index when the index is
  current for it (its stamp equals its file's), by streaming its text otherwise; and for a
  current session the index's postings are exactly those of its stored text (no wrong answer);
* an erased session is not in the index, nor in any fts file that the keys held now open;
* ``verify(read_data=True)`` finds no error; every fts file neither named nor retired by the
  manifest is still there (reported, never removed on inference);
* the next write of each stale session makes it current and findable again (the next writer
  catches up), and so does a new session.

Used by tests/integration/test_fts_crash.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests._infra.forkscript import Forker

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
PASSPHRASE = "fts crash harness"
#: The cleanup policy of the writer: every session tagged "expire", nothing else.
CLEANUP_POLICY = {"min_age": 0, "tags": [{"tag": "expire", "max_age": 0}]}
#: The index's policy at a scale a test reaches: compaction at the third record, tiers of 3
#: (the third compaction of test_fts_crash's vault folds the log alone, beside two segments).
SMALL = {"COMPACT_FRAMES": 3, "COMPACT_BYTES": 1 << 30, "TIER_FANOUT": 3}
#: The delta log's heads checkpoint rewritten at every record (``_ftsheads.EVERY``), so that
#: every write, and every kill, meets one.
HEADS_EVERY = 1

#: The named steps, and the operations that reach each.
POINTS: dict[str, tuple[str, ...]] = {
    # The session file is written (and index.sst), the index is not told yet.
    "before-record": ("save", "append"),
    # Half of the delta log's new frame is on disk: a torn last frame.
    "torn-frame": ("save", "append"),
    # An append's record is on disk (the checkpoint, rewritten at every record here, covered
    # the log up to it), the log's heads checkpoint not rewritten yet ...
    "heads-before": ("append",),
    # ... the new checkpoint written and fsynced under its temporary name, not renamed ...
    "heads-temp": ("append",),
    # ... renamed over the old one (before compaction, the write's next step).
    "heads-after": ("append",),
    # Compaction (the write's record is the log's third): after the new segment file...
    "compact-segment": ("save", "append"),
    # ... the same with tiers of 2, so that after the fold (committed) the vault's three
    # segments merge (a session's pieces in them summed): after the merged segment file ...
    "compact-tier": ("save", "append"),
    # ... after the new, empty delta log ...
    "compact-delta": ("save", "append"),
    # ... after the manifest naming them (the commit), before the replaced files go ...
    "compact-manifest": ("save", "append"),
    # ... and inside the removal of the first replaced file.
    "compact-unlink": ("save", "append"),
    # The rotation's reseal (the key table is under the new epoch, the key store holds both):
    # after the segment rewritten without the erased session ...
    "reseal-segment": ("delete", "cleanup"),
    # ... after the delta log rewritten without it ...
    "reseal-delta": ("delete", "cleanup"),
    # ... after the manifest under the new epoch (the old epoch is still in the key store) ...
    "reseal-manifest": ("delete", "cleanup", "rekey"),
    # ... after the old epoch left the key store, before the replaced files are swept ...
    "rotation-sweep": ("delete", "cleanup", "rekey"),
    # ... and inside the removal of the first replaced file.
    "rotation-unlink": ("delete", "cleanup"),
    # reindex (the sessions read and the segments written without the vault lock): after the
    # new segment, after the new delta log, after the manifest, inside the first removal.
    "reindex-segment": ("reindex",),
    "reindex-delta": ("reindex",),
    "reindex-manifest": ("reindex",),
    "reindex-unlink": ("reindex",),
}

#: Runs one operation and SIGKILLs itself at the named step; argv: vault, point, op, json args.
CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from sessionseal import Vault, _fs
    from sessionseal._fts import _delta
    from sessionseal._vault import _fulltext, _ftsheads, _ftsmerge
    from sessionseal._vault._ftsfiles import Manifest
    from tests._infra.ftscrash import CLEANUP_POLICY, HEADS_EVERY, SMALL

    path, point, op, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    for name, value in SMALL.items():
        setattr(_fulltext, name, value)
    _ftsmerge.DEFAULT_MODE = "inline"  # a tier merge killed in the writer's process, at its point
    _ftsheads.EVERY = HEADS_EVERY
    FT = _fulltext.FullText
    where = []  # the index's step being taken: compact, reseal, sweep

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def inside(step, real):
        def run(*a, **kw):
            where.append(step)
            try:
                return real(*a, **kw)
            finally:
                where.pop()
        return run

    def after(real, step, cond=lambda *a, **kw: True):
        def run(*a, **kw):
            out = real(*a, **kw)
            if where and where[-1] == step and cond(*a, **kw):
                die()
            return out
        return run

    def before(real, step):
        def run(*a, **kw):
            if where and where[-1] == step:
                die()
            return real(*a, **kw)
        return run

    FT.compact = inside("compact", FT.compact)
    FT.merge_tier = inside("compact", FT.merge_tier)  # a compaction's tier merge, after the fold's lock
    FT._reseal = inside("reseal", FT._reseal)
    FT.after_rotation = inside("sweep", FT.after_rotation)
    FT.rebuild = inside("reindex", FT.rebuild)
    is_delta = lambda self, name, *a, **kw: name.endswith(".delta")
    if point == "before-record":
        FT._record = lambda *a, **kw: die()
    elif point == "torn-frame":
        real_write_all = _delta.write_all
        def torn(fd, data):
            real_write_all(fd, bytes(data)[: len(data) // 2])
            os.fsync(fd)
            die()
        _delta.write_all = torn
    elif point in ("heads-before", "heads-after"):
        real_atomic = _fs.Dir.write_atomic
        def heads(self, name, *a, **kw):
            if name.endswith(".heads") and point == "heads-before":
                die()
            out = real_atomic(self, name, *a, **kw)
            if name.endswith(".heads"):
                die()
            return out
        _fs.Dir.write_atomic = heads
    elif point == "heads-temp":
        real_rename = _fs.os.rename
        def rename(src, dst, *a, **kw):
            if str(dst).endswith(".heads"):
                die()
            return real_rename(src, dst, *a, **kw)
        _fs.os.rename = rename
    elif point == "reindex-pause":  # not a kill: the segments are built, the lock not taken yet
        real_build = _fulltext.build_segments  # reindex's builder (_vault/_ftsbuild.py)
        def pause(*a, **kw):
            out = real_build(*a, **kw)
            print("built", flush=True)
            sys.stdin.readline()
            return out
        _fulltext.build_segments = pause
    elif point in ("compact-segment", "reseal-segment"):
        FT._write_segments = after(FT._write_segments, point.split("-")[0])
    elif point == "compact-tier":
        _fulltext.TIER_FANOUT = 2  # the two segments and the fold's are a full tier: merged
        FT._write_sealed = after(FT._write_sealed, "compact", lambda self, fts, sealed: len(sealed[0][0].sessions) > 3)
    elif point == "reindex-segment":  # reindex seals and writes each segment as its builder yields it
        _fs.Dir.write_atomic = after(_fs.Dir.write_atomic, "reindex", lambda self, name, *a, **kw: name.endswith(".seg"))
    elif point in ("compact-delta", "reseal-delta", "reindex-delta"):
        _fs.Dir.write_atomic = after(_fs.Dir.write_atomic, point.split("-")[0], is_delta)
    elif point == "compact-manifest":
        FT._commit = after(FT._commit, "compact")
    elif point == "reindex-manifest":
        FT._commit = after(FT._commit, "reindex")
    elif point == "reindex-unlink":
        _fs.Dir.shred = before(_fs.Dir.shred, "reindex")
    elif point == "reseal-manifest":
        Manifest.write = after(Manifest.write, "reseal")
    elif point == "compact-unlink":
        _fs.Dir.shred = before(_fs.Dir.shred, "compact")
    elif point == "rotation-sweep":
        FT.after_rotation = lambda self: die()
    elif point == "rotation-unlink":
        _fs.Dir.shred = before(_fs.Dir.shred, "sweep")
    else:
        raise SystemExit("unknown point " + point)
    with Vault.open(path, passphrase="fts crash harness", auto_cleanup=False) as v:
        if op == "save":
            v.save(args["doc"])
        elif op == "append":
            v.append(args["id"], [{"role": "assistant", "content": args["text"]}])
        elif op == "delete":
            v.delete(args["id"])
        elif op == "cleanup":
            v.cleanup(CLEANUP_POLICY)
        elif op == "rekey":
            v.rekey()
        elif op == "reindex":
            v.reindex()
    sys.exit(0 if point == "reindex-pause" else 3)  # 3: the point was never reached
    """
)


def doc(title: str, text: str, *, expire: bool = False) -> dict[str, Any]:
    return {
        "title": title,
        "tags": ["expire"] if expire else ["keep"],
        "status": "completed" if expire else "active",  # an active session is never cleaned up
        "messages": [{"role": "user", "content": text}],
    }


def _fts_dir(vault: Any) -> Path:
    from sessionseal._vault._ftsfiles import FTS_DIR

    return Path(vault.parts.ctx.path) / FTS_DIR


def _stamp(vault: Any, sid: uuid.UUID) -> tuple[int, int, int]:
    st = os.stat(Path(vault.parts.ctx.path) / "sessions" / (vault.parts.keys.file_name(sid) + ".sst"))
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _terms_of(vault: Any, sid: uuid.UUID) -> Any:
    """The stored session's postings, as a rebuild would index it."""
    import orjson

    from sessionseal._fts import Doc, analyze, doc_fields

    a = analyze(Doc(sid, 1, doc_fields(orjson.loads(vault.load_json(sid)))))
    return a.entry.lengths, {t: (p.tf, p.mask) for t, p in a.terms.items()}


def _indexed(view: Any, sid: uuid.UUID, terms: set[str]) -> Any:
    """The session's postings as the index answers them (segments and delta folded)."""
    out = {}
    for t in terms:
        p = view.index._term(t).get(sid)
        if p is not None:
            out[t] = (p.tf, p.mask)
    return view.index.docs[sid].lengths, out


def index_failures(vault: Any) -> list[str]:
    """The random-kill harness's index check (tests/_infra/crash.py): an index is there, and
    every session it is current for has exactly its stored text's postings (the others are
    streamed by search)."""
    failures: list[str] = []
    _answer(vault, {}, set(), failures, "index")
    return failures


def readable_now(vault: Any) -> tuple[set[uuid.UUID], set[str], set[tuple[int, int, int]]]:
    """The sessions, terms and file stamps that fts/ gives with the keys held now: the manifest
    under the key store's master keys (the sessions and stamps it lists), then every file of
    fts/ under every segment and delta key it names."""
    from sessionseal import errors
    from sessionseal._fs import Dir
    from sessionseal._fts import SegmentReader, read_delta
    from sessionseal._vault._ftsfiles import Manifest
    from sessionseal._vault._ftsheads import open_heads

    master = vault.parts.keys.fresh_master()
    sessions: set[uuid.UUID] = set()
    terms: set[str] = set()
    stamps: set[tuple[int, int, int]] = set()
    fts = _fts_dir(vault)
    if not fts.is_dir():
        return sessions, terms, stamps
    d = Dir(fts)
    try:
        man = Manifest.load(d, vault.vault_id, master)
    except (errors.IntegrityError, FileNotFoundError):
        return sessions, terms, stamps  # no manifest the keys held open: no key to any other file
    finally:
        d.close()
    sessions |= set(man.stamps) | {sid for s in man.segments for sid in s.sessions}
    stamps |= {(st[1], st[2], st[3]) for st in man.stamps.values()}
    keys = [s.key for s in man.segments] + [man.delta_key]
    for p in sorted(fts.iterdir()):
        for key in keys:
            try:
                if p.suffix == ".seg":
                    with SegmentReader(p, vault.vault_id, uuid.UUID(hex=p.stem), key) as r:
                        for a in r.read_all():
                            sessions.add(a.entry.session_id)
                            terms |= set(a.terms)
                elif p.suffix == ".heads":
                    h = open_heads(p.read_bytes(), vault.vault_id, uuid.UUID(hex=p.stem), key)
                    sessions |= {uuid.UUID(bytes=sid) for sid in h.fold}
                    stamps |= {(st[1], st[2], st[3]) for st in h.fold.values()}
                elif p.suffix == ".delta":
                    for rec in read_delta(p.read_bytes(), vault.vault_id, key, torn_tail_ok=True):
                        sessions.add(rec.doc.session_id)
                        terms |= set(rec.terms)
                        stamps.add(tuple(rec.stamp))  # type: ignore[arg-type]
            except (errors.IntegrityError, ValueError):
                continue
    return sessions, terms, stamps


def _answer(
    vault: Any,
    words: dict[uuid.UUID, list[str]],
    maybe: set[str],
    failures: list[str],
    label: str,
    *,
    unusable_ok: bool = False,
) -> set[uuid.UUID]:
    """Check every listed session against the index; return the stale ones."""
    listed = {s.id for s in vault.list()}
    stale: set[uuid.UUID] = set()
    with vault.parts.fulltext.view() as view:
        if view is None:
            if not unusable_ok:
                failures.append(f"{label}: no usable index")
            for sid in sorted(listed):  # search streams every session: each holds its words
                _lengths, truth = _terms_of(vault, sid)
                lost = [w for w in words.get(sid, []) if w not in truth and w not in maybe]
                failures += [f"{label}: session {sid} does not hold {w!r}" for w in lost]
            return listed
        for sid in sorted(listed):
            lengths, truth = _terms_of(vault, sid)
            current = view.stamps.get(sid) == _stamp(vault, sid)
            if not current:
                stale.add(sid)
            elif _indexed(view, sid, set(truth) | set(words.get(sid, []))) != (lengths, truth):
                failures.append(f"{label}: session {sid} is current but its postings differ from its text")
            for w in words.get(sid, []):
                if w in maybe and w not in truth:
                    continue  # the operation in flight did not get there
                found = sid in {h.session_id for h in view.index.search(w)} if current else w in truth
                if not found:
                    failures.append(f"{label}: session {sid} ({'current' if current else 'stale'}) not found by {w!r}")
    return stale


def check(path: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The checks of the module docstring, in this (fresh) process. *spec*: ``words`` (session
    id -> words it holds if it is there), ``maybe`` (the words of the operation in flight),
    ``erased`` (ids that must not be there, or whose words
    must not be in the index if they are gone) and ``erased_words``."""
    from sessionseal import Vault, errors
    from sessionseal._vault._ftsfiles import MANIFEST

    failures: list[str] = []
    words = {uuid.UUID(k): v for k, v in spec["words"].items()}
    maybe = set(spec["maybe"])  # the words of the operation in flight: there or not
    before = set(os.listdir(Path(path) / "fts")) if (Path(path) / "fts").is_dir() else set()
    with Vault.open(path, passphrase=PASSPHRASE, auto_cleanup=False) as v:
        v.list()  # the first use finishes a rotation killed midway
        present = {s.id for s in v.list()}
        gone = {uuid.UUID(s) for s in spec["erased"]} - present
        unusable_ok = bool(spec.get("unusable_ok"))  # a damaged index: streamed until reindex
        stale = _answer(
            v, {s: w for s, w in words.items() if s in present}, maybe, failures, "at open", unusable_ok=unusable_ok
        )
        with v.parts.fulltext.view() as view:
            held = set() if view is None else set(view.index.docs) | set(view.stamps)
            hits = set() if view is None else {h.session_id for w in spec["erased_words"] for h in view.index.search(w)}
        if gone & held or gone & hits:
            failures.append("an erased session is still in the index")
        if v.parts.keys.fresh_master().keys.keys() != {v.parts.keys.keytable(fresh=True).kek_epoch}:
            failures.append("the rotation was not finished by the next open")
        sessions, terms, _stamps = readable_now(v)
        if gone & sessions or (gone and set(spec["erased_words"]) & terms):
            failures.append("an erased session's words are in an fts file the keys held now open")
        result = v.verify(read_data=True)
        errs = [f"{p.code}: {p.describe()}" for p in result.errors]
        warns = sorted({p.code for p in result.warnings})
        allowed = set(spec.get("verify_errors_ok", ()))
        failures += [f"verify: {e}" for e, p in zip(errs, result.errors, strict=True) if p.code not in allowed]
        # Without --read-data: the same or less, never an error the full read does not confirm.
        quick = {p.code for p in v.verify().errors}
        failures += [f"verify (quick): {c}" for c in sorted(quick - {p.code for p in result.errors})]
        # The next writer catches up: each stale session's next write, and a new session.
        for sid in sorted(stale):
            v.append(sid, [{"role": "user", "content": "catchupword"}])
            words[sid] = [*words[sid], "catchupword"]
        fresh = v.save(doc("afterwards", "newcomerword"))
        words[fresh] = ["newcomerword"]
        now = {s: w for s, w in words.items() if s in present | {fresh}}
        still = _answer(v, now, maybe, failures, "after the next writes", unusable_ok=unusable_ok)
        if not unusable_ok:
            failures += [f"session {sid} is still stale after its next write" for sid in sorted(still)]
        from sessionseal._fs import Dir
        from sessionseal._vault._ftsfiles import Manifest

        d = Dir(_fts_dir(v))
        try:
            man = Manifest.load(d, v.vault_id, v.parts.keys.fresh_master())
        except errors.SessionSealError as exc:
            if not unusable_ok:
                failures.append(f"the manifest does not load: {type(exc).__name__}")
            man = None
        finally:
            d.close()
        after_names = set(os.listdir(Path(path) / "fts"))
        unlisted = sorted(
            n
            for n in before
            if not n.startswith(".")
            and man is not None
            and n != MANIFEST
            and n not in man.names()
            and n != man.heads_name
            and n not in man.retired
        )
        removed = [n for n in unlisted if n not in after_names and n not in (man.retired if man else {})]
        failures += [f"unlisted file {n} was removed" for n in removed]
        if spec.get("reindex"):  # reindex makes every session current again, the erased absent
            v.reindex()
            left = _answer(v, now, maybe, failures, "reindexed")
            failures += [f"session {sid} is stale after reindex" for sid in sorted(left)]
            sessions, terms, _stamps = readable_now(v)
            if gone & sessions or (gone and set(spec["erased_words"]) & terms):
                failures.append("an erased session's words are in an fts file after reindex")
    return {
        "failures": failures,
        "stale": len(stale),
        "warnings": warns,
        "errors": sorted({p.code for p in result.errors}),
        "gone": len(gone),
        "unlisted": [n.rsplit(".", 1)[1] for n in unlisted],
    }


def check_main() -> None:
    print(json.dumps(check(sys.argv[1], json.loads(sys.argv[2]))))


def check_in_fresh_process(path: Path, spec: dict[str, Any], children: Forker | None = None) -> dict[str, Any]:
    """Run :func:`check_main` on the vault at *path* in a fresh process (as a user would open it
    after the kill) and return its report; the process must exit 0 (never a traceback).
    With *children*, the process is forked from that fork server (it has opened no vault)."""
    if children is not None:
        ran = children.run("from tests._infra.ftscrash import check_main; check_main()", str(path), json.dumps(spec))
        assert ran.returncode == 0, ran.stderr
        out: dict[str, Any] = json.loads(ran.stdout)
        return out
    checker = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tests._infra.ftscrash import check_main; check_main()",
            str(path),
            json.dumps(spec),
        ],
        check=False,
        env=ENV,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checker.returncode == 0, checker.stderr
    report: dict[str, Any] = json.loads(checker.stdout)
    return report
