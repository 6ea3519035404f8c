"""The content hash of COPY/ADD sources, the classic builder's cache key for
them (TarSum v1's fields): per entry its name, mode, uid, gid, size, type,
link target and the sha256 of its content; never its times. Owners are
normalised to 0:0 by the caller unless ``--chown`` asks for others (the
docker CLI sends the context with 0:0 owners).

Keys look like docker's: ``file:<hex>`` (one file), ``dir:<hex>`` (one
directory tree), ``multi:<hex>`` (several sources). Pure.

>>> e = Entry("a.txt", 0o644, 0, 0, 3, "0", "", "ab" * 32)
>>> source_key([("file", [e])]).startswith("file:")
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One tar-header-like record. ``kind``: tar typeflag (``0`` file, ``5`` dir,
    ``2`` symlink, ``3``/``4`` devices, ``6`` fifo); ``content``: sha256 hex of a
    regular file's bytes, else empty."""

    name: str
    mode: int
    uid: int
    gid: int
    size: int
    kind: str
    linkname: str
    content: str
    devmajor: int = 0
    devminor: int = 0


def entry_digest(e: Entry) -> str:
    """sha256 over the header fields (as TarSum v1 lists them, mtime excluded) and the content."""
    fields = (("name", e.name), ("mode", str(e.mode)), ("uid", str(e.uid)), ("gid", str(e.gid)),
              ("size", str(e.size)), ("typeflag", e.kind), ("linkname", e.linkname), ("uname", ""),
              ("gname", ""), ("devmajor", str(e.devmajor)), ("devminor", str(e.devminor)))
    h = hashlib.sha256()
    for key, value in fields:
        h.update(key.encode() + b"\x00" + value.encode("utf-8", "surrogateescape") + b"\x00")
    h.update(e.content.encode())
    return h.hexdigest()


def tree_digest(entries: list[Entry]) -> str:
    """The digest of a set of entries, independent of the order they were found in."""
    h = hashlib.sha256()
    for d in sorted(entry_digest(e) + e.name for e in entries):
        h.update(d.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def source_key(sources: list[tuple[str, list[Entry]]]) -> str:
    """``file:``/``dir:`` for one source (kind, entries), ``multi:`` over several."""
    keys = [f"{kind}:{tree_digest(entries)}" for kind, entries in sources]
    if len(keys) == 1:
        return keys[0]
    return "multi:" + hashlib.sha256(",".join(keys).encode()).hexdigest()
