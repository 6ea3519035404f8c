"""The one way compose reads a file a user names (Compose files, ``.env``,
``--env-file``, ``env_file:``): UTF-8 text of a regular file, bounded.

A FIFO, ``/dev/zero`` or a directory named by a file would otherwise hang the
command or fill memory; a 50 MB "Compose file" would keep the YAML parser busy
for minutes. The one exception is the process's own standard input (``-f -``,
``-f /dev/stdin``): the user chose to pipe it, and it is still bounded.
"""

from __future__ import annotations

import os
import stat
import sys

from .errors import ComposeError

#: Far above any real Compose or dotenv file; parsing this much YAML already takes ~20 s.
MAX_BYTES = 4 << 20


def read_text(path: str, limit: int = MAX_BYTES) -> str:
    """The text of ``path`` (``-``: standard input). OSError as ``open`` raises it (the
    caller words "not found"); :class:`ComposeError` for what is not a bounded UTF-8 file."""
    if path == "-":
        return _decode(sys.stdin.buffer.read(limit + 1), "-", limit)
    # O_NONBLOCK: opening a FIFO without a writer must not wait for one
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "is a directory", path)
        if not stat.S_ISREG(mode) and not _is_stdin(fd):
            raise ComposeError(f"cannot read {path}: not a regular file")
        os.set_blocking(fd, True)
        return _decode(f.read(limit + 1), path, limit)


def _is_stdin(fd: int) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.fstat(0))
    except OSError:
        return False


def _decode(data: bytes, source: str, limit: int) -> str:
    if len(data) > limit:
        raise ComposeError(f"cannot read {source}: larger than {limit >> 20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ComposeError(f"cannot read {source}: invalid UTF-8 at byte {exc.start}") from None
