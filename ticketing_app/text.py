"""What counts as a control character in text that people (or the AI) send: one definition, with variants.

A control character is one of C0 (U+0000-U+001F) or DEL (U+007F). Some readers also refuse the C1 range
(U+0080-U+009F), the Unicode line and paragraph separators, or invisible formatting characters, and some keep
tabs and line breaks: each asks `control_pattern` for its variant instead of writing its own character class.
"""

from __future__ import annotations

import re

# Zero-width characters, direction marks and overrides, and the byte-order mark: invisible, and able to hide
# or reorder text (U+200B-U+200F, U+202A-U+202E, U+FEFF).
INVISIBLE = r"\u200b-\u200f\u202a-\u202e\ufeff"
# Word joiner and the invisible operators (U+2060-U+2064).
INVISIBLE_OPERATORS = r"\u2060-\u2064"


def control_class(*, keep: str = "", c1: bool = False, line_separators: bool = False, extra: str = "") -> str:
    """A regex character class of the control characters, except those in `keep` (e.g. "\\t\\n").

    `c1` adds U+0080-U+009F, `line_separators` U+2028 and U+2029, `extra` more class ranges (INVISIBLE ...).
    """
    chars = "".join(f"\\x{code:02x}" for code in range(0x20) if chr(code) not in keep) + "\\x7f"
    if c1:
        chars += "\\x80-\\x9f"
    if line_separators:
        chars += "\\u2028\\u2029"
    return f"[{chars}{extra}]"


def control_pattern(**variant: bool | str) -> re.Pattern[str]:
    """`control_class(**variant)` compiled."""
    return re.compile(control_class(**variant))  # type: ignore[arg-type]
