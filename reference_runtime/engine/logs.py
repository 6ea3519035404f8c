"""docker's json-file log driver: one JSON object per line,
``{"log": "text\\n", "stream": "stdout", "time": "<RFC 3339 nano>"}``.

:class:`LineSplitter` turns a stream's chunks into log records (a record per
line; a line without its newline only at EOF or past 16 KiB, like docker);
:func:`encode` is the record; :func:`select` applies ``--since``, ``--until``
and ``--tail`` to parsed records. All pure.
"""

from __future__ import annotations

from . import jsonio

#: docker splits longer lines into partial records of this size.
MAX_LINE = 16 * 1024


def encode(text: bytes, stream: str, time: str) -> bytes:
    """One log record as a line of the log file.

    >>> encode(b"hi\\n", "stdout", "2026-01-01T00:00:00.000000000Z")
    b'{"log":"hi\\\\n","stream":"stdout","time":"2026-01-01T00:00:00.000000000Z"}\\n'
    """
    return (jsonio.dumps({"log": text.decode("utf-8", "replace"), "stream": stream, "time": time}) + "\n").encode()


class LineSplitter:
    """Cuts one output stream into docker's log records."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self.pending + chunk
        out = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            while nl + 1 - start > MAX_LINE:
                out.append(data[start:start + MAX_LINE])
                start += MAX_LINE
            out.append(data[start:nl + 1])
            start = nl + 1
        rest = data[start:]
        while len(rest) > MAX_LINE:
            out.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self.pending = rest
        return out

    def flush(self) -> list[bytes]:
        out, self.pending = ([self.pending] if self.pending else []), b""
        return out


def parse(line: bytes) -> dict | None:
    """The record of one log line; None for a line that is no record (torn, or
    damaged: readers sort, filter and print the fields, so each must be a string).

    >>> parse(b'{"log":"hi","stream":"stdout","time":"2026-01-01T00:00:00Z"}')["log"]
    'hi'
    >>> parse(b'{"log":5,"time":5}'), parse(b'{"log":"x"}'), parse(b'{"log":"x"'), parse(bytes([255]))
    (None, None, None, None)
    """
    try:
        record = jsonio.loads(line)
    except ValueError:  # UnicodeDecodeError included
        return None  # a torn last line of a log being written
    if not isinstance(record, dict) or not isinstance(record.get("stream", ""), str) or \
            not all(isinstance(record.get(k), str) for k in ("log", "time")):
        return None
    return record


def select(records: list[dict], *, since: float | None = None, until: float | None = None,
           tail: int | None = None, time_of=None) -> list[dict]:
    """The records ``logs`` prints: within [since, until], the last ``tail`` of them."""
    if since is not None or until is not None:
        kept = []
        for r in records:
            t = time_of(r["time"])
            if since is not None and t < since:
                continue
            if until is not None and t > until:
                continue
            kept.append(r)
        records = kept
    if tail is not None and tail >= 0:
        # a count beyond the log's length is all of it (a negative start would cut from the end)
        records = records[-tail:] if tail else []
    return records


def parse_tail(value: str | None) -> int | None:
    """``--tail``: a count; None (all) for ``all`` and, as docker documents,
    for a negative number or a non-integer.

    >>> parse_tail("3"), parse_tail("0"), parse_tail("-1"), parse_tail("many"), parse_tail("all")
    (3, 0, None, None, None)
    """
    if value is None:
        return None
    # Go's strconv.Atoi, not Python's int(): no "1_000", no spaces, ASCII digits only
    # (and no `re`: the supervisor imports this module on run's hot path)
    digits = value[1:] if value[:1] in ("+", "-") else value
    if not (digits.isascii() and digits.isdigit()):
        return None
    n = int(value)
    return None if n < 0 else n
