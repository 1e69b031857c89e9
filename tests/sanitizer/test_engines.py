"""The prefilter engines are interchangeable: same findings on the same text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal._sanitize import Sanitizer, available_engines
from sessionseal._sanitize._native import build_prefilter, fold, fold_source
from sessionseal._sanitize._rules import default_catalogue

from .conftest import engines, sanitizer_for

RULES, _ = default_catalogue()
CORPUS = "\n".join(ex for r in RULES for ex in (*r.examples, *r.counterexamples))


def test_python_engine_is_always_available() -> None:
    assert "python" in available_engines()
    assert Sanitizer(engine="python").engine == "python"


def test_all_engines_find_the_same_secrets_in_the_catalogue() -> None:
    results = {e: sanitizer_for(e).find(CORPUS) for e in engines()}
    reference = results[engines()[0]]
    assert len(reference) > len(RULES)
    for engine, found in results.items():
        assert found == reference, engine


@pytest.mark.parametrize("engine", ["hyperscan", "ahocorasick", "python"])
def test_prefilter_reports_keyword_starts_case_insensitively(engine: str) -> None:
    if engine not in available_engines():
        pytest.skip(f"{engine} is not installed")
    pf = build_prefilter(["ghp_", "-----begin"], [], engine)
    hits, _, _ = pf.scan("é GHP_x ... -----BEGIN ghp_")
    assert sorted(hits) == [(0, 2), (0, 23), (1, 12)]


def test_fold_keeps_one_byte_per_character() -> None:
    text = "a😀é\ud800b"
    assert len(fold(text)) == len(text)


# Bytes as a filter's input may hold them: ASCII, valid UTF-8 of every width, and bytes that
# decode to nothing (lone continuation and lead bytes, truncated and overlong sequences).
_INPUT_BYTES = st.lists(
    st.sampled_from(
        [
            b"a",
            b"Z",
            b"\n",
            b"?",
            "é".encode(),
            "→".encode(),
            "😀".encode(),
            b"\x80",
            b"\xbf",
            b"\xc3",
            b"\xe2\x82",
            b"\xc0\x80",
            b"\xff",
        ]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(_INPUT_BYTES, st.integers(0, 3), st.integers(0, 3))
def test_fold_from_the_utf8_source_is_fold_of_the_text(body: bytes, before: int, after: int) -> None:
    # sanitize folds a region from its input bytes: the same bytes as folding the decoded
    # text, whatever the input holds (else it falls back to folding the text).
    data = b"x" * before + body + b"y" * after
    text = data[before : len(data) - after].decode("utf-8", "surrogateescape")
    assert fold_source(text, (data, before, len(data) - after)) == fold(text)


TRICKY = [
    "xbot token is a1B2c3D4e5F6g7H8i9J0k1L2m3",
    "api_token is a1B2c3D4e5F6g7H8i9J0k1L2m3 and bot_token: Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2",
    "client_secret_token=abcDEF123456ghiJKL and secret_key_base: 9f8e7d6c5b4a39281706f5e4",
    'the api key for the staging env is "Q1w2E3r4T5y6U7i8O9p0A1s2"',
    "password_" + "x" * 60 + "_token = Hunter2Hunter2!",
    '{\\"password\\": \\"Tr0ub4dor&3xyz\\"} and \\\\\\"token\\\\\\": \\\\\\"a1B2c3D4e5F6g7H8\\\\\\"',
    # End-only Hyperscan shapes (hs_som = false): non-ASCII folds to "?", long gaps stay in the window.
    "postgres://us\u00e9r:p\u00e4ssw\u00f6rd123@db.internal/app",
    "Server=db;User Id=sa;Password" + " " * 300 + "= Sup3r$ecret!;",
    '<add key="ApiSecret" value="k8Jd9sLq2Zx7Vb4N" />',
    "session = requests.Session(); session.auth = ( 'admin' , 'S3cr3tPassw0rd!')",
]


@pytest.mark.parametrize("text", TRICKY)
def test_engines_agree_on_overlapping_keywords(text: str) -> None:
    results = {e: sanitizer_for(e).sanitize_text(text) for e in engines()}
    assert len({r.text for r in results.values()}) == 1, {e: r.counts for e, r in results.items()}
    assert next(iter(results.values())).counts


def test_patterns_hyperscan_rejects_still_run_in_python() -> None:
    # The database is compiled optimistically in one go; a rejected anchor pattern falls back
    # to keywords, a rejected full-scan regex (a lookbehind) to Python re over the whole text.
    if "hyperscan" not in available_engines():
        pytest.skip("hyperscan is not installed")
    extra: list[dict[str, object]] = [
        {
            "id": "odd-anchor",
            "regex": r"(?i)zqx-(?P<secret>[a-z0-9]{12})",
            "keywords": ["zqx-"],
            "hs_prefilter": "zqx-(?=a)",
        },
        {"id": "odd-full", "regex": r"(?<=x)ZZ[0-9]{20}"},
    ]
    san = Sanitizer(extra_rules=extra, engine="hyperscan")
    ids = {san.rules[i].id for i in san._scanner._anchored}
    assert "odd-anchor" not in ids and "generic-secret-assignment" in ids
    result = san.sanitize_text("id zqx-abcdef123456 and xZZ12345678901234567890")
    assert result.counts == {"odd-anchor": 1, "odd-full": 1}


@pytest.mark.parametrize(
    "text",
    ["HASŁO: Wt8qZm3Lp5Rv", "ŞIFRE: Lv3zQm8TpR2w", "→ Lösenordet är Mx4vQz9LpT2r", "MẬT KHẨU là Lt6vQz2Mp9Wx"],
)
def test_non_ascii_keywords_with_ascii_letters_are_the_prefilters(text: str) -> None:
    # hasło is found as has?o by every engine's prefilter, not by str.find of ł over the text.
    for engine in engines():
        sc = sanitizer_for(engine)._scanner
        assert sc._intl is None or not {"ł", "ş", "ö", "ậ"} & set(sc._intl)
        assert [f.rule_id for f in sc.find(text)] == ["password-in-prose-intl"], engine
