"""The full-text index of one open vault (issue 23; docs/spec/fts-v1.md, docs/design.md
"The format (d)"): its view for search, its writers, compaction, and its part of a rotation.

A verified cache, like ``index.sst``: every session write updates it after the session file,
under the vault lock (taken after the session lock), and a failure to update it never fails
nor undoes the write that succeeded. The session is then *behind* in the index: its stamp in
the index differs from its file's, search evaluates the query on its text, and its next write
(or ``reindex``) indexes it again (docs/reliability.md). The index is never trusted over the
session files.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from .. import _container, _crypto
from .._container import Kind
from .._fs import Dir
from .._fts import (
    DeltaRecord,
    Doc,
    FtsIndex,
    HeadCache,
    LazyDeltaRecord,
    SegmentBuilder,
    SegmentReader,
    doc_fields,
    new_delta,
    ops_fields,
    read_delta,
    read_delta_current,
    rewrite_delta,
)
from .._keystore import MasterKeys
from ..errors import IntegrityError, SessionSealError
from ._common import SUFFIX, read_header
from ._context import VaultContext
from ._ftsbatch import BatchRun
from ._ftsbuild import build_segments
from ._ftscompact import count_frames, fold, full_tier, seal_segments, without, write_sealed
from ._ftsfiles import (
    FTS_DIR,
    MANIFEST,
    DeadManifest,
    Manifest,
    OtherFtsFormat,
    SegmentInfo,
    Stamp,
    encoded_record,
    header_tomb,
    index_generation,
    is_fts_name,
    open_segment,
)
from ._ftsheads import LogHeads, check_heads
from ._ftstable import FoldedStamps, fold_stamps
from ._keys import Keys

if TYPE_CHECKING:
    from .._keytable import KeyTable

__all__ = ["FtsView", "FullText", "index_generation"]  # index_generation: _ftsfiles', named here too

#: The delta log is folded into a segment when it passes either: a query reads the whole log,
#: and a fold costs what the log holds (docs/design.md, "The cost of the index").
COMPACT_BYTES: Final = 128 << 10
COMPACT_FRAMES: Final = 64
#: A segment holds about 64 MB of text at most: about 6 bytes a word (BM25 lengths).
MAX_SEGMENT_WORDS: Final = (64 << 20) // 6
#: Tiers by words: 8 segments of a tier merge into one of the next (capped as above).
TIER_BASE: Final = 1 << 20
TIER_FANOUT: Final = 8
_MAX_DELTA: Final = 64 << 20
#: Benchmarks only: measure a write without the index (``benchmarks/bench_vault.py``).
NO_WRITES_ENV: Final = "SESSIONSEAL_BENCH_NO_FTS"


#: A finding of :meth:`FullText.check`: (severity, code, path in the vault, message).
Finding = tuple[Literal["error", "warning"], str, str, str]


@dataclass(frozen=True)
class FtsView:
    """What search reads: the index, and per indexed session the stamp of its file after the
    last write the index reflects (``_index.stamp_of``). A session is current in the index iff
    its file's stamp now equals this one; otherwise search evaluates the query on its text."""

    index: FtsIndex
    stamps: Mapping[uuid.UUID, Stamp]


