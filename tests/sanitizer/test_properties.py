"""Property tests: idempotence, structure preservation, no crash, secrets never survive."""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sessionseal._sanitize import PLACEHOLDER_RE, Sanitizer

from ._shape_of import same_shape
from .conftest import engines, sanitizer_for

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text made of the characters secrets and their contexts are made of.
ALPHABET = string.ascii_letters + string.digits + " \n\t=:\"'-_./+@\\{}[],;$<>*#?!%&"
FRAGMENTS = st.sampled_from(
    [
        "password",
        "PASSWORD=",
        "token: ",
        "api_key = ",
        "Bearer ",
        "Authorization: ",
        "://",
        "@",
        "-----BEGIN ",
        "PRIVATE KEY-----",
        "-----END ",
        "\\n",
        "ghp_",
        "sk-",
        "AKIA",
        "eyJ",
        "xoxb-",
        "[REDACTED:",
        ":abcdef12]",
        "[REDACTED:password-in-prose]",
        "]",
        "secret",
        "Cookie: a=",
        "base64 -d",
        "data:\n  K: ",
        "mysql -p",
        "--token ",
        "is ",
        '"',
        "'",
    ]
)
TEXT = st.lists(st.one_of(st.text(ALPHABET, max_size=24), FRAGMENTS), max_size=30).map("".join)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["password", "token", "id", "note", "api_key", "token_count", "x"]) | TEXT,
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
TOKEN = st.text(string.ascii_letters + string.digits, min_size=36, max_size=36).filter(
    lambda t: sum(c.isdigit() for c in t) >= 2 and sum(c.isalpha() for c in t) >= 8 and "xxxx" not in t.lower()
)


def _engines() -> st.SearchStrategy[Sanitizer]:
    return st.sampled_from(engines()).map(sanitizer_for)


@SETTINGS
@given(engine=st.sampled_from(engines()), text=TEXT)
# Found by hypothesis: the placeholder's own rule id read as a secret *name* on the second pass.
# (The examples name an engine, not a built sanitizer: collection then builds none.)
@example(engine=engines()[0], text='MYSQL -p1"=011:')
def test_sanitize_is_idempotent(engine: str, text: str) -> None:
    san = sanitizer_for(engine)
    once = san.sanitize_text(text)
    twice = san.sanitize_text(once.text)
    assert twice.text == once.text
    assert twice.counts == {}


@SETTINGS
@given(text=TEXT)
def test_engines_agree(text: str) -> None:
    outs = {e: sanitizer_for(e).sanitize_text(text) for e in engines()}
    assert len({o.text for o in outs.values()}) == 1


@SETTINGS
@given(san=_engines(), text=TEXT)
def test_counts_match_placeholders(san: Sanitizer, text: str) -> None:
    result = san.sanitize_text(text)
    before = len(PLACEHOLDER_RE.findall(text))
    assert len(PLACEHOLDER_RE.findall(result.text)) == before + sum(result.counts.values())


@SETTINGS
@given(engine=st.sampled_from(engines()), doc=JSON)
@example(engine=engines()[0], doc={'MYSQL -p1"=011:': None})
def test_tree_keeps_shape_and_stays_json(engine: str, doc: object) -> None:
    san = sanitizer_for(engine)
    clean, _ = san.sanitize_tree(doc)  # type: ignore[arg-type]
    assert same_shape(doc, clean)
    assert json.loads(json.dumps(clean)) == clean
    again, counts = san.sanitize_tree(clean)
    assert again == clean and counts == {}


@SETTINGS
@given(san=_engines(), before=TEXT, after=TEXT, token=TOKEN)
def test_a_token_never_survives_in_any_context(san: Sanitizer, before: str, after: str, token: str) -> None:
    secret = "ghp_" + token
    result = san.sanitize_text(f"{before} {secret} {after}")
    assert token not in result.text


@SETTINGS
@given(san=_engines(), text=TEXT)
def test_json_escaped_text_stays_valid_json(san: Sanitizer, text: str) -> None:
    line = json.dumps({"content": text})
    out = san.sanitize_text(line).text
    assert isinstance(json.loads(out)["content"], str)


# Pieces of Kubernetes data maps and .pgpass lines, with the line breaks between them.
LINE_PIECES = ["\n", "\r\n", "  ", "\t", "data:", "kind: Secret", "key:", " c2VjcmV0cGFzc3dvcmQ=", "=", "x:1:db:u:pw"]
LINE_TEXT = st.lists(st.sampled_from(LINE_PIECES), max_size=40).map("".join)


@given(LINE_TEXT, st.integers(0, 200), st.integers(0, 200))
@SETTINGS
def test_line_anchored_rules_are_tried_at_line_starts_only_with_the_same_matches(text: str, a: int, b: int) -> None:
    from sessionseal._sanitize._shape import finditer_lines, starts_lines

    rules = [r for r in sanitizer_for(engines()[0]).rules if r.id in ("k8s-secret-data", "pgpass-password")]
    assert rules and all(starts_lines(r.regex) for r in rules)
    a, b = min(a, b, len(text)), min(max(a, b), len(text))
    for rule in rules:
        fast = [m.span() for m in finditer_lines(rule.pattern, text, a, b)]
        assert fast == [m.span() for m in rule.pattern.finditer(text, a, b)]
