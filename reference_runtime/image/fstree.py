"""Removing directory trees of any depth, and the size limit on what a layer may expand to.

Layers and containers may hold trees deeper than Python's recursion limit
(1000) and paths longer than PATH_MAX (4096): ``shutil.rmtree`` recurses and
``os.*`` path calls fail on such trees, so an image or container that holds
one could not be removed, and staging left by it blocked every later writer.
:func:`remove_tree` walks with file descriptors (``openat``, ``unlinkat``)
and a loop, keeping one directory open at a time, so neither depth nor path
length matters. Imports only ``os``: ``refengine rm`` uses it on its hot path.

>>> parse_size("8G"), parse_size("512m"), parse_size("1024")
(8589934592, 536870912, 1024)
"""

from __future__ import annotations

import os
import re
import stat

from ..errors import StoreError

#: The environment variable that sets :func:`max_layer_size`.
MAX_LAYER_SIZE_ENV = "REFENGINE_MAX_LAYER_SIZE"
#: Default bound on a layer's expanded size: its uncompressed tar and the sum
#: of its files' sizes. It bounds the temporary space one load, import, build
#: step or commit may take, so a decompression bomb (a few MB of gzip that
#: expands to gigabytes) is refused once it passes the bound, before more is
#: written. Images with bigger layers need REFENGINE_MAX_LAYER_SIZE raised.
DEFAULT_MAX_LAYER_SIZE = 2 << 30

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def parse_size(text: str) -> int:
    """Bytes from ``1024``, ``64k``, ``512M``, ``8G``, ``1T`` (binary units; a trailing ``b``/``ib`` is allowed). Pure."""
    match = re.fullmatch(r"(\d+)\s*([kmgt]?)(?:i?b)?", text.strip().lower())
    if match is None or int(match[1]) <= 0:
        raise StoreError(f"invalid size {text!r}: use a positive number of bytes, optionally with K, M, G or T")
    return int(match[1]) * _UNITS[match[2]]


def max_layer_size() -> int:
    """The bound on a layer's expanded size: ``$REFENGINE_MAX_LAYER_SIZE`` or :data:`DEFAULT_MAX_LAYER_SIZE`."""
    text = os.environ.get(MAX_LAYER_SIZE_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_LAYER_SIZE
    try:
        return parse_size(text)
    except StoreError as exc:
        raise StoreError(f"{MAX_LAYER_SIZE_ENV}: {exc}") from None


def remove_tree(path: str | os.PathLike) -> None:
    """Delete *path* and everything under it, never following a symlink; any depth.

    A missing *path* is not an error. Raises OSError when something cannot be
    removed (or a directory is moved away while we are inside it).
    """
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    parent, name = os.path.split(os.path.abspath(path))
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    parent_fd = os.open(parent, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        _remove_dir_at(parent_fd, name)
    finally:
        os.close(parent_fd)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _open_dir_at(dir_fd: int, name: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        # a directory of mode 0 (an image may ship one) when we are not root: open it up
        os.chmod(name, 0o700, dir_fd=dir_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _first_subdir(fd: int) -> str | None:
    """Unlink every non-directory in the directory *fd*; the name of one subdirectory, if any is left."""
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            try:
                os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                pass
    return None


def _remove_dir_at(parent_fd: int, name: str) -> None:
    """Depth first, one open directory at a time: descend with openat, come back with ``..``
    (checked against the inode we left, so a concurrent rename cannot send us elsewhere)."""
    fd = _open_dir_at(parent_fd, name)
    names = [name]                  # the path from parent_fd down to fd, by component
    identities = [_identity(fd)]    # (st_dev, st_ino) of each directory on that path
    try:
        while True:
            child = _first_subdir(fd)
            if child is not None:
                child_fd = _open_dir_at(fd, child)
                os.close(fd)
                fd = child_fd
                names.append(child)
                identities.append(_identity(fd))
                continue
            if len(names) == 1:
                os.close(fd)
                fd = -1
                os.rmdir(name, dir_fd=parent_fd)
                return
            up = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            identities.pop()
            if _identity(fd) != identities[-1]:
                raise OSError(f"{names[-2]!r} was moved while its tree was being removed")
            os.rmdir(names.pop(), dir_fd=fd)
    finally:
        if fd >= 0:
            os.close(fd)
