"""Hypothesis strategies for registry names and tags, valid and invalid.

Importable for anyone's own tests; the grammar is the OCI distribution-spec's:

- repository name: ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*``
- tag: ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``

Invalid values stay usable as one URL path segment (no ``/`` in tags, no
``.``/``..`` segments, no ``?``, ``#``, ``@`` or ``:``) so that a registry
sees exactly the bad name, not a different route.

>>> from hypothesis import find
>>> NAME_RE.fullmatch(find(repository_names(), lambda n: "/" in n)) is not None
True
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

NAME_RE = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
#: The spec: the whole name (slashes included) is shorter than 256 characters.
MAX_NAME = 255

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_separator = st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def _component(draw) -> str:
    parts = [draw(_alnum)]
    for _ in range(draw(st.integers(0, 3))):
        parts += [draw(_separator), draw(_alnum)]
    return "".join(parts)


def repository_names(max_components: int = 3) -> st.SearchStrategy[str]:
    """Valid repository names (1..max_components path components)."""
    return (st.lists(_component(), min_size=1, max_size=max_components)
            .map("/".join).filter(lambda n: len(n) <= MAX_NAME))


def _mutations(name: str) -> list[st.SearchStrategy[str]]:
    first, _, rest = name.partition("/")
    tail = "/" + rest if rest else ""
    return [
        st.sampled_from("ABCXYZ").map(lambda c: first + c + tail),  # upper case
        st.sampled_from([".", "_", "-"]).map(lambda s: s + name),  # leading separator
        st.sampled_from([".", "_", "-"]).map(lambda s: first + s + tail),  # trailing separator
        st.sampled_from(["..", "___", "._", "_.", "-.", ".-", "_-"]).map(lambda s: first + s + "x" + tail),  # bad separators
        st.sampled_from(["+", "~", "!", "$", ",", ";", "=", "*", "'"]).map(lambda c: first + c + "x" + tail),
    ]


def invalid_repository_names() -> st.SearchStrategy[str]:
    """Names breaking the grammar in one way each, or too long (256+)."""
    mutated = repository_names(2).flatmap(lambda n: st.one_of(_mutations(n)))
    too_long = st.integers(MAX_NAME + 1, MAX_NAME + 40).map(lambda k: "/".join(["a" * 60] * 5)[:k].rstrip("/") + "b" * 8)
    return (mutated | too_long).filter(lambda n: not NAME_RE.fullmatch(n))


def tags() -> st.SearchStrategy[str]:
    """Valid tags, 1..128 characters."""
    head = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
    tail = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", max_size=127)
    return st.builds(lambda h, t: h + t, head, tail)


def invalid_tags() -> st.SearchStrategy[str]:
    """Tags breaking the grammar: a leading ``.``/``-``, a bad character, or 129+ characters."""
    bad_start = st.builds(lambda c, t: c + t, st.sampled_from(".-"), tags().map(lambda t: t[:100]))
    bad_char = st.builds(lambda t, c, u: t[:50] + c + u[:50], tags(), st.sampled_from("+~!$,;=*'"), tags())
    too_long = tags().map(lambda t: (t * 130)[:129 + len(t) % 20])
    return st.one_of(bad_start, bad_char, too_long).filter(lambda t: not TAG_RE.fullmatch(t) and t.strip(".") != "")
