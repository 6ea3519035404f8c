"""Paths inside a root: the one resolver every part uses before it writes
into a container's rootfs, an image snapshot or a build context.

Pure apart from ``lstat``/``readlink``; imports nothing heavy, so the
builder's cached path and the runtime's hot path can both use it.
"""

import errno
import os
import stat


def secure_join(root: str, path: str) -> str:
    """``root/path`` with every symlink on the way resolved as if ``root`` were ``/``.

    Raises OSError(ELOOP) after 40 links, as the kernel does.

    >>> secure_join("/r", "/a/../b")
    '/r/b'
    """
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > 40:
                raise OSError(errno.ELOOP, f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)
