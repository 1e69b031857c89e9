"""PROTOTYPE (not shipped): the sanitized text of a cached bench_search vault, as index builds see it."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
from bench_search import documents, text_of

from sessionseal import Vault

#: Words: runs of letters, digits and underscores, case-folded, at most 64 characters (longer
#: runs are base64 blobs, not words anyone types).
WORD = re.compile(r"\w{1,64}")


@dataclass
class Doc:
    sid: str
    title: str
    tag: str
    fields: list[tuple[str, str]]  # (role, text) of each message, the title as ("title", ...)


def doc_of(sid: str, body: bytes) -> Doc:
    d = orjson.loads(body)
    fields = [("title", d.get("title") or "")]
    fields += [(m.get("role", "?"), text_of(m.get("content"))) for m in d.get("messages", [])]
    tag = (d.get("tags") or ["?"])[0]
    return Doc(sid, d.get("title") or "", tag, fields)


def docs(v: Vault) -> Iterator[Doc]:
    for sid, body in documents(v):
        yield doc_of(sid, body)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


#: bytes.translate table: ASCII letters, digits and ``_`` and every non-ASCII byte (UTF-8 letters
#: stay whole) are word bytes; the rest become spaces.  ``translate`` + ``split`` run at C speed
#: (about 10x ``re.findall``); the price is ASCII-only case folding.
_TABLE = bytes(c if (chr(c).isalnum() and c < 128) or c == 95 or c >= 128 else 32 for c in range(256))


def words_fast(text: str) -> list[bytes]:
    return text.encode().lower().translate(_TABLE).split()
