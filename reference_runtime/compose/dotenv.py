"""``.env``, ``--env-file`` and a service's ``env_file:``: docker compose v2's dotenv
format (compose-go's dotenv): ``KEY=VALUE`` lines, ``export KEY=VALUE``, ``#``
comments, single quotes literal, double quotes with ``\\n`` escapes, and
``$VAR`` / ``${VAR:-d}`` expanded in unquoted and double-quoted values from the
lines above and the caller's ``lookup``. Pure: :func:`parse` takes the text.

>>> parse("# c\\nA=1\\nexport B='x $A'\\nC=\\"$A\\\\n\\" # note\\nD=${A}2 # tail\\n")
{'A': '1', 'B': 'x $A', 'C': '1\\n', 'D': '12'}
"""

from __future__ import annotations

from collections.abc import Mapping

from . import textfile
from .errors import ComposeError
from .interpolate import interpolate

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$"}


def parse(text: str, lookup: Mapping[str, str] | None = None, source: str = ".env") -> dict[str, str]:
    """The variables of a dotenv text; a bare ``KEY`` takes its value from ``lookup`` (if set there)."""
    lookup = lookup or {}
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not key or any(c.isspace() for c in key):
            raise ComposeError(f"failed to read {source}: line {number}: unexpected character in variable name {key!r}")
        if not eq:
            if key in lookup:
                out[key] = lookup[key]
            continue
        out[key] = _value(value.strip(), {**lookup, **out}, source, number)
    return out


def _value(value: str, known: Mapping[str, str], source: str, number: int) -> str:
    if value[:1] == "'":
        end = value.find("'", 1)
        if end < 0:
            raise ComposeError(f"failed to read {source}: line {number}: unterminated quoted value")
        return value[1:end]
    if value[:1] == '"':
        chars, i = [], 1
        while i < len(value) and value[i] != '"':
            if value[i] == "\\" and i + 1 < len(value):
                escaped = value[i + 1]
                # \$ stays an escaped dollar for the expansion below
                chars.append("$$" if escaped == "$" else _ESCAPES.get(escaped, "\\" + escaped))
                i += 2
                continue
            chars.append(value[i])
            i += 1
        if i >= len(value):
            raise ComposeError(f"failed to read {source}: line {number}: unterminated quoted value")
        return _expand("".join(chars), known, source, number)
    hash_at = value.find(" #")
    if hash_at >= 0:
        value = value[:hash_at].rstrip()
    return _expand(value, known, source, number)


def _expand(value: str, known: Mapping[str, str], source: str, number: int) -> str:
    try:
        return interpolate(value, known)
    except ComposeError as exc:
        raise ComposeError(f"failed to read {source}: line {number}: {exc}") from None


def read(path: str, lookup: Mapping[str, str] | None = None) -> dict[str, str]:
    """A dotenv file; a missing or unreadable one is a one-line error naming it."""
    try:
        text = textfile.read_text(path)
    except OSError as exc:
        raise ComposeError(f"Couldn't find env file: {path}" if isinstance(exc, FileNotFoundError)
                           else f"failed to read {path}: {exc.strerror}") from None
    return parse(text, lookup, path)
