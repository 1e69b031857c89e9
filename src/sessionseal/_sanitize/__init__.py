"""Secret redaction: the only gate between a session and the disk.

Every string of a session passes through :meth:`Sanitizer.sanitize_tree` before it is
serialized.  A match is replaced by a typed placeholder
``[REDACTED:<rule-id>:<fingerprint>]`` where the fingerprint is the first 8 hex digits
of HMAC-SHA256(fingerprint key, secret): the same secret always maps to the same
placeholder within a vault, and the placeholder reveals nothing about the value.
Only counts per rule leave this module, never values.

This is the minimal built-in rule set of issue #2; the full catalogue is issue #3.
The interface (``Sanitizer``, ``sanitize_text``, ``sanitize_tree``) is stable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = ["JSONValue", "SanitizeResult", "Sanitizer"]

JSONValue: TypeAlias = "None | bool | int | float | str | list[JSONValue] | dict[str, JSONValue]"

#: Placeholders already in the text are left alone, so sanitizing twice is a no-op.
_PLACEHOLDER: Final = re.compile(r"\[REDACTED:[a-z0-9-]+:[0-9a-f]{8}\]")

# (rule id, pattern, group holding the secret).  Group 0 means the whole match.
_RULES: Final[tuple[tuple[str, re.Pattern[str], int], ...]] = (
    (
        "private-key",
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:(?!-----BEGIN)[\s\S]){0,16384}?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|(?=\n\s*\n)|$)"
        ),
        0,
    ),
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b"), 0),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"), 0),
    ("anthropic-api-key", re.compile(r"\bsk-ant-(?:api|admin)\d\d-[A-Za-z0-9_\-]{80,120}\b"), 0),
    ("openai-api-key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,200}T3BlbkFJ[A-Za-z0-9_\-]{20,200}\b"), 0),
    ("slack-token", re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,250}\b"), 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), 0),
    ("url-credentials", re.compile(r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@\"']{1,128}:([^\s@/\"']{3,256})@"), 1),
    ("authorization-header", re.compile(r"(?i)\b(?:authorization|proxy-authorization)\s*[:=]\s*\"?(?:bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{8,})"), 1),
    (
        "generic-secret-assignment",
        re.compile(
            r"(?i)\b[A-Za-z0-9_.-]{0,40}(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)"
            r"[A-Za-z0-9_.-]{0,20}[\"']?\s*[:=]\s*[\"']?([^\s\"',;]{8,256})"
        ),
        1,
    ),
)

#: Values that look like secrets but are documented examples or placeholders.
_ALLOW: Final = re.compile(
    r"(?i)^(?:AKIAIOSFODNN7EXAMPLE|wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY|\$\{?[A-Z_][A-Z0-9_]*\}?"
    r"|<[^>]*>|x{4,}|\*{3,}|\.{3,}|changeme|your[_-].*|example.*|redacted.*|placeholder.*)$"
)

#: Environment variable names whose values are secrets whatever they look like.
_SECRET_NAME: Final = re.compile(
    r"(?i)(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization|auth[_-]?token)"
)


@dataclass(frozen=True, slots=True)
class SanitizeResult:
    """A sanitized text and how many matches each rule replaced."""

    text: str
    counts: dict[str, int]


class Sanitizer:
    """Replace secrets with typed, keyed placeholders.

    :param fingerprint_key: key for the placeholder fingerprints; a vault passes a key
        derived from its vault secret.  Without one, a random per-instance key is used.
    """

    def __init__(self, fingerprint_key: bytes | None = None) -> None:
        self._key = fingerprint_key if fingerprint_key is not None else os.urandom(32)

    def _placeholder(self, rule_id: str, secret: str) -> str:
        digest = hmac.new(self._key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return f"[REDACTED:{rule_id}:{digest[:8]}]"

    def sanitize_text(self, text: str) -> SanitizeResult:
        """Return *text* with every secret replaced, and per-rule counts."""
        counts: Counter[str] = Counter()
        for rule_id, pattern, group in _RULES:
            if not pattern.search(text):
                continue
            text = self._apply(pattern, rule_id, group, text, counts)
        return SanitizeResult(text, dict(counts))

    def _apply(self, pattern: re.Pattern[str], rule_id: str, group: int, text: str, counts: Counter[str]) -> str:
        out: list[str] = []
        pos = 0
        taken = [m.span() for m in _PLACEHOLDER.finditer(text)]
        for m in pattern.finditer(text):
            start, end = m.span(group)
            if start < 0 or any(a < end and start < b for a, b in taken):
                continue
            secret = text[start:end]
            if _ALLOW.match(secret) or _PLACEHOLDER.fullmatch(secret) or "[REDACTED:" in secret:
                continue
            out.append(text[pos:start])
            out.append(self._placeholder(rule_id, secret))
            counts[rule_id] += 1
            pos = end
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def sanitize_tree(self, value: JSONValue) -> tuple[JSONValue, dict[str, int]]:
        """Sanitize every string in a JSON-shaped tree; the shape is preserved.

        Values under keys whose name says secret (``GITHUB_TOKEN``, ``password``) are
        replaced whole, whatever they look like.
        """
        counts: Counter[str] = Counter()
        return self._walk(value, counts, secret_name=False), dict(counts)

    def _walk(self, value: JSONValue, counts: Counter[str], *, secret_name: bool) -> JSONValue:
        if isinstance(value, str):
            if secret_name and value and not _ALLOW.match(value) and not _PLACEHOLDER.fullmatch(value):
                counts["secret-named-value"] += 1
                return self._placeholder("secret-named-value", value)
            result = self.sanitize_text(value)
            counts.update(result.counts)
            return result.text
        if isinstance(value, dict):
            return {
                k: self._walk(v, counts, secret_name=isinstance(v, str) and bool(_SECRET_NAME.search(k)))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v, counts, secret_name=False) for v in value]
        return value
