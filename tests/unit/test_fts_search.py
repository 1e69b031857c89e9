"""Search answered from the encrypted full-text index (issue 23; docs/spec/fts-v1.md "Queries",
docs/api.md "Search"): every query form gives what a brute-force evaluation of the stored,
sanitized text gives, whether the index is current, behind on some sessions, or absent.

The index is the vault's own, kept by its writers (``_vault/_fulltext.py``); or, to test the
segments' path too, one built the way a rebuild builds it, from the ``_fts`` functions over the
session files (``analyze``, ``build_segment``, ``SegmentReader``) with each file's stamp, and
handed to the search through the same seam (``FullText.view()``). Sessions the index is behind
on are written by a second handle whose index writes are turned off, as a failed index write
leaves them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionseal import KeychainProvider, ListQuery, Vault, errors
from sessionseal._fts import Doc as FtsDoc
from sessionseal._fts import FtsIndex, SegmentReader, analyze, build_segment, doc_fields
from sessionseal._index import Stamp
from sessionseal._vault._fulltext import NO_WRITES_ENV
from sessionseal.cli import cli

TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
VOCAB = ["alpha", "beta", "gamma", "delta", "omega", "apple", "apricot", "banana", "bandana"]
TITLE, USER, ASSISTANT, TOOL = 1, 2, 4, 8
FIELD_BITS = {"title": TITLE, "user": USER, "assistant": ASSISTANT, "tool": TOOL}


# -- the index, built from the session files as a rebuild does ------------------------------


@dataclass(frozen=True)
class View:
    index: FtsIndex
    stamps: Mapping[uuid.UUID, Stamp]


@dataclass
class BuiltIndex:
    """A full-text index of the vault's sessions as they are now (one segment), or none."""

    vault: Vault
    root: Path
    segment: tuple[uuid.UUID, bytes] | None = None
    stamps: dict[uuid.UUID, Stamp] = field(default_factory=dict)

    def file_of(self, sid: uuid.UUID) -> Path:
        return self.vault.path / "sessions" / (self.vault._keys.file_name(sid) + ".sst")

    def build(self) -> None:
        analyzed, self.stamps = [], {}
        for s in self.vault.list(ListQuery(archived=None)):
            store = self.vault._store
            doc = json.loads(store.document(store.open(s.id)))
            analyzed.append(analyze(FtsDoc(s.id, s.generation, doc_fields(doc))))
            st_ = os.stat(self.file_of(s.id))
            self.stamps[s.id] = (st_.st_ino, st_.st_size, st_.st_mtime_ns)
        seg_id, key = uuid.uuid4(), os.urandom(32)
        self.root.mkdir(exist_ok=True)
        (self.root / f"{seg_id}.seg").write_bytes(build_segment(self.vault.vault_id, seg_id, key, analyzed))
        self.segment = (seg_id, key)

    @contextlib.contextmanager
    def view(self) -> Iterator[View | None]:
        if self.segment is None:
            yield None
            return
        seg_id, key = self.segment
        with SegmentReader(self.root / f"{seg_id}.seg", self.vault.vault_id, seg_id, key) as reader:
            yield View(FtsIndex([reader]), dict(self.stamps))


@contextlib.contextmanager
def unindexed(vault: Vault, provider: KeychainProvider) -> Iterator[Vault]:
    """A second handle on *vault* whose writes leave the full-text index behind (as a write whose
    index update failed, or was killed, does: the session file is written, the index is not)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(NO_WRITES_ENV, "1")
        other = Vault.open(vault.path, key_provider=provider)
    try:
        yield other
    finally:
        other.close()


def drop_index(vault: Vault) -> None:
    """The index's files deleted: no usable index."""
    shutil.rmtree(vault.path / "fts")


def wire(vault: Vault, root: Path) -> BuiltIndex:
    built = BuiltIndex(vault, root)
    vault._listing._search._fulltext = built  # the seam _wiring.py hands FullText through
    return built


# -- documents and a brute-force evaluation -------------------------------------------------


