# ruff: noqa: PLR0917 - the value checks share one positional signature, dispatched in the hot loop
"""The named value checks of the catalogue's rules (``check = "..."``, docs/sanitizer.md, "Design").

A rule's regex says where a candidate secret is; its check says whether the value there is
one: the name it is assigned to, whether it is a literal or a reference, a password's
structure, what a base64 blob decodes to.  Each check is a function of the match, the text
and the value; the decision lists on names and values are in :mod:`._checks`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, Protocol

from . import _checks as checks
from ._rules import Rule

__all__ = ["CHECKS", "LATE_CHECKS", "NAME_CHARS", "STRIPPED_CHECKS", "Judge", "name_of"]

#: The characters of a variable name (a name is extended backwards over them).
NAME_CHARS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-$"


_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_FILENAME: Final = re.compile(r"(?:^|[/\\])[\w.\-]+\.[A-Za-z]{1,5}$")
#: A key of a cache or a store made of words and numbers (``user:4821:profile``, ``report/2024/q3``).
_KEY_PATH: Final = re.compile(r"(?:[A-Za-z_]+|[0-9]+)(?:[:/.#|-](?:[A-Za-z_]+|[0-9]+))+")


class Judge(Protocol):
    """What a check needs of the scanner: whether a decoded text holds a secret itself."""

    def has_secret(self, text: str, depth: int = 1) -> bool: ...


def name_of(m: re.Match[str], text: str) -> str:
    """The full name of an assignment: the regex's ``name`` group extended backwards over name characters."""
    try:
        s = m.start("name")
    except IndexError:  # the rule's regex has no name group
        return ""
    if s < 0:
        return ""
    lo = s - 64 if s > 64 else 0
    i = lo + len(text[lo:s].rstrip(NAME_CHARS))  # back over name characters, 64 at most
    if i > 0 and text[i - 1] == "\\" and i < s and text[i] in "nrtbf":
        i += 1  # "\npassword" in JSON-escaped text: the n belongs to the escape
    return text[i : m.end("name")].strip(".-$")


def _check_assignment(sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int) -> bool:
    name = name_of(m, text)
    if name and not checks.is_secret_name(name):
        return False
    return checks.looks_like_secret_value(value, quoted=quoted, min_length=max(4, rule.min_length))


def _check_key_assignment(
    sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int
) -> bool:
    name = name_of(m, text)
    if not name or not (checks.is_key_name(name) or name.lower() == "key"):
        return False
    if checks.is_secret_name(name):  # API_KEY, ENCRYPTION_KEY, STRIPE_KEY: any literal value
        return checks.looks_like_secret_value(value, quoted=quoted, min_length=max(4, rule.min_length))
    # A cache or lookup key made of words and numbers (``user:4821:profile``) is no secret either.
    if len(value) < 16 or any(c.isspace() for c in value) or _UUID.match(value) or _FILENAME.search(value):
        return False
    if _KEY_PATH.fullmatch(value) or not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    if checks.shannon_entropy(value) < (rule.entropy or 3.0):
        return False
    return checks.looks_like_secret_value(value, quoted=quoted, min_length=16)


def _check_query(sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int) -> bool:
    s = m.start("name")
    i = s
    lo = max(0, s - 40)
    while i > lo and (text[i - 1].isalnum() or text[i - 1] in "_.-"):
        i -= 1
    if i == 0 or text[i - 1] not in "?&":
        return False
    name = text[i : m.end("name")]
    words = checks.split_name(name)
    if not (checks.is_secret_name(name) or (words and words[-1] in {"sig", "signature"})):
        return False
    return checks.looks_like_secret_value(value, quoted=True, min_length=max(6, rule.min_length))


def _check_password(sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int) -> bool:
    if "name" in m.re.groupindex and m.start("name") >= 0 and not checks.is_secret_name(name_of(m, text)):
        return False
    return checks.looks_like_password(value, min_length=max(rule.min_length, 4 if quoted else 6))


def _check_url_password(
    sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int
) -> bool:
    return not value.startswith(("$", "%(", "{", "<")) and value.lower() not in {"password", "pass", "passwd"}


def _check_user_password_b64(
    sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int
) -> bool:
    return checks.decoded_user_password(value)


