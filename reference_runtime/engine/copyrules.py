"""``docker cp``'s SRC_PATH/DEST_PATH table, with dockerd's and the CLI's
messages for its error conditions. Pure: the caller looks at the file
systems (the host's, or the container's from inside its root).

>>> destination(src_is_dir=True, dest=Dest(exists=True, is_dir=True), dest_path="/out")
'into'
>>> destination(src_is_dir=False, dest=Dest(exists=False, parent_is_dir=True), dest_path="/out/new.txt")
'as'
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ContainerError


@dataclass(frozen=True)
class Dest:
    """What DEST_PATH is, seen where the copy lands (links followed)."""

    exists: bool
    is_dir: bool = False
    parent_is_dir: bool = True


def probe(path: str) -> Dest:
    """``path`` on this file system (for the container: called inside its root)."""
    parent = os.path.dirname(path.rstrip("/")) or "/"
    return Dest(os.path.exists(path), os.path.isdir(path), os.path.isdir(parent))


def destination(*, src_is_dir: bool, dest: Dest, dest_path: str) -> str:
    """``"into"``: the copy goes into DEST_PATH under the source's name (or, for
    SRC_PATH ending in ``/.``, as its content); ``"as"``: DEST_PATH is the copy's
    own name (created, or a file overwritten). The documented error
    conditions raise :class:`ContainerError` with docker's wording."""
    if dest.exists and dest.is_dir:
        return "into"
    if dest.exists:
        if src_is_dir:
            raise ContainerError("cannot copy directory")  # a directory over a file
        return "as"
    if dest_path.endswith("/"):
        raise ContainerError("no such directory")  # "the destination directory must exist"
    if not dest.parent_is_dir:
        parent = os.path.dirname(dest_path.rstrip("/")) or "/"
        raise ContainerError(f'invalid output path: directory "{parent}" does not exist')
    return "as"


def renamed(name: str, new_name: str) -> str:
    """A tar member's name when the copy's top entry takes ``new_name``
    ("src/sub/y" -> "new/sub/y"; "./x" of a ``/.`` copy -> "new/x").

    >>> renamed("src/sub/y", "new"), renamed(".", "new"), renamed("./x", "new")
    ('new/sub/y', 'new', 'new/x')
    """
    _, _, rest = name.partition("/")
    return new_name + ("/" + rest if rest else "")