@dataclass
class Text:
    """A session's searchable text as the test wrote it: pieces of words per field."""

    pieces: list[tuple[int, list[str]]] = field(default_factory=list)

    def has(self, word: str, bits: int, prefix: bool = False) -> bool:
        return any(
            bit & bits and any(w.startswith(word) if prefix else w == word for w in ws) for bit, ws in self.pieces
        )

    def phrase(self, words: list[str], bits: int) -> bool:
        n = len(words)
        return any(bit & bits and any(ws[i : i + n] == words for i in range(len(ws))) for bit, ws in self.pieces)


def _doc(rng: random.Random) -> tuple[dict[str, Any], Text]:
    def some() -> list[str]:
        return [rng.choice(VOCAB) for _ in range(rng.randint(0, 5))]

    title, user, assistant, tool = some(), some(), some(), some()
    text = Text([(TITLE, title), (USER, user), (ASSISTANT, assistant), (TOOL, tool)])
    doc = {
        "title": " ".join(title),
        "messages": [
            {"role": "user", "content": " ".join(user)},
            {"role": "assistant", "content": ". ".join(assistant)},  # punctuation is no word
            {"role": "tool", "content": "\n".join(tool)},
        ],
    }
    return doc, text


Eval = Callable[[Text], bool]


def _field(draw: st.DrawFn) -> tuple[str, int]:
    name = draw(st.sampled_from(["", "title", "user", "assistant", "tool"]))
    return (f"{name}:" if name else ""), FIELD_BITS.get(name, TITLE | USER | ASSISTANT | TOOL)


@st.composite
def leaf(draw: st.DrawFn) -> tuple[str, Eval]:
    prefix, bits = _field(draw)
    kind = draw(st.sampled_from(["word", "prefix", "phrase"]))
    if kind == "word":
        w = draw(st.sampled_from(VOCAB))
        return prefix + draw(st.sampled_from([w, w.upper(), w.title()])), lambda t: t.has(w, bits)
    if kind == "prefix":
        p = draw(st.sampled_from(["alp", "apr", "ban", "band", "ap", "ome"]).filter(lambda s: len(s) >= 3))
        return f"{prefix}{p}*", lambda t: t.has(p, bits, prefix=True)
    ws = draw(st.lists(st.sampled_from(VOCAB), min_size=2, max_size=3))
    return f'{prefix}"{" ".join(ws)}"', lambda t: t.phrase(ws, bits)


def _combine(children: st.SearchStrategy[tuple[str, Eval]]) -> st.SearchStrategy[tuple[str, Eval]]:
    def and_(a: tuple[str, Eval], b: tuple[str, Eval]) -> tuple[str, Eval]:
        return f"({a[0]} {b[0]})", lambda t: a[1](t) and b[1](t)

    def and_kw(a: tuple[str, Eval], b: tuple[str, Eval]) -> tuple[str, Eval]:
        return f"({a[0]} AND {b[0]})", lambda t: a[1](t) and b[1](t)

    def or_(a: tuple[str, Eval], b: tuple[str, Eval]) -> tuple[str, Eval]:
        return f"({a[0]} OR {b[0]})", lambda t: a[1](t) or b[1](t)

    def not_(a: tuple[str, Eval], dash: bool) -> tuple[str, Eval]:
        return (f"-{a[0]}" if dash else f"NOT {a[0]}"), lambda t: not a[1](t)

    return st.one_of(
        st.builds(and_, children, children),
        st.builds(and_kw, children, children),
        st.builds(or_, children, children),
        st.builds(not_, children, st.booleans()),
    )


QUERIES = st.recursive(leaf(), _combine, max_leaves=5)


@dataclass
class Corpus:
    vault: Vault
    provider: KeychainProvider
    root: Path
    texts: dict[str, Text]
    ready: bool = False


@pytest.fixture
def corpus(vault: Vault, provider: KeychainProvider, tmp_path: Path) -> Corpus:
    rng = random.Random(23)
    texts: dict[str, Text] = {}
    for _ in range(14):
        doc, text = _doc(rng)
        texts[str(vault.save(doc))] = text
    return Corpus(vault, provider, tmp_path / "fts", texts)


