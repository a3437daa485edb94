"""Writing output files safely: check the destination before the work, never overwrite what may not be
overwritten, keep the target's permissions and hard links, write folders of files all at once.

Every output path (``dsxl build -o``, ``report -o``, ``plan --plot``) goes through here, so each rule holds once.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path


_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def check_target(path: Path, what: str, suffixes: tuple[str, ...]) -> Path:
    """Refuse, with one line naming the argument, a target that cannot or must not be written: the wrong suffix,
    a directory, a symlink, a read-only file, a missing or read-only folder. Returns the path."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(f"{what} must name a {' or '.join(suffixes)} file; got {str(path)!r}")
    if path.is_symlink():
        raise ValueError(f"{what}: {str(path)!r} is a symbolic link; give the file it points to")
    if path.is_dir():
        raise ValueError(f"{what}: {str(path)!r} is a folder; give a file name inside it")
    if path.exists() and (not os.access(path, os.W_OK) or not path.stat().st_mode & _WRITE_BITS):
        # the mode bits too: root may write anything, but a file marked read-only is meant to stay
        raise ValueError(f"{what}: {str(path)!r} is read-only; it is not replaced")
    check_folder(path.parent if str(path.parent) else Path("."), what)
    return path


def check_folder(folder: Path, what: str) -> Path:
    """Refuse a folder that is missing, is not a folder, or cannot be written."""
    folder = Path(folder)
    if not folder.exists():
        raise ValueError(f"{what}: the folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ValueError(f"{what}: {str(folder)!r} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or not folder.stat().st_mode & _WRITE_BITS:
        raise ValueError(f"{what}: the folder {str(folder)!r} is read-only")
    return folder


def write_bytes(path: Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically (temporary file in the same folder, then rename). An existing
    file keeps its permissions; one with other hard links is rewritten in place, so every link sees the new
    content."""
    path = Path(path)
    if path.exists() and path.stat().st_nlink > 1:
        with open(path, "r+b") as fh:  # rename would break the other links
            fh.write(data)
            fh.truncate()
        return path
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_folder(folder: Path, files: dict[str, str]) -> None:
    """Write ``files`` (name -> text) into ``folder`` all at once: a temporary folder beside it is filled first,
    then each file is moved in, so a failure leaves the folder as it was."""
    folder = check_folder(Path(folder), "-o")
    stage = Path(tempfile.mkdtemp(prefix=".dsxl-", dir=folder))
    try:
        for name, text in files.items():
            target = folder / name
            if target.is_dir() or (target.exists() and (not os.access(target, os.W_OK)
                                                         or not target.stat().st_mode & _WRITE_BITS)):
                raise ValueError(f"-o: {str(target)!r} exists and cannot be replaced")
            (stage / name).write_text(text, encoding="utf-8")
        for name in files:
            os.replace(stage / name, folder / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


__all__ = ["check_folder", "check_target", "write_bytes", "write_folder"]
