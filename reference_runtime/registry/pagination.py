"""Pagination of tag lists and ``_catalog`` (``n``, ``last``, ``Link``), pure.

>>> page(["a", "b", "c"], n=2, last=None)
(['a', 'b'], 'b')
"""
from __future__ import annotations

from urllib.parse import urlencode


class PaginationError(ValueError):
    """``n`` is not a non-negative integer."""


def parse_n(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except ValueError:
        raise PaginationError(f"n={value!r} is not an integer") from None
    if n < 0:
        raise PaginationError(f"n={value!r} is negative")
    return n


def page(sorted_items: list[str], *, n: int | None, last: str | None) -> tuple[list[str], str | None]:
    """The items after ``last`` (exclusive), at most ``n`` of them, and the
    ``last`` value of the next page (None when nothing follows)."""
    items = [item for item in sorted_items if last is None or item > last]
    if n is None or len(items) <= n:
        return items, None
    shown = items[:n]
    return shown, (shown[-1] if shown else None)


def link_header(path: str, *, n: int, next_last: str) -> str:
    """``Link: <path?n=..&last=..>; rel="next"`` as the spec shows it."""
    return f'<{path}?{urlencode({"n": n, "last": next_last})}>; rel="next"'
