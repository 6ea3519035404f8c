"""The Compose specification's interpolation (compose-spec interpolation.md):
``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``,
``${VAR?err}``, ``${VAR:+alt}``, ``${VAR+alt}`` and ``$$`` for a literal dollar,
applied to every string value (never to keys) of a file. Pure.

>>> interpolate("${A:-x}-$B-$$", {"B": "b"})
'x-b-$'
>>> interpolate("${A:-${B}}", {"B": "nested"})
'nested'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .errors import ComposeError

_NAME_START = "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NAME_CHARS = _NAME_START + "0123456789"
#: Bound on a file's string values once substituted: a big variable used under a YAML
#: alias repeated a million times would otherwise take terabytes.
MAX_EXPANDED = 64 << 20
#: The operators a braced expression may hold, longest first.
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class _Invalid(Exception):
    """The text is not a valid template (reported with the key's path by the caller)."""


def interpolate(text: str, env: Mapping[str, str], missing: Callable[[str], None] | None = None) -> str:
    """``text`` with its variables replaced from ``env``; ``missing(name)`` is told of each
    variable that is unset and has no default (it becomes the empty string).

    >>> interpolate("${NOPE?must be set}", {})
    Traceback (most recent call last):
    ...
    reference_runtime.compose.errors.ComposeError: required variable NOPE is missing a value: must be set
    """
    try:
        value, end = _scan(text, 0, env, missing, closing=False)
    except (_Invalid, RecursionError):  # RecursionError: "${A:-${A:-..." thousands deep
        raise ComposeError(f'invalid interpolation format: "{text[:80]}"') from None
    return value


def _scan(text: str, i: int, env: Mapping[str, str], missing, *, closing: bool, strict: bool = True
          ) -> tuple[str, int]:
    """Substitute from ``i`` to the end (or to the ``}`` closing a default when ``closing``)."""
    out: list[str] = []
    while i < len(text):
        c = text[i]
        if closing and c == "}":
            return "".join(out), i
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            value, i = _braced(text, i + 2, env, missing, strict)
            out.append(value)
        elif nxt and nxt in _NAME_START:
            j = i + 1
            while j < len(text) and text[j] in _NAME_CHARS:
                j += 1
            out.append(_lookup(text[i + 1:j], env, missing))
            i = j
        else:
            raise _Invalid()
    if closing:
        raise _Invalid()  # "${A:-x" never closed
    return "".join(out), i


def _braced(text: str, i: int, env: Mapping[str, str], missing, strict: bool) -> tuple[str, int]:
    """``${...}`` starting after the brace; returns the value and the index after ``}``."""
    j = i
    while j < len(text) and text[j] in _NAME_CHARS:
        j += 1
    name = text[i:j]
    if not name or name[0] not in _NAME_START:
        raise _Invalid()
    if text[j:j + 1] == "}":
        return _lookup(name, env, missing), j + 1
    op = next((o for o in _OPERATORS if text.startswith(o, j)), None)
    if op is None:
        raise _Invalid()
    is_set = name in env
    value = env.get(name, "")
    used = {":-": not value, "-": not is_set, ":+": bool(value), "+": is_set,
            ":?": not value, "?": not is_set}[op]
    # The word after the operator is itself a template, evaluated only if used:
    # a ${B:?} in an unused default neither fails nor warns.
    word, end = _scan(text, j + len(op), env, missing if used else None, closing=True, strict=strict and used)
    if op in (":?", "?"):
        if used and strict:
            raise ComposeError(f"required variable {name} is missing a value" + (f": {word}" if word else ""))
        return value, end + 1
    if used:
        return word, end + 1
    return (value if op in (":-", "-") else ""), end + 1


def _lookup(name: str, env: Mapping[str, str], missing) -> str:
    if name not in env:
        if missing:
            missing(name)
        return ""
    return env[name]


def interpolate_tree(node: object, env: Mapping[str, str], path: str = "",
                     missing: Callable[[str], None] | None = None) -> object:
    """Every string value of a loaded YAML tree interpolated; errors name the key's path
    (``services.web.image``) as docker compose does.

    >>> interpolate_tree({"services": {"web": {"image": "${IMG}"}}}, {"IMG": "busybox"})
    {'services': {'web': {'image': 'busybox'}}}
    """
    budget = [MAX_EXPANDED]

    def walk(node: object, path: str) -> object:
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{path}.[]") for v in node]
        if isinstance(node, str):
            try:
                value, _ = _scan(node, 0, env, missing, closing=False)
            except (_Invalid, RecursionError):
                raise ComposeError(f'invalid interpolation format for {path}: "{node[:80]}"; '
                                   "you may need to escape any $ with another $") from None
            budget[0] -= len(value)
            if budget[0] < 0:
                raise ComposeError(f"interpolation at {path}: the file's values grow beyond "
                                   f"{MAX_EXPANDED >> 20} MiB once variables are substituted")
            return value
        return node

    return walk(node, path)
