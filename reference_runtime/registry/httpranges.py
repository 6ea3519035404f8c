"""HTTP byte ranges of the distribution API, pure: upload chunks' ``Content-Range``,
the ``Range`` answered for upload sessions, and blob ``Range`` requests.

>>> parse_content_range("0-1023")
(0, 1023)
>>> upload_range_header(1024)
'0-1023'
"""
from __future__ import annotations

import re

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")
_BYTES_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeError(ValueError):
    """A malformed range header."""


class Unsatisfiable(ValueError):
    """A well-formed range that lies outside the blob."""


def parse_content_range(value: str) -> tuple[int, int]:
    """An upload chunk's inclusive ``start-end`` (distribution also accepts a ``bytes `` prefix)."""
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        raise RangeError(f"malformed Content-Range {value!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RangeError(f"Content-Range {value!r} ends before it starts")
    return start, end


def upload_range_header(size: int) -> str:
    """The session's ``Range``: inclusive offset of the last byte received.

    distribution answers ``0-0`` for an empty session too; clients read the
    end only after they sent bytes, so we do the same.
    """
    return f"0-{max(size - 1, 0)}"


def parse_blob_range(value: str, size: int) -> tuple[int, int] | None:
    """A blob GET's single byte range as inclusive (start, end), clipped to the blob.

    Returns None for headers we ignore (other units, several ranges: RFC 9110
    lets a server answer those with the whole representation). Raises
    :class:`Unsatisfiable` for ranges outside the blob (416).
    """
    value = value.strip()
    if not value.startswith("bytes=") or "," in value:
        return None
    match = _BYTES_RANGE.fullmatch(value)
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable(value)
        return max(size - length, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise Unsatisfiable(value)
    return start, min(end, size - 1)
