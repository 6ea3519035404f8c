"""How deep a parsed JSON value nests: one rule for every JSON input the
reference implementation accepts from outside (image archives, registry
manifests, token headers). Pure.

Real manifests, indexes and configs nest less than ten levels; Python's
parser recurses and fails past its recursion limit, so input deeper than
:data:`MAX_JSON_DEPTH` is refused like any other invalid JSON.
"""

from __future__ import annotations

MAX_JSON_DEPTH = 128


def json_depth(value) -> int:
    """How deep containers nest in a parsed JSON value (a scalar is 0), without recursion. Pure.

    >>> json_depth({"a": [1, {"b": []}]})
    4
    """
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
