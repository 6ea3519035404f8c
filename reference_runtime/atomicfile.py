"""Crash-safe file replacement, shared by the image store and refregistry.

A reader sees the old file or the new one, never a torn one; after return
the new file and its directory entry are on disk. Temporary files are
``.tmp-<random>`` beside their target, so listings that skip dot names never
show them. Imports only ``os``: the store uses this on refengine's hot path.
"""

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync of the directory.
    ``mode`` (before the umask) is the temporary file's from its creation, so a
    secret (``0o600``) is never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{os.urandom(8).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