def _check_base64_secret(
    sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int
) -> bool:
    if depth > 0:
        return False
    decoded = checks.decode_base64_text(value)
    if decoded is None:
        return False
    if "PRIVATE KEY" in decoded or checks.decoded_user_password(value):
        return True
    return sc.has_secret(decoded, depth + 1)


def _check_base64_private_key(
    sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int
) -> bool:
    decoded = checks.decode_base64_text(value)
    return decoded is not None and "PRIVATE KEY" in decoded


def _check_random_value(
    sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int
) -> bool:
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    return checks.looks_like_secret_value(value, quoted=False, min_length=max(8, rule.min_length))


def _check_bearer(sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int) -> bool:
    if len(value) < 16 or checks.shannon_entropy(value) < 3.0:
        return False
    return any(c.isdigit() for c in value) or (any(c.isupper() for c in value) and any(c.islower() for c in value))


def _check_flag(sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int) -> bool:
    s = m.start("name")
    i = s
    lo = max(0, s - 40)
    while i > lo and (text[i - 1].isalnum() or text[i - 1] == "-"):
        i -= 1
    run = text[i:s]
    if not run.startswith("-") or (i > 0 and text[i - 1] not in " \t\"'=([{\n"):
        return False
    name = run.lstrip("-") + m.group("name")
    if not checks.is_secret_name(name):
        return False
    if value.startswith(_PASS_SOURCES):
        return False  # openssl's -pass file:PATH / env:VAR / fd:N name where the password is
    return checks.looks_like_secret_value(value, quoted=quoted, min_length=max(4, rule.min_length))


_PASS_SOURCES: Final = ("file:", "env:", "fd:")


def _check_encoded_query(
    sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int
) -> bool:
    """A secret-named parameter of a percent-encoded query (``%3Fapi_key%3D…``, or encoded
    twice, ``%253F…%253D``): the name runs back to the escape of ``?``, ``&`` or ``#`` before it."""
    s = m.start("name")
    i = s
    lo = max(0, s - 40)
    while i > lo and (text[i - 1].isalnum() or text[i - 1] in "_.-"):
        i -= 1
    if i < 1 or text[i - 1] != "%":
        return False
    escape = text[i : i + 4].upper()
    if escape[:2] == "25" and escape[2:] in {"3F", "26", "23"}:  # encoded twice: %253F
        i += 2
    elif escape[:2] not in {"3F", "26", "23"}:
        return False
    name = text[i + 2 : m.end("name")]
    if not checks.is_secret_name(name):
        return False
    return checks.looks_like_secret_value(value, quoted=True, min_length=max(6, rule.min_length))


def _check_define(sc: Judge, rule: Rule, m: re.Match[str], text: str, value: str, quoted: bool, depth: int) -> bool:
    """A constant defined with a secret name (``DB_PASSWORD``, ``AUTH_SALT``), or any ``*_KEY``
    constant with a long random value (WordPress's ``LOGGED_IN_KEY``, ``NONCE_KEY``)."""
    if checks.is_secret_name(name_of(m, text)):
        return _check_assignment(sc, rule, m, text, value, quoted, depth)
    return _check_key_assignment(sc, rule, m, text, value, quoted, depth)


#: Checks that run after the allowlist and placeholder tests (they do not test placeholders themselves).
LATE_CHECKS: Final = frozenset({"url-password", "bearer"})
#: Checks whose unquoted values lose trailing punctuation (``abc123),`` -> ``abc123``).
STRIPPED_CHECKS: Final = frozenset({"assignment", "key-assignment", "password", "flag", "query", "define"})

_Check = Callable[[Judge, Rule, "re.Match[str]", str, str, bool, int], bool]

CHECKS: Final[dict[str, _Check]] = {
    "assignment": _check_assignment,
    "key-assignment": _check_key_assignment,
    "password": _check_password,
    "url-password": _check_url_password,
    "user-password-b64": _check_user_password_b64,
    "base64-secret": _check_base64_secret,
    "bearer": _check_bearer,
    "flag": _check_flag,
    "query": _check_query,
    "base64-private-key": _check_base64_private_key,
    "random-value": _check_random_value,
    "define": _check_define,
    "encoded-query": _check_encoded_query,
}
