"""Rules whose Hyperscan pattern holds what their regex and check require next to the keyword,
so that the commonest non-secrets never reach Python (issue 21, speed): ``password-in-prose``
needs a space, ``=``, ``:`` or ``->`` after its name ("5 passed", a Python ``pass`` are no
report), ``url-query-secret`` a ``?`` or ``&`` before its name (an ``.env`` line is none),
``secret-in-prose`` 20 value characters after "is" ("the token is stored" is none),
``cookie-header`` a ``:``, ``npmrc-auth`` a separator after its name (``basic_auth(``).
Every engine still finds the same secrets: the patterns are supersets of what the rules accept.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal._sanitize import available_engines
from sessionseal._sanitize._windows import gated_matches

from .conftest import engines, sanitizer_for

needs_hyperscan = pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan is not installed")


def _tried(text: str) -> set[str]:
    """The rules that the Hyperscan prefilter's hits in *text* would have Python try."""
    sc = sanitizer_for("hyperscan")._scanner
    out: set[str] = set()
    for i, _s, _e in sc.prefilter.hits(text):
        if i < sc._nkw:
            out.update(sc.rules[ri].id for ri, _r in enumerate(sc.rules) if sc._keywords[i] in sc.rules[ri].keywords)
        elif i >= sc._nfull:
            out.add(sc.rules[sc._anchored[i - sc._nfull]].id)
    return out


@needs_hyperscan
@pytest.mark.parametrize(
    "text",
    [
        "==== 5 passed, 1 skipped in 0.31s ====",
        "    except KeyError:\n        pass\n",
        "def test_login_passes(): ...",
        "password_min_length = 12 and PASSWORD_HASHERS",
        "pwdump and pwgen are tools",
    ],
)
def test_password_words_without_a_value_never_reach_python(text: str) -> None:
    assert "password-in-prose" not in _tried(text)
    for engine in engines():
        assert sanitizer_for(engine).find(text) == []


@needs_hyperscan
@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("the token is stored in the keychain and refreshed", "secret-in-prose"),
        ("the api key is in the vault, ask ops", "secret-in-prose"),
        ("def basic_auth(user): return _auth_header(user)", "npmrc-auth"),
        ("cookies are set per domain; the cookie jar", "cookie-header"),
    ],
)
def test_other_prose_never_reaches_its_rule(text: str, rule: str) -> None:
    assert rule not in _tried(text)
    for engine in engines():
        assert sanitizer_for(engine).find(text) == []


@needs_hyperscan
@pytest.mark.parametrize(
    "text",
    [
        "NEXTAUTH_SECRET=1f79c5e9b877873ed53d5d00fd7f5704cfe3bf1263ee3fa37eec63e0f70cf19c\n",
        "export SESSION_TOKEN=OarvOfiRjcpWATLHmWiPrkxq",
        "data-signature=abcdef123456",
    ],
)
def test_a_query_name_without_question_mark_or_ampersand_never_reaches_the_query_rule(text: str) -> None:
    assert "url-query-secret" not in _tried(text)


@needs_hyperscan
@pytest.mark.parametrize(
    "text",
    [
        "GET /cb?code=abc&access_token=qToQLIdFRgxV57ZB7OK979908slj2oSe&e=1",
        "https://h.example/x?api-key=b00b9946f99783af23a7d95e5af4465c",
        "?caf\u00e9_token=b00b9946f99783af23a7",  # a non-ASCII letter in the name folds to "?"
    ],
)
def test_query_secrets_are_reported_and_found(text: str) -> None:
    assert "url-query-secret" in _tried(text)
    assert [f.rule_id for f in sanitizer_for("hyperscan").find(text)] == ["url-query-secret"]


