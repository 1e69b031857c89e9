"""The characters of stored text that must not reach a reader raw (issue 18): shared by the
terminal's rendering (``cli/_terminal.py``) and the HTML pages' (``_html.py``).

* C0 controls but newline and tab, DEL, and C1 controls (U+0080 to U+009F);
* invisible format characters (Unicode category Cf: bidi embeddings, overrides and isolates,
  zero-width space, word joiner, BOM, tag characters, soft hyphen...), but for the zero-width
  joiner and non-joiner that emoji and several scripts need;
* line and paragraph separators (U+2028, U+2029) and lone surrogates.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["CONTROLS", "FORMAT", "UNSAFE", "code"]

#: C0 but newline and tab, DEL, C1.
CONTROLS: Final = "\x00-\x08\x0b-\x1f\x7f-\x9f"
#: Category Cf (Unicode 15.1) but ZWNJ and ZWJ (U+200C, U+200D); Zl and Zp; surrogates.  The
#: test checks this against the running Python's unicodedata.
FORMAT: Final = (
    "\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
#: A CRLF (a line end) or one character of the lists above.
UNSAFE: Final = re.compile(f"\r\n|[{CONTROLS}{FORMAT}]")
_NAMED: Final = {"\r": "\\r", "\n": "\\n"}


def code(ch: str) -> str:
    """The escape a reviewer recognises for *ch*: ``\\r``, ``\\x1b``, ``\\u202e``, ``\\U000e0041``."""
    if ch in _NAMED:
        return _NAMED[ch]
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"
