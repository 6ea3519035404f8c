"""JSON for the hot path, and atomic JSON files.

``import json`` costs milliseconds (it pulls in ``re`` for its pure-Python
fallback) on every ``refengine run``; the C accelerator ``_json`` that it
wraps does the actual work, so the state files are read and written with it
directly. Output is identical to ``json.dumps(obj, separators=(",", ":"))``.
"""

from __future__ import annotations

import os

import _json


class _ScanContext:
    # The attributes json.scanner.py_make_scanner reads from a JSONDecoder.
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_ScanContext())


def _default(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",", False, False, True)
_encode_sorted = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ":", ",", True, False, True)


def dumps(obj, sort_keys: bool = False) -> str:
    return "".join((_encode_sorted if sort_keys else _encode)(obj, 0))


def loads(text: str | bytes):
    if isinstance(text, bytes):
        text = text.decode()
    idx = 0
    while idx < len(text) and text[idx] in " \t\r\n":
        idx += 1
    try:
        obj, end = _scan(text, idx)
    except (StopIteration, SystemError):  # the C scanner reports some truncations as SystemError
        raise ValueError("not JSON") from None
    if text[end:].strip():
        raise ValueError("extra data after JSON")
    return obj


def read(path: str):
    with open(path, "rb") as f:
        return loads(f.read())


def write_atomic(path: str, obj) -> None:
    """Replace ``path`` with ``obj`` as JSON: readers see the old or the new file, never half."""
    tmp = f"{path}.{os.getpid()}.tmp"
    data = memoryview(dumps(obj).encode())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        while data:  # a short write (a nearly full disk) must not be renamed into place as the whole
            data = data[os.write(fd, data):]
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
