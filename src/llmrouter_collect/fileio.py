"""Atomic file replacement, the one way every output of `collect` is rewritten.

A reader (or a crash) sees either the old file whole or the new file whole, never half of one:
the new content goes to a temp file beside the target (a name nobody can predict, created with O_EXCL,
so it never follows a planted symlink), is fsynced, then renamed over the target, and the directory is fsynced.
A target that is a symlink is written through: the file it points to is replaced and the link stays a link.
On any failure the temp file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import (os.umask sets while it reads; not while other threads create files)


def real_path(path: Path) -> Path:
    """The path with every symlink resolved (the file that is really written), also for a file not yet there."""
    return Path(os.path.realpath(path))


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a fresh temp path beside `path` to write the new content to (by any writer that takes a path);
    on a clean exit it is fsynced and renamed over `path`. Raises OSError as the file system does."""
    target = real_path(path)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a results file is as readable as any other
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Yield a binary handle whose content replaces `path` atomically on a clean exit (see the module doc)."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically. Raises OSError as the file system does."""
    with atomic_open(path) as handle:
        handle.write(data)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (best effort: some file systems refuse to fsync a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