class FullText:
    """The full-text index of one open vault, in ``fts/``."""

    def __init__(self, ctx: VaultContext, keys: Keys) -> None:
        self._ctx = ctx
        self._keys = keys
        #: False: writes leave the index alone (a benchmark's baseline; sessions then go stale).
        self.enabled = os.environ.get(NO_WRITES_ENV) != "1"
        #: The manifest as last read or written by this process (a long-running one reads it once).
        self._cached: Manifest | None = None
        #: The delta log's record heads as this process last read them (an append's check).
        self._log_heads = LogHeads()
        #: The heads of the segments the manifest names, as a view opened them (search reopens them).
        self._heads = HeadCache()
        self._stamps_memo: tuple[tuple[Manifest, int, int, bytes], Mapping[uuid.UUID, Stamp]] | None = None
        #: Told when a fold left a full tier, inside the writer's call: ``_ftsmerge`` merges it later.
        self.tier_due: Callable[[], None] = lambda: None
        self._run = BatchRun()  # a pull's last batches' postings, for their merge (``_ftsbatch``)

    # -- files -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _fts(self, *, create: bool) -> Iterator[Dir | None]:
        root = self._ctx.root
        if not create and not root.exists(FTS_DIR):
            yield None
            return
        d = root.sub(FTS_DIR, create=create)
        try:
            yield d
        finally:
            d.close()

    def _manifest(self, fts: Dir) -> Manifest:
        """The manifest, under the master keys this process holds, or the key store's now (another
        process rotated). :raises FileNotFoundError, IntegrityError: none, or unusable."""
        with self._ctx.mutex:
            cached = self._cached
            # The same file (header and length) as read or written, under an epoch still held: no decrypt.
            if cached is not None and cached.kek_epoch in self._keys.master().keys and cached.is_current(fts):
                return cached
            self._cached = None
        man = self._load(fts)
        with self._ctx.mutex:
            self._cached = man
        return man

    def _load(self, fts: Dir) -> Manifest:
        try:
            return Manifest.load(fts, self._ctx.vault_id, self._keys.master())
        except FileNotFoundError:
            raise
        except IntegrityError:
            reload = getattr(self._keys.provider, "reload", None)
            if reload is None:
                raise
            return Manifest.load(fts, self._ctx.vault_id, reload(self._ctx.vault_id))

    # -- reads -------------------------------------------------------------------------

    @contextlib.contextmanager
    def view(self) -> Iterator[FtsView | None]:
        """The index as it is now, or None: no usable index (none yet, damaged, another format
        version, or sealed under a master key the key store no longer holds). The caller streams
        then, and says so. The segment files are closed on exit."""
        opened = self._open_view()
        try:
            yield None if opened is None else opened[0]
        finally:
            for r in opened[1] if opened is not None else ():
                r.close()

    def _open_view(self) -> tuple[FtsView, list[SegmentReader]] | None:
        for _attempt in range(3):  # a compaction may replace files between two reads: retry
            try:
                with self._fts(create=False) as fts:
                    if fts is None:
                        return None
                    return self._read(fts)
            except FileNotFoundError:
                continue
            except (SessionSealError, OSError, ValueError):
                return None
        return None

    def _read(self, fts: Dir) -> tuple[FtsView, list[SegmentReader]]:
        man = self._manifest(fts)
        vid = self._ctx.vault_id
        readers: list[SegmentReader] = []
        self._heads.retain(s.id for s in man.segments)
        try:
            for s in man.segments:
                readers.append(open_segment(fts, vid, s, self._heads))
            data = fts.read(man.delta_name, max_size=_MAX_DELTA)
            records, _heads = read_delta_current(data, vid, man.delta_key, lazy=True)
            index = FtsIndex(readers, records)
        except BaseException:
            for r in readers:
                r.close()
            raise
        return FtsView(index, self._view_stamps(man, data, records)), readers

    def _view_stamps(
        self, man: Manifest, delta: bytes, records: Sequence[DeltaRecord | LazyDeltaRecord]
    ) -> Mapping[uuid.UUID, Stamp]:
        """The view's stamps, the same object while the manifest and the delta log are the
        same bytes (search keys its own tables by it: a query then costs no step per session).
        The log's sessions are folded alone, each kept where it is at or above the manifest's
        generation (the fold's rule); the manifest's thousands are looked up on demand."""
        key, memo, base = (man, man.generation, man.kek_epoch, delta), self._stamps_memo, man.stamps
        if memo is not None and memo[0][0] is man and memo[0][1:] == key[1:]:
            return memo[1]
        folded = {s: st for s, st in fold_stamps({}, records).items() if st[0] >= base.get(s, st)[0]}
        self._stamps_memo = (key, FoldedStamps(base, folded))
        return self._stamps_memo[1]

    # -- writes (after the session file, under its lock) ---------------------------------

    def saved(
        self,
        sid: uuid.UUID,
        version: tuple[int, int],
        body: Callable[[], bytes],
        stamp: Stamp,
        *,
        doc: Mapping[str, Any] | None = None,
    ) -> None:
        """Index a session's whole stored document at *version*: (its file's container
        generation, its text revision in it: :func:`index_generation`). A new version, or a new
        title. *body* reads the document, or a save passes it parsed (*doc*: the sanitized
        document those bytes serialize, not parsed again). Best effort: a failure leaves the
        session behind in the index (streamed by search), never fails the write."""
        if not self.enabled:
            return
        try:
            if doc is None:
                doc = orjson.loads(body())
            if isinstance(doc, Mapping):
                self._record(Doc(sid, index_generation(*version), doc_fields(doc)), stamp)
        except Exception:  # a cache: the write it follows succeeded
            return

    def holds(self, sid: uuid.UUID, stamp: Stamp) -> bool:
        """Whether the index holds *sid* as its file is now (*stamp*): a resumed pull's session
        that its killed batch indexed already, where a whole record again at the same generation
        would count its words twice. False when unsure (no usable index)."""
        with contextlib.suppress(Exception), self.view() as view:
            return view is not None and view.stamps.get(sid) == stamp
        return False

    def appended(
        self, sid: uuid.UUID, version: tuple[int, int], ops: Sequence[Mapping[str, Any]], stamp: Stamp, before: int
    ) -> bool:
        """Index what an append added (its sanitized *ops* only: O(turn)) at *version*; best effort.

        Only if the index holds the session as it was before the append: at this version, its
        file ending where it ended then (*before*, its committed end). A record of the turn
        alone on top of an index that missed an earlier write (a writer killed between the
        session file and the index, a torn frame, a failure) would make the session look
        current while the missed words are absent. Returns False then, and the caller rewrites
        the session, which indexes it whole. What the file holds decides, never its inode or
        mtime: a vault restored from a copy has the same sessions in new files, and a rewrite
        there would be a new version that sync sends whole (docs/sync.md, "Backups")."""
        if not self.enabled:
            return True
        generation = index_generation(*version)
        try:
            return self._record(Doc(sid, generation, ops_fields(ops)), stamp, after=(generation, before))
        except Exception:  # a cache: the write it follows succeeded
            return True

    def saved_many(self, saved: Sequence[tuple[uuid.UUID, tuple[int, int], Any, Stamp]]) -> None:
        """:meth:`saved` of many (id, version, document, stamp), a pull's batch: segments of its own (``_ftsbatch``)."""
        if not (self.enabled and saved):
            return
        with contextlib.suppress(Exception):  # a cache: the writes it follows succeeded
            cap, run = MAX_SEGMENT_WORDS, self._run  # the delta log is left as it is
            alone, merged, stamps = run.seal(self._ctx.vault_id, saved, max_words=cap, fanout=TIER_FANOUT)
            with self._ctx.vault_lock(), self._ctx.mutex, self._fts(create=True) as fts:
                if fts is None or (man := self._writable(fts)) is None:
                    return  # damaged or another format: search streams until 'reindex'
                self._cached = None  # *man* changes below, before the commit
                gone, sealed, current = run.pick(man.segments, man.stamps, alone, merged, stamps)
                self._replace(fts, man, new := write_sealed(fts, sealed), current, merged=gone, retired=set())
                run.written(new, max_words=cap)
            if full_tier(man.segments, base=TIER_BASE, fanout=TIER_FANOUT, cap=cap):
                self.tier_due()

    def _record(self, doc: Doc, stamp: Stamp, *, after: tuple[int, int] | None = None) -> bool:
        record, head = encoded_record(doc, stamp), (doc.session_id, doc.generation, stamp)  # the CPU work: unlocked
        heads, vid = self._log_heads, self._ctx.vault_id
        return self._write(lambda fts, fd, m: heads.append(fts, fd, m, vid, record, head=head, after=after))

    def _write(self, append: Callable[[Dir, int, Manifest], int | None]) -> bool:
        """*append* records to the delta log (open on a descriptor), then compact if it is due;
        a full tier is left to :attr:`tier_due` (never merged inside a writer's call)."""
        tier_due = False
        with self._ctx.vault_lock(), self._ctx.mutex, self._fts(create=True) as fts:
            assert fts is not None
            man = self._writable(fts)
            if man is None:
                return True  # damaged or another format: search streams until 'reindex'
            fd = fts.open_checked(man.delta_name, write=True)  # never through a link, never another's file
            try:
                size = append(fts, fd, man)
            finally:
                os.close(fd)
            if size is None:
                return False
            if size > COMPACT_BYTES or self._log_heads.frames >= COMPACT_FRAMES:  # counted as appended
                tier_due = self.compact(fts, man)
            elif any(fts.exists(n) for n in man.retired):
                self.sweep(fts, man)  # what an earlier sweep left (its overwrite failed)
        if tier_due:
            self.tier_due()
        return True

    def _writable(self, fts: Dir) -> Manifest | None:
        """The manifest to write to, a new empty index if there is none; None if unusable."""
        try:
            return self._manifest(fts)
        except (FileNotFoundError, DeadManifest):
            pass  # none yet, or one that died with its epoch: a new index starts
        except (SessionSealError, OSError, ValueError):
            return None
        man = Manifest(delta_id=uuid.uuid4(), delta_key=_crypto.new_key())
        fts.write_atomic(man.delta_name, new_delta(self._ctx.vault_id, man.delta_key, 1))
        # An old index's files are noise now (their keys were only in a manifest that is gone
        # or that no key opens) and derived from the sessions anyway: retired, then removed.
        self._retire(fts, man, {n for n in fts.names() if n != man.delta_name and self._ours(fts, n)}, after=0)
        self._commit(fts, man)
        self.sweep(fts, man)
        return man

    def _commit(self, fts: Dir, man: Manifest) -> None:
        """Replace the manifest under the key table's epoch: the index's one commit point."""
        self._cached = None  # until it is written: *man* may differ from the file
        table = self._keys.keytable(fresh=True)
        man.write(fts, self._ctx.vault_id, self._keys.kek(table.kek_epoch), table.kek_epoch)
        self._cached = man

    # -- compaction (under the vault lock) -------------------------------------------------

    def compact(self, fts: Dir, man: Manifest) -> bool:
        """Fold the delta log into segments (docs/spec/fts-v1.md, "Compaction"): the new segment
        files first, then a new empty delta log under a fresh key, then the manifest (the commit),
        then the replaced files go. The log's records become segments of their own, pulling no
        segment for their sessions (O(log), not O(index): ``_ftscompact``). Returns whether a
        tier now holds :data:`TIER_FANOUT` segments, to merge with :meth:`merge_tier` outside
        the writer's call (``_ftsmerge``)."""
        self._cached = None  # *man* changes below, before the commit
        vid = self._ctx.vault_id
        # The records a later save replaced are authenticated, not parsed.
        records, _at = read_delta_current(fts.read(man.delta_name, max_size=_MAX_DELTA), vid, man.delta_key)
        current = fold_stamps(man.stamps, records)
        new = self._write_segments(fts, fold(fts, vid, [], records, current, max_words=MAX_SEGMENT_WORDS))
        retired = {man.delta_name, man.heads_name}
        man.delta_id, man.delta_key = uuid.uuid4(), _crypto.new_key()
        fts.write_atomic(man.delta_name, new_delta(vid, man.delta_key, man.generation + 1))
        self._replace(fts, man, new, current, merged=[], retired=retired)
        return bool(full_tier(man.segments, base=TIER_BASE, fanout=TIER_FANOUT, cap=MAX_SEGMENT_WORDS))

    def tier_full(self) -> bool:
        """Whether a tier holds :data:`TIER_FANOUT` segments now (a merge is due: speed, not damage)."""
        with contextlib.suppress(SessionSealError, OSError, ValueError), self._fts(create=False) as fts:
            segments = [] if fts is None else self._manifest(fts).segments
            return bool(full_tier(segments, base=TIER_BASE, fanout=TIER_FANOUT, cap=MAX_SEGMENT_WORDS))
        return False

    def merge_tier(self, stop: Callable[[], None] = lambda: None) -> bool:
        """Merge the segments of a full tier (spec "Compaction"), building outside the vault
        lock: the merge reads segment files, which never change, and a tier-1 merge takes
        seconds of CPU (14 s for 8 million words of one-turn records), which no other writer
        should wait for. Under the lock, briefly: what to merge is read; then, once the new
        segments are sealed in memory, they are written and committed, only if the manifest
        still names every merged segment under the same master key epoch (else another merge, a
        rotation or a new index came first, and nothing is written). Returns whether a merge was
        committed (best effort). *stop* (``_ftsthread``) runs where nothing is written: its raise ends it."""
        vid = self._ctx.vault_id
        with contextlib.suppress(SessionSealError, OSError, ValueError), self._fts(create=False) as fts:
            if fts is None:
                return False
            with self._ctx.vault_lock(), self._ctx.mutex:
                man = self._manifest(fts)
                pulled = full_tier(man.segments, base=TIER_BASE, fanout=TIER_FANOUT, cap=MAX_SEGMENT_WORDS)
                merging = [s for s in man.segments if s.id in pulled]
                floor, epoch = dict(man.stamps), man.kek_epoch
            if not merging:
                return False
            built = fold(fts, vid, merging, [], floor, max_words=MAX_SEGMENT_WORDS)
            stop()
            sealed = seal_segments(vid, built)
            stop()
            with self._ctx.vault_lock(), self._ctx.mutex:
                self._cached = None
                man = self._manifest(fts)
                if man.kek_epoch != epoch or not pulled <= {s.id for s in man.segments}:
                    return False
                merged = [s for s in man.segments if s.id in pulled]
                self._cached = None  # *man* changes below, before the commit
                self._replace(fts, man, self._write_sealed(fts, sealed), man.stamps, merged=merged, retired=set())
                return True
        return False

    def _replace(
        self,
        fts: Dir,
        man: Manifest,
        new: list[SegmentInfo],
        current: Mapping[uuid.UUID, tuple[int, int, int, int]],
        *,
        merged: Sequence[SegmentInfo],
        retired: set[str],
    ) -> None:
        """Commit *man* with *new* in place of *merged* (retired with *retired*), its stamps
        *current*'s of the sessions a segment holds; then the replaced files go."""
        gone = {s.id for s in merged}
        man.segments = [s for s in man.segments if s.id not in gone] + new
        in_segments = {sid for s in man.segments for sid in s.sessions}
        man.stamps = {sid: st for sid, st in current.items() if sid in in_segments}
        self._retire(fts, man, retired | {s.name for s in merged}, after=man.kek_epoch)
        self._commit(fts, man)
        self.sweep(fts, man)

    def _write_segments(self, fts: Dir, builders: Sequence[SegmentBuilder]) -> list[SegmentInfo]:
        """*builders* (of at most :data:`MAX_SEGMENT_WORDS` each) as new segments (none if empty)."""
        return self._write_sealed(fts, seal_segments(self._ctx.vault_id, builders))

    def _write_sealed(self, fts: Dir, sealed: Sequence[tuple[SegmentInfo, bytes]]) -> list[SegmentInfo]:
        """Segments sealed already, written (each atomically)."""
        return write_sealed(fts, sealed)

    def _retire(self, fts: Dir, man: Manifest, names: set[str], *, after: int) -> None:
        """Record *names* (replaced by the manifest about to be written) as retired, with their
        tombs; forget retired files that are gone already."""
        man.retired = {n: t for n, t in man.retired.items() if fts.exists(n)}
        for n in names:
            tomb = header_tomb(fts, n)
            if tomb is not None:
                man.retired[n] = tomb
        man.retire_after = max(man.retire_after, after)

    def sweep(self, fts: Dir, man: Manifest) -> int:
        """Overwrite and unlink the files *man* retired, once the key store holds no master key
        but the manifest's (a rotation's old epoch gone): each only if its header is still the one
        its tomb names. Returns how many went. Best effort: a file left is swept next time."""
        if not man.retired:
            return 0
        with contextlib.suppress(SessionSealError):
            if set(self._keys.fresh_master().keys) != {man.kek_epoch}:
                return 0
        n = 0
        for name, tomb in man.retired.items():
            if name in man.names() or header_tomb(fts, name) != tomb:
                continue
            with contextlib.suppress(SessionSealError, OSError):
                n += fts.shred(name)
        return n

    # -- rotation (under the vault lock, while the key store holds both epochs) ----------------

    def reseal(self, master: MasterKeys, table: KeyTable) -> None:
        """Follow a rotation: without the sessions the table no longer keys (erased), rewrite
        each segment holding one and the delta log under fresh keys; then write the manifest
        under the table's epoch. The replaced files are retired: overwritten once the old epoch
        has left the key store (:meth:`after_rotation`). A rekey without erasures only reseals
        the manifest. An index that cannot be read or rewritten is left to die with its epoch
        (search streams until 'reindex'): a rotation never fails for the index."""
        self._cached = None
        try:
            self._reseal(master, table)
        except Exception:
            # The manifest stays under the old epoch and dies with it; shredded now, so that no
            # process's cached copy of it (the file unchanged) is taken for current.
            with contextlib.suppress(Exception), self._fts(create=False) as fts:
                if fts is not None:
                    fts.shred(MANIFEST)

    def _reseal(self, master: MasterKeys, table: KeyTable) -> None:
        ctx = self._ctx
        with ctx.mutex, self._fts(create=False) as fts:
            if fts is None:
                return
            try:
                man = Manifest.load(fts, ctx.vault_id, master)
            except (FileNotFoundError, SessionSealError, OSError):
                return  # nothing to follow, or unreadable: its epoch leaves with the rotation
            vid, old_epoch = ctx.vault_id, man.kek_epoch
            data = fts.read(man.delta_name, max_size=_MAX_DELTA)
            records = read_delta(data, vid, man.delta_key, torn_tail_ok=True)
            indexed = set(man.stamps) | {r.doc.session_id for r in records}
            indexed |= {sid for s in man.segments for sid in s.sessions}
            erased = frozenset(sid for sid in indexed if sid not in table.session_keys)
            if not erased and old_epoch == table.kek_epoch:
                return  # done already (a rotation finished by finish_rotation)
            retired: set[str] = set()
            if erased:
                write = functools.partial(self._write_segments, fts)
                kept, replaced = without(fts, vid, man.segments, erased, write, max_words=MAX_SEGMENT_WORDS)
                retired |= {s.name for s in replaced} | {man.delta_name, man.heads_name}
                new_key, new_id = _crypto.new_key(), uuid.uuid4()
                fresh = rewrite_delta(
                    data, vid, man.delta_key, new_key=new_key, generation=man.generation + 1, drop=erased
                )
                fts.write_atomic(new_id.hex + ".delta", fresh)
                man.segments, man.delta_id, man.delta_key = kept, new_id, new_key
                man.stamps = {sid: st for sid, st in man.stamps.items() if sid not in erased}
            # The old manifest and what it named wait for the old epoch to leave the key store.
            self._retire(fts, man, retired, after=table.kek_epoch)
            man.write(fts, vid, master.keys[table.kek_epoch], table.kek_epoch)

    def after_rotation(self) -> None:
        """Once the key store holds the new epoch only: the retired files go (best effort)."""
        self.sweep_retired()

    def sweep_retired(self) -> int:
        """Overwrite and unlink the files the manifest retired, if the key store holds only its
        epoch (under the vault lock); returns how many went (``verify --repair`` too)."""
        ctx = self._ctx
        with (
            contextlib.suppress(SessionSealError, OSError),
            ctx.vault_lock(),
            ctx.mutex,
            self._fts(create=False) as fts,
        ):
            if fts is not None:
                return self.sweep(fts, self._manifest(fts))
        return 0

    # -- reindex -----------------------------------------------------------------------------

    def rebuild(
        self,
        names: Sequence[str],
        read: Callable[[str], tuple[uuid.UUID, tuple[int, int], bytes, Stamp]],
        progress: Callable[[int, int], None] | None = None,
        *,
        workers: int | None = None,
    ) -> int:
        """Build a new index from the session files *names* (``reindex``; on *workers* processes,
        None: :func:`._ftsbuild.build_segments` chooses); returns the sessions
        indexed. The sessions are read and the segments written without the vault lock (writers
        go on: a session written meanwhile is behind in the new index, and streamed until its next
        write); under it, a new empty delta log and the manifest are written, and every container
        of the index's kinds in ``fts/`` that the new manifest does not name is retired: each holds
        only what the session files just gave (docs/spec/fts-v1.md, "Reindex")."""
        ctx = self._ctx
        with self._fts(create=True) as fts:
            assert fts is not None
            segments, stamps = build_segments(
                ctx, fts, names, read, progress, generation=index_generation, workers=workers
            )
            man = Manifest(segments, uuid.uuid4(), _crypto.new_key(), stamps)
            with ctx.vault_lock(), ctx.mutex:
                self._drop_erased(fts, man)  # sessions erased while they were read
                with contextlib.suppress(SessionSealError, OSError, ValueError):
                    man.generation = self._manifest(fts).generation  # numbered above the old one
                fts.write_atomic(man.delta_name, new_delta(ctx.vault_id, man.delta_key, man.generation + 1))
                named = man.names() | {MANIFEST}
                self._retire(fts, man, {n for n in fts.names() if n not in named and self._ours(fts, n)}, after=0)
                self._commit(fts, man)
                self.sweep(fts, man)
        return len(stamps)

    def _drop_erased(self, fts: Dir, man: Manifest) -> None:
        """Under the vault lock, before a new manifest is committed: rewrite its segments without
        the sessions the key table no longer keys (a delete while a reindex read them), and shred
        the segments replaced (never committed: their keys are only in this process)."""
        table = self._keys.keytable(fresh=True)
        erased = frozenset(sid for sid in man.stamps if sid not in table.session_keys)
        if not erased:
            return
        write = functools.partial(self._write_segments, fts)
        vid = self._ctx.vault_id
        man.segments, replaced = without(fts, vid, man.segments, erased, write, max_words=MAX_SEGMENT_WORDS)
        for seg in replaced:
            fts.shred(seg.name)
        man.stamps = {sid: st for sid, st in man.stamps.items() if sid not in erased}

    def _ours(self, fts: Dir, name: str) -> bool:
        """Whether *name* is a segment or delta log of this vault's index (by its header)."""
        if not is_fts_name(name) or name == MANIFEST:
            return False
        try:
            prefix, _size = fts.read_prefix(name, _container.HEADER_SIZE)
            header = _container.parse_unverified_header(prefix)
        except (FileNotFoundError, SessionSealError, OSError):
            return False
        return header.vault_id == self._ctx.vault_id and header.kind in (Kind.FTS_SEGMENT, Kind.FTS_DELTA)

    # -- verify --------------------------------------------------------------------------------

    def check(self, table: KeyTable | None, *, read_data: bool) -> list[Finding]:
        """``verify``'s findings on the index, as (severity, code, path, message): the manifest
        against the key table (no erased session listed), every file it names present (and with
        *read_data*, every frame of each authentic), no file of ``fts/`` it neither names nor
        retired. Nothing is removed: a leftover is reported; ``reindex`` rebuilds (docs/reliability.md).
        Sessions the index is behind on are not reported: search streams them, as designed."""
        out: list[Finding] = []
        rebuild = "; 'sessionseal reindex' rebuilds it (search streams until then)"
        try:
            with self._fts(create=False):
                safe = True
        except SessionSealError:
            safe = False  # a link, FIFO, foreign or loose fts/: verify's tree reports it ('unsafe')
        with self._fts(create=False) if safe else contextlib.nullcontext(None) as fts:
            if fts is None:
                return out
            try:
                man = self._manifest(fts)
            except FileNotFoundError:
                if any(self._ours(fts, n) for n in fts.names()):
                    out.append(("warning", "fts-missing", f"{FTS_DIR}/{MANIFEST}", "no full-text manifest" + rebuild))
                return out
            except DeadManifest:
                what = "left under a dropped master key by a rotation whose index rewrite failed"
                out.append(
                    ("warning", "fts-outdated", f"{FTS_DIR}/{MANIFEST}", what + "; the next write starts a new one")
                )
                return out
            except OtherFtsFormat:
                out.append(("warning", "fts-format", f"{FTS_DIR}/{MANIFEST}", "another format version" + rebuild))
                return out
            except (SessionSealError, OSError) as exc:
                out.append(("error", "fts-damaged", f"{FTS_DIR}/{MANIFEST}", _one_line(exc) + rebuild))
                return out
            out += self._check_files(fts, man, table, read_data=read_data)
        return out

    def _check_files(self, fts: Dir, man: Manifest, table: KeyTable | None, *, read_data: bool) -> list[Finding]:
        out: list[Finding] = []
        vid, rebuild = self._ctx.vault_id, "; 'sessionseal reindex' rebuilds the index"
        records: list[DeltaRecord] = []
        for name in sorted(man.names()):
            path = f"{FTS_DIR}/{name}"
            try:
                if name == man.delta_name:
                    data = fts.read(name, max_size=_MAX_DELTA)
                    records = read_delta(data, vid, man.delta_key, torn_tail_ok=True)
                    heads = check_heads(fts, man, vid, data, records if read_data else None)
                    if heads is not None:
                        sev: Literal["error", "warning"] = "error" if heads[0] == "fts-damaged" else "warning"
                        out.append((sev, heads[0], f"{FTS_DIR}/{man.heads_name}", heads[1]))
                    if read_data and len(records) != count_frames(data):
                        torn = "a torn last record (a killed writer); the next write cuts it"
                        out.append(("warning", "fts-torn", path, torn))
                    continue
                seg = next(s for s in man.segments if s.name == name)
                with open_segment(fts, vid, seg) as r:  # never through a link, never another's file
                    if read_data:
                        r.verify()
            except FileNotFoundError:
                out.append(
                    ("error", "fts-missing-file", path, "a file the full-text manifest names is missing" + rebuild)
                )
            except (SessionSealError, OSError) as exc:
                out.append(("error", "fts-damaged", path, _one_line(exc) + rebuild))
        indexed = fold_stamps(man.stamps, records)
        listed = set(indexed) | {sid for s in man.segments for sid in s.sessions}
        # A keyless session whose file is there and not an erasure's leftover is the key table's
        # problem ('missing-key': a table put back from a backup), not an erasure the index missed.
        erased = [sid for sid in listed if table is not None and sid not in table.session_keys and not self._kept(sid)]
        if erased:
            out.append(
                (
                    "error",
                    "fts-erased",
                    f"{FTS_DIR}/{MANIFEST}",
                    f"the full-text index lists {len(erased)} erased session(s)" + rebuild,
                )
            )
        unnamed = "not named by the full-text manifest (a killed writer's); left alone"
        out += [("warning", "fts-unlisted", f"{FTS_DIR}/{name}", unnamed) for name in self.unlisted(fts, man)]
        if any(fts.exists(n) for n in man.retired):
            waiting = "replaced index files wait for a rotation to finish; --repair finishes it"
            out.append(("warning", "fts-retired", FTS_DIR, waiting))
        return out

    def _kept(self, sid: uuid.UUID) -> bool:
        """Whether *sid*'s file is there and was not left to overwrite by an erasure (no tomb)."""
        header = read_header(self._ctx.sessions, self._keys.file_name(sid) + SUFFIX)
        return header is not None and not self._keys.tombed(header.raw)

    # -- inventory ------------------------------------------------------------------------------

    def unlisted(self, fts: Dir, man: Manifest) -> list[str]:
        """Files of ``fts/`` the manifest neither names nor retired (reported, never removed)."""
        named = man.names() | set(man.retired) | {MANIFEST, man.heads_name}
        return sorted(n for n in fts.names() if not n.startswith(".") and n not in named and is_fts_name(n))


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
