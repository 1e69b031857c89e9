"""``reindex`` builds the full-text index on worker processes (docs/spec/fts-v1.md, "Reindex";
docs/design.md, "Build speed"): the same index as in this process, segments sealed as they
come, progress per session up to the total, and workers only for a vault worth their start."""

from __future__ import annotations

import importlib.machinery
import os
import sys
import types
import uuid

import pytest

from sessionseal import Vault
from sessionseal._vault import _ftsbuild
from sessionseal._vault._ftsfiles import FTS_DIR, MANIFEST, Manifest

QUERIES = ["kumquat", "shared", "title:t3", "tool:grep", "user:alpha AND assistant:omega", "zeb*", "NOT shared"]


def _s(i: int) -> dict[str, object]:
    text = f"word{i} shared alpha {'kumquat ' if i % 3 == 0 else ''}" + "filler text of a session " * (50 * i)
    return {
        "title": f"t{i}",
        "messages": [
            {"role": "user", "content": text},
            {"role": "assistant", "content": f"omega zebra{i} reply"},
        ],
    }


def _state(vault: Vault) -> tuple[dict[str, set[uuid.UUID]], dict[uuid.UUID, tuple[int, int, int]], list[int]]:
    """Each query's hits, the stamps, and the segments' session counts."""
    with vault.parts.fulltext.view() as view:
        assert view is not None
        hits = {q: {h.session_id for h in view.index.search(q, limit=1000)} for q in QUERIES}
        stamps = dict(view.stamps)
    d = vault.parts.ctx.root.sub(FTS_DIR)
    try:
        man = Manifest.load(d, vault.vault_id, vault.parts.keys.fresh_master())
    finally:
        d.close()
    return hits, stamps, sorted(len(s.sessions) for s in man.segments)


@pytest.mark.parametrize("workers", [0, 2])
def test_reindex_on_workers_builds_the_index_of_one_process(
    vault: Vault, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    ids = [vault.save(_s(i)) for i in range(9)]
    vault.append(ids[1], [{"role": "assistant", "content": "kumquat later"}])
    monkeypatch.setattr(_ftsbuild, "SEGMENT_TEXT", 4000)  # several segments, as a large vault has
    monkeypatch.setattr(_ftsbuild, "workers_for", lambda ctx, names: 0)
    vault.reindex()
    expected = _state(vault)
    assert len(expected[2]) > 2 and sum(expected[2]) == 9
    monkeypatch.setattr(_ftsbuild, "workers_for", lambda ctx, names: workers)
    seen: list[tuple[int, int]] = []
    assert vault.reindex(progress=lambda done, total: seen.append((done, total))) == 9
    assert _state(vault) == expected
    total = sum(_sizes(vault, ids).values())
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert {p.name for p in (vault.parts.ctx.path / FTS_DIR).iterdir()} >= {MANIFEST}


def test_a_session_file_that_does_not_read_is_left_out_and_progress_still_reaches_the_total(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [vault.save(_s(i)) for i in range(4)]
    name = vault.parts.keys.file_name(ids[2]) + ".sst"
    path = vault.parts.ctx.path / "sessions" / name
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 1  # its last frame fails authentication
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(_ftsbuild, "workers_for", lambda ctx, names: 2)
    seen: list[tuple[int, int]] = []
    total = sum(_sizes(vault, ids).values())
    assert vault.reindex(progress=lambda done, total: seen.append((done, total))) in (3, 4)
    assert seen[-1] == (total, total) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    with vault.parts.fulltext.view() as view:
        assert view is not None and ids[2] not in view.stamps and set(ids) - {ids[2]} <= set(view.stamps)


def _sizes(vault: Vault, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    sessions = vault.parts.ctx.path / "sessions"
    return {sid: os.path.getsize(sessions / (vault.parts.keys.file_name(sid) + ".sst")) for sid in ids}


def test_reindex_progress_counts_bytes_so_a_huge_session_weighs_its_size(vault: Vault) -> None:
    """Progress in sessions made a vault of a few huge sessions look nearly done while the
    build had most of its work ahead: each session now advances it by its file's size."""
    words = " ".join(f"w{i}" for i in range(60_000))
    ids = [vault.save({"title": "huge", "messages": [{"role": "user", "content": words}]})]
    ids += [vault.save(_s(i)) for i in range(4)]
    sizes = _sizes(vault, ids)
    seen: list[tuple[int, int]] = []
    assert vault.reindex(progress=lambda done, total: seen.append((done, total))) == 5
    total = sum(sizes.values())
    assert {t for _d, t in seen} == {total} and seen[-1] == (total, total)
    steps = [b - a for a, b in zip([0, *(d for d, _ in seen)], (d for d, _ in seen), strict=False) if b != a]
    assert sorted(steps) == sorted(sizes.values())  # one step per session, of its file's size
    assert max(steps) > total // 2  # the huge one: most of the bar, not a fifth of it


def _main(monkeypatch: pytest.MonkeyPatch, *, file: str | None, spec: str | None) -> None:
    main = types.ModuleType("__main__")
    main.__spec__ = None if spec is None else importlib.machinery.ModuleSpec(spec, None)
    if file is not None:
        main.__file__ = file
    monkeypatch.setitem(sys.modules, "__main__", main)


def test_workers_start_only_for_a_vault_worth_their_start(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    vault.save(_s(1))
    ctx = vault.parts.ctx
    names = sorted(ctx.session_files())
    _main(monkeypatch, file="/usr/bin/sessionseal", spec=None)  # the command
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert _ftsbuild.workers_for(ctx, names) == 0  # a small vault
    monkeypatch.setattr(_ftsbuild, "WORKERS_FROM", 1)
    assert _ftsbuild.workers_for(ctx, names) == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert _ftsbuild.workers_for(ctx, names) == 2  # the parent keeps a core
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert _ftsbuild.workers_for(ctx, names) == 0  # two cores shared by three processes: slower


@pytest.mark.parametrize(
    ("file", "spec", "safe"),
    [
        ("/usr/bin/sessionseal", None, True),  # the command
        ("/x/sessionseal/__main__.py", "sessionseal.__main__", True),  # python -m sessionseal
        (None, None, True),  # python -c, an interactive session
        ("/home/u/prog.py", None, False),  # a program: its main code may be unguarded
        ("/home/u/prog.py", "prog", False),  # python -m prog
    ],
)
def test_an_embedding_program_reindexes_in_its_own_process(
    vault: Vault, monkeypatch: pytest.MonkeyPatch, file: str | None, spec: str | None, safe: bool
) -> None:
    vault.save(_s(1))
    monkeypatch.setattr(_ftsbuild, "WORKERS_FROM", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    _main(monkeypatch, file=file, spec=spec)
    assert _ftsbuild.spawn_safe() is safe
    assert (_ftsbuild.workers_for(vault.parts.ctx, sorted(vault.parts.ctx.session_files())) > 0) is safe
