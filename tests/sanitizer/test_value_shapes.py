"""The generic assignment prefilters (``generic-secret-assignment``, ``key-assignment``) also
leave to Hyperscan the values their checks always reject: an unquoted identifier without
digits (``token = fallback_token``, ``password: str``) and a call (``token = get_token(s)``,
``key = digest(key)``).  Only what the checks would reject is skipped: every engine finds
the same secrets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionseal._sanitize import available_engines

from .conftest import engines, sanitizer_for

GENERIC = ("generic-secret-assignment", "key-assignment")
REJECTED = [
    "token = get_token(session)",
    "    token = fallback_token\n",
    "key = digest_cons(key).digest()",
    "passwd = HTTPPasswordMgr()",
    "api_key: str\n",
    "self.secret_key = derive_key[0]",
    "const [token, setToken] = useState(null);",
]


def _shape_reports(text: str) -> list[str]:
    """The generic rules whose Hyperscan pattern matches somewhere in *text*."""
    sc = sanitizer_for("hyperscan")._scanner
    out = []
    for i, _s, _e in sc.prefilter.hits(text):
        if i >= sc._nfull and sc.rules[sc._anchored[i - sc._nfull]].id in GENERIC:
            out.append(sc.rules[sc._anchored[i - sc._nfull]].id)
    return out


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan is not installed")
@pytest.mark.parametrize("text", REJECTED)
def test_values_the_checks_reject_never_reach_python(text: str) -> None:
    assert _shape_reports(text) == []
    for engine in engines():
        assert sanitizer_for(engine).find(text) == []


@pytest.mark.skipif("hyperscan" not in available_engines(), reason="hyperscan is not installed")
@pytest.mark.parametrize(
    "text",
    [
        "token = Zq8mW3xP1nB6",  # digits
        "token = ab1c",  # a digit after two letters
        "token = a-bc",  # a symbol after one letter
        "password = _______Zq8mW3xP1nB6",
        "password = correct_horse_battery_staple_x",  # 24 letters and more
        "password = пароль-Zq8mW3",  # non-ASCII
        "password = Tr0ub4dor&3x",
        "token = x.y.Z9Q",  # a dotted value with a digit and a capital
        "secret = abc:",  # ends the text
        "secret = abc.",
    ],
)
def test_values_the_checks_may_accept_are_reported(text: str) -> None:
    assert _shape_reports(text) != []


_VALUE = st.text(alphabet=st.sampled_from(list("aZ_x9.:([)]<>-&,;$/'\" \u00e9")), max_size=30)
_NAME = st.sampled_from(["token", "password", "API_KEY", "key", "signing_key", "setToken]", "auth"])
_SEP = st.sampled_from([" = ", "=", ": ", ":=", " => ", '": ', '\\": '])


@settings(max_examples=400, deadline=None)
@given(_NAME, _SEP, _VALUE, st.sampled_from(["", "\n", " # note", ",x"]))
def test_engines_agree_on_generated_assignments(name: str, sep: str, value: str, tail: str) -> None:
    text = name + sep + value + tail
    found = {e: sanitizer_for(e).find(text) for e in engines()}
    reference = sanitizer_for("python").find(text)
    assert all(f == reference for f in found.values()), (text, found)
