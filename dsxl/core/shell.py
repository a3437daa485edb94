"""Shell command lines that fit a terminal: a long command breaks between its words with a backslash
continuation, so that pasting the printed lines still runs the same command."""

from __future__ import annotations

import re

WORD = re.compile(r"""(?:[^\s'"]+|'[^']*'|"(?:[^"\\]|\\.)*")+""")  # a shell word as written, quotes kept


def continued(line: str, width: int, indent: str = "    ") -> list[str]:
    """``line`` as it is when it fits in ``width`` columns, else broken between words (never inside a quoted one)
    into lines ending in `` \\``; the continuations are indented by ``indent``. Words are kept exactly as written
    (``$HEAD`` stays a variable)."""
    if len(line) <= width:
        return [line]
    out: list[str] = []
    cur = ""
    for word in WORD.findall(line):
        if cur and len(cur) + 1 + len(word) > width - 2:
            out.append(cur + " \\")
            cur = indent + word
        else:
            cur = f"{cur} {word}" if cur else word
    return out + [cur]


__all__ = ["continued"]