_WORD = st.sampled_from(["password", "Passwd", "pw", "PWD", "passphrase", "pass", "passcode", "bypass", "passed"])
_JOIN = st.sampled_from([" is ", ": ", " = ", "=", " -> ", " for admin is ", "s are ", " ", "\\n", "\t", "?"])
_VALUE = st.text(alphabet=st.sampled_from(list("aZ9!_-.:'\"@ \u00e9\u2192")), max_size=20)
_QUERY = st.sampled_from(["?", "&", "?x_", "&client_", "#", " ", "?\u00e9"])
_NAME = st.sampled_from(["token", "Secret", "password", "pwd", "api_key", "API-KEY", "auth", "signature", "sig"])
_PROSE_NAME = st.sampled_from(["token", "api key", "Secret", "bot_token", "client-secret", "tokens", "cookie", "_auth"])
_VERB = st.sampled_from([" is", " was", " \u0131s", " will be", " now is", " for caf\u00e9 is", " IS", ":", "=", ""])
_GAP = st.sampled_from(["", " ", " : ", "         ", " " * 12, ":" + " " * 10, " \u201c", ' \\"', "\t"])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["", "x", "\\n", " ", "\u00e9"]), _WORD, _JOIN, _VALUE)
def test_engines_agree_on_generated_password_prose(before: str, word: str, join: str, value: str) -> None:
    text = before + word + join + value + " Zq8m!W3xP1nB6"
    reference = sanitizer_for("python").find(text)
    assert all(sanitizer_for(e).find(text) == reference for e in engines()), text


@settings(max_examples=300, deadline=None)
@given(_PROSE_NAME, _VERB, _GAP, st.sampled_from(["JIWprbj2nF3n5-soyNkaLljNTtjWlgrz", "abc", "x\u00e9" * 12]))
def test_engines_agree_on_generated_secret_prose(name: str, verb: str, gap: str, value: str) -> None:
    text = "ok so my " + name + verb + gap + value + " thanks"
    reference = sanitizer_for("python").find(text)
    assert all(sanitizer_for(e).find(text) == reference for e in engines()), text


@settings(max_examples=300, deadline=None)
@given(_QUERY, _NAME, _VALUE)
def test_engines_agree_on_generated_queries(query: str, name: str, value: str) -> None:
    text = "https://h.example/p" + query + name + "=" + value + "b00b9946f997Q3af"
    reference = sanitizer_for("python").find(text)
    assert all(sanitizer_for(e).find(text) == reference for e in engines()), text


@pytest.mark.parametrize(
    "text",
    [
        "мой пароль: Zq8mW3xP1nB6!x →",
        "密码: Zq8mW3xP1nB6x and a → arrow",
        "no such keyword here → only an arrow, password: Zq8mW3xP1nB6!x",
        "plain ASCII, password: Zq8mW3xP1nB6!x",
    ],
)
def test_the_utf8_source_changes_nothing_found(engine: str, text: str) -> None:
    """A filter hands the region's bytes along (``find_spans(text, source)``): non-ASCII keywords
    are looked for in them first; the findings are those of the text alone."""
    san = sanitizer_for(engine)
    data = b"\xd0\xbf\xe5\xaf\x86 before\n" + text.encode() + b"\nafter \xd0\xbf\xe5\xaf\x86"
    a = data.index(text.encode())
    expected = san.find_spans(text)
    assert san.find_spans(text, (data, a, a + len(text.encode()))) == expected
    assert any(r.endswith("-intl") for _s, _e, r in expected) == (not text.split("→", maxsplit=1)[0].isascii())


@needs_hyperscan
def test_a_gated_window_rule_is_searched_only_from_where_its_shape_ends() -> None:
    """A window rule gated by a shape finds in a window what ``finditer`` over it finds, though
    its regex is searched only from the first reported end of the shape, less its width."""
    sc = sanitizer_for("hyperscan")._scanner
    assert len(sc._gated) > 50
    for ri, (least, most) in sc._gated.items():
        rule = sc.rules[ri]
        for sample in (*rule.examples, *rule.counterexamples):
            text = "a line of noise\n" + sample + "\n" + "x " * 300 + sample + " tail"
            ends = sorted(
                e for i, _s, e in sc.prefilter.hits(text) if i >= sc._nfull and sc._anchored[i - sc._nfull] == ri
            )
            for a in (0, 5, len(text) // 2):
                expected = [m.span() for m in rule.pattern.finditer(text, a, len(text))]
                got = gated_matches(rule.pattern, text, a, len(text), ends=ends, least=least, most=most)
                assert [m.span() for m in got] == expected, (rule.id, sample)
