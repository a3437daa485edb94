"""Reading files a user names (config.json, a calibration profile, a runs CSV): one line naming the file for
anything that is not a readable text file of sensible size, never a traceback or a read that never ends."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

LARGEST_BYTES = 64 * 2 ** 20  # far above any config.json, profile or runs file; a device or a log is refused


def read_text(path: str | Path, what: str) -> str:
    """The text of a regular file (UTF-8, a byte-order mark allowed), or ValueError naming ``what`` and the path."""
    p = Path(path)
    try:
        info = p.stat()
    except OSError:
        raise ValueError(f"{what} {str(p)!r} does not exist") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{what} {str(p)!r} is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what} {str(p)!r} is not a regular file")
    if info.st_size > LARGEST_BYTES:
        raise ValueError(f"{what} {str(p)!r} is {info.st_size / 2 ** 20:,.0f} MiB, more than such a file can be")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{what} {str(p)!r} is not text") from None
    except OSError as exc:
        raise ValueError(f"{what} {str(p)!r}: cannot read it ({exc.strerror or exc})") from None


def read_json(path: str | Path, what: str) -> Any:
    """The JSON value of a file, with the same one-line refusals plus JSON's own."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise ValueError(f"{what} {str(path)!r} nests too deeply to be a {what}") from None
    except ValueError:  # Python refuses integers of more than 4,300 digits
        raise ValueError(f"{what} {str(path)!r} holds a number too long for a {what}") from None