def _prepare(c: Corpus, state: str) -> None:
    """The index in *state*: kept by the writers; one segment built from the files; behind on
    some sessions (two it lacks, one appended to); or none."""
    if state == "segment":
        wire(c.vault, c.root).build()
    elif state == "stale":
        rng = random.Random(7)
        with unindexed(c.vault, c.provider) as other:
            for _ in range(2):
                doc, text = _doc(rng)
                c.texts[str(other.save(doc))] = text
            some = sorted(c.texts)[0]
            other.append(some, [{"role": "user", "content": "omega banana"}])
        c.texts[some].pieces.append((USER, ["omega", "banana"]))
    elif state == "none":
        drop_index(c.vault)


def _found(vault: Vault, q: str, snippets: bool) -> tuple[set[str], str]:
    hits = vault.search(q, ListQuery(limit=1000), snippets=snippets)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    return {h.id for h in hits}, hits.source


@pytest.mark.parametrize("state", ["writers", "segment", "stale", "none"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_query_form_finds_what_a_brute_force_evaluation_finds(
    corpus: Corpus, state: str, data: st.DataObject
) -> None:
    if not corpus.ready:
        _prepare(corpus, state)
        corpus.ready = True
    q, evaluate = data.draw(QUERIES)
    found, source = _found(corpus.vault, q, data.draw(st.booleans()))
    assert found == {sid for sid, t in corpus.texts.items() if evaluate(t)}
    assert source == ("none" if state == "none" else "fts")


# -- stale sessions, no index, a damaged index ------------------------------------------------


def _audited(vault: Vault) -> dict[str, Any]:
    detail: dict[str, Any] = [r for r in vault.audit_records() if r["action"] == "search"][-1]["detail"]
    return detail


def test_a_session_the_index_is_behind_on_is_found_from_its_text(vault: Vault, provider: KeychainProvider) -> None:
    a = vault.save({"title": "first", "messages": [{"role": "user", "content": "walrus"}]})
    hits = vault.search("walrus", snippets=False)
    assert [h.id for h in hits] == [str(a)] and hits.source == "fts" and hits.stale == 0
    assert _audited(vault) == {"scanned": 0, "hits": 1, "index": "fts", "stale": 0}  # nothing decrypted
    # Written while the index's updates failed: an append and a new session.
    with unindexed(vault, provider) as other:
        other.append(a, [{"role": "assistant", "content": "narwhal"}])
        b = other.save({"title": "second", "messages": [{"role": "user", "content": "narwhal walrus"}]})
    hits = vault.search("narwhal", snippets=False)
    assert {h.id for h in hits} == {str(a), str(b)} and hits.source == "fts" and hits.stale == 2
    assert _audited(vault) == {"scanned": 2, "hits": 2, "index": "fts", "stale": 2}
    # What the index says of a stale session is not used: what its file holds now is.
    assert [h.id for h in vault.search("walrus -narwhal")] == []
    # The next indexed write of the session brings the index up to date with it.
    vault.append(b, [{"role": "user", "content": "seal"}])
    assert vault.search("narwhal seal", snippets=False).stale == 1
    # No query reached the audit log (nor any file: nothing is written but the audit record).
    assert not any(w in json.dumps(list(vault.audit_records())) for w in ("walrus", "narwhal"))


def test_with_no_index_every_session_is_searched_and_the_answer_says_so(vault: Vault) -> None:
    a = vault.save({"title": "t", "messages": [{"role": "user", "content": "kestrel"}]})
    drop_index(vault)
    hits = vault.search("kestrel")
    assert [h.id for h in hits] == [str(a)] and hits.source == "none" and hits.warnings
    assert _audited(vault)["index"] == "none"


def test_a_damaged_index_is_not_trusted(vault: Vault, tmp_path: Path) -> None:
    built = wire(vault, tmp_path / "fts")
    a = vault.save({"title": "t", "messages": [{"role": "user", "content": "kestrel"}]})
    built.build()
    assert built.segment is not None
    seg = tmp_path / "fts" / f"{built.segment[0]}.seg"
    with SegmentReader(seg, vault.vault_id, *built.segment) as reader:
        at = reader._base + reader.head.buckets[0][0] + 40  # within the first term bucket
    data = bytearray(seg.read_bytes())
    data[at] ^= 1  # its frame fails authentication when the query reads it
    seg.write_bytes(bytes(data))
    hits = vault.search("kestrel")
    assert [h.id for h in hits] == [str(a)] and hits.source == "none"


# -- filters, phrases, snippets, limits ---------------------------------------------------------


def test_the_list_filters_select_the_candidates(vault: Vault) -> None:
    ids = [
        vault.save(
            {"title": f"s{i}", "tags": ["x"] if i % 2 else [], "messages": [{"role": "user", "content": "ibis"}]}
        )
        for i in range(6)
    ]
    assert {h.id for h in vault.search("ibis", ListQuery(tags=("x",)))} == {str(ids[i]) for i in (1, 3, 5)}
    assert {h.id for h in vault.search("NOT heron", ListQuery(tags=("x",)))} == {str(ids[i]) for i in (1, 3, 5)}
    assert len(vault.search("ibis", ListQuery(limit=2))) == 2


def test_a_phrase_is_confirmed_in_the_text(vault: Vault) -> None:
    ab = vault.save({"title": "t", "messages": [{"role": "user", "content": "the connection refused us"}]})
    ba = vault.save({"title": "t", "messages": [{"role": "user", "content": "refused: connection"}]})
    split = vault.save(
        {"title": "t", "messages": [{"role": "user", "content": "connection"}, {"role": "user", "content": "refused"}]}
    )
    assert [h.id for h in vault.search('"connection refused"')] == [str(ab)]
    assert {h.id for h in vault.search('-"connection refused"')} == {str(ba), str(split)}
    assert [h.id for h in vault.search('assistant:"connection refused"')] == []


@pytest.mark.parametrize("index", ["writers", "segment"])
def test_snippets_come_from_the_sanitized_text_and_a_secret_is_not_findable(
    vault: Vault, tmp_path: Path, index: str
) -> None:
    sid = vault.save({"title": "t", "messages": [{"role": "tool", "content": f"export GITHUB_TOKEN={TOKEN} done"}]})
    views: Any = vault.parts.fulltext
    if index == "segment":
        views = wire(vault, tmp_path / "fts")
        views.build()
    for q in (TOKEN, f'"{TOKEN}"', TOKEN[:10] + "*", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"):
        with contextlib.suppress(errors.InvalidInput):
            assert vault.search(q) == []
    [hit] = vault.search("github_token")
    assert hit.id == str(sid) and hit.fields == ("tool",) and TOKEN not in hit.snippet
    assert "REDACTED" in hit.snippet and hit.field == "messages[0].content[0].text"
    assert hit.snippet[hit.snippet.casefold().find("github_token") :].startswith("GITHUB_TOKEN")
    # Nor is any piece of it a term of the index.
    with views.view() as view:
        assert view is not None
        assert all(view.index.leaf_postings(leaf) == {} for leaf in _terms_of(TOKEN))


def _terms_of(text: str) -> list[Any]:
    from sessionseal._fts import parse

    return parse(" OR ".join(re.findall(r"\w+", text))).leaves()


def test_the_best_come_first_and_the_limit_holds(vault: Vault) -> None:
    many = vault.save({"title": "puffin", "messages": [{"role": "user", "content": "puffin " * 5}]})
    for _ in range(4):
        vault.save({"title": "t", "messages": [{"role": "user", "content": "a puffin among many other words " * 3}]})
    hits = vault.search("puffin", ListQuery(limit=3))
    assert len(hits) == 3 and hits[0].id == str(many) and hits[0].fields == ("title", "user")
    assert hits[0].score > hits[1].score > 0


# -- the CLI -----------------------------------------------------------------------------------


def _cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    monkeypatch.setenv("SESSIONSEAL_VAULT", str(tmp_path / "vault"))
    runner = CliRunner()
    return lambda *args, input=None: runner.invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.mark.usefixtures("memory_keyring")
def test_cli_json_shape_and_the_no_index_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _cli(tmp_path, monkeypatch)
    run("init")
    doc = {"title": "Deploy", "messages": [{"role": "user", "content": "the deploy failed with a timeout"}]}
    sid = run("save", "-", input=json.dumps(doc)).stdout.strip()
    r = run("search", "deploy timeout", "--json")
    body = json.loads(r.stdout)
    assert body["index"] == "fts" and body["stale"] == 0 and body["warnings"] == [] and r.stderr == ""
    [hit] = body["hits"]
    assert set(hit) == {"id", "title", "updated_at", "score", "fields", "field", "offset", "snippet"}
    assert hit["id"] == sid and hit["fields"] == ["title", "user"] and hit["field"] == "title"
    assert hit["offset"] == 0 and hit["snippet"] == "Deploy"
    bare = json.loads(run("search", "timeout", "--no-snippets", "--json").stdout)["hits"][0]
    assert bare["snippet"] == "" and bare["offset"] is None and bare["score"] > 0
    regex = json.loads(run("search", r"fail\w+ with", "--regex", "--json").stdout)
    assert regex["index"] == "scan" and [h["id"] for h in regex["hits"]] == [sid]
    assert "deploy failed" in regex["hits"][0]["snippet"]
    assert json.loads(run("search", "DEPLOY", "--literal", "--case-sensitive", "--json").stdout)["hits"] == []
    shutil.rmtree(tmp_path / "vault" / "fts")
    r = run("search", "deploy timeout", "--json")
    body = json.loads(r.stdout)
    assert body["index"] == "none" and [h["id"] for h in body["hits"]] == [sid]
    assert body["warnings"] and "warning: the full-text index is missing" in r.stderr


@pytest.mark.usefixtures("memory_keyring")
@pytest.mark.parametrize(
    ("query", "rule"),
    [
        ("(secretword", "unbalanced parentheses"),
        ("secretword OR", "an operator without a term"),
        ("se*", "at least 3 characters"),
        ('"..."', "nothing searchable"),
    ],
)
def test_a_malformed_query_is_one_line_naming_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str, rule: str
) -> None:
    run = _cli(tmp_path, monkeypatch)
    run("init")
    r = run("search", query)
    assert r.exit_code == 8 and rule in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "secretword" not in r.stderr and query not in r.stderr
    r = run("search", "(unclosed", "--regex")
    assert r.exit_code == 8 and "regular expression" in r.stderr and "unclosed" not in r.stderr


# -- the MCP server's search -------------------------------------------------------------------


def test_the_mcp_search_answers_the_query_language_within_its_scope(vault: Vault) -> None:
    from sessionseal.cli._mcp_history import History, Scope, VaultBackend

    run = {"role": "tool", "content": "pytest: connection refused"}
    mine = vault.save({"title": "mine", "workspace": "/w/app", "messages": [run]})
    vault.save({"title": "other root", "workspace": "/w/else", "messages": [run]})
    vault.save({"title": "private", "workspace": "/w/app", "tags": ["private"], "messages": [run]})
    vault.save({"title": "flaky", "workspace": "/w/app", "messages": [run, {"role": "user", "content": "flaky"}]})
    history = History(VaultBackend(vault), Scope(("/w/app",)))
    answer = history.search_sessions('tool:"connection refused" -flaky', {}, 10)
    assert [h["id"] for h in answer.body["hits"]] == [str(mine)] and answer.ids == [str(mine)]
    [hit] = answer.body["hits"]
    assert hit["matched"] == ["tool"] and hit["score"] > 0 and "connection refused" in hit["snippet"]
    with pytest.raises(errors.InvalidInput, match="unbalanced parentheses") as exc:
        history.search_sessions("(refused", {}, 10)
    assert "refused" not in str(exc.value)
