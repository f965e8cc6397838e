"""Read ISC Kea configuration files: JSON with `//`, `/* */` and `#` comments.

Kea's own parser accepts these comments and real configurations (and ISC's examples in
kea-doc) are full of them; the standard json module does not. Comments are blanked out
(newlines kept) so json's error positions still point at the right line and column.
Kea's lexer also takes a number with no digit before its point (`"t1-percent": .5` in
kea-doc's all-keys.json); such a number gets its leading zero.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class KeaJsonError(ValueError):
    """A Kea configuration that is not JSON once comments are removed (one line)."""


def to_json(text: str) -> str:
    """``text`` as standard JSON: comments outside strings blanked (newlines kept), .5 -> 0.5."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif c == "#" or text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                line = text.count("\n", 0, i) + 1
                raise KeaJsonError(f"unterminated /* comment starting on line {line}")
            out.append("".join(ch if ch == "\n" else " " for ch in text[i : j + 2]))
            i = j + 2
        elif c == "." and text[i + 1 : i + 2].isdigit() and not text[i - 1 : i].isdigit():
            out.append("0.")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def loads(text: str, source: str = "<string>") -> Any:
    """Parse a Kea configuration text; KeaJsonError names the source, line and column."""
    try:
        return json.loads(to_json(text))
    except json.JSONDecodeError as e:
        raise KeaJsonError(f"{source}:{e.lineno}:{e.colno}: {e.msg}") from None


def load(path: str | Path) -> Any:
    """Parse a Kea configuration file (see loads)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise KeaJsonError(f"{path}: {e}") from None
    return loads(text, str(path))
