"""What a Raft member keeps across restarts: its term, its vote and its log.

Two implementations of one contract (:class:`RaftStorage`): :class:`FileStorage`
for swarmd, :class:`MemoryStorage` for the core's tests and simulations. Both
keep the whole log in memory (no snapshots yet); the file form is::

    DIR/
      state.json   {"term": 3, "voted_for": "node-a"}: replaced atomically
                   (temp, fsync, rename, directory fsync) before the core acts
                   on a new term or vote, so no SIGKILL makes a node vote
                   twice in one term
      log          records back to back, one per entry:
                   4-byte big-endian length N | 4-byte big-endian crc32 of
                   the payload | N bytes of JSON {"index", "term", "kind", "data"}
      lock         held (flock) by the process that has the directory open

Appends are fsynced before :meth:`append` returns, so an entry is on disk
before the core acknowledges it. A SIGKILL (or power loss) mid-append leaves
at worst a torn or zero-filled last record; loading cuts it off. A bad record
followed by good data is not a torn tail but damage, and loading refuses it
(:class:`StorageCorrupt`) rather than silently dropping entries that this
node may have acknowledged.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Sequence

from ...atomicfile import fsync_dir, write_atomic
from .errors import RaftError, StorageCorrupt

EntryKind = Literal["command", "config", "noop"]
KINDS: frozenset[str] = frozenset({"command", "config", "noop"})
_HEADER = struct.Struct(">II")


@dataclass(frozen=True)
class Entry:
    """One log entry. ``data`` is the command (kind ``command``), ``{"members":
    {id: address}}`` (kind ``config``) or ``{}`` (``noop``, a new leader's first entry)."""

    term: int
    kind: EntryKind
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"term": self.term, "kind": self.kind, "data": self.data}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Entry":
        return cls(raw["term"], raw["kind"], raw["data"])


class RaftStorage(Protocol):
    """The contract the core relies on. Indexes start at 1; index 0 is the
    empty prefix, whose term is 0. Every mutating method is durable on return."""

    @property
    def term(self) -> int: ...

    @property
    def voted_for(self) -> str | None: ...

    def save_hard_state(self, term: int, voted_for: str | None) -> None:
        """Record the current term and this term's vote."""

    def last_index(self) -> int: ...

    def term_at(self, index: int) -> int:
        """The term of entry ``index`` (0 for index 0); IndexError past the end."""

    def entry(self, index: int) -> Entry: ...

    def entries(self, start: int, stop: int) -> list[Entry]:
        """Entries ``start`` up to, not including, ``stop``, clipped to the log."""

    def append(self, entries: Sequence[Entry]) -> None:
        """Add entries after the last one."""

    def truncate_from(self, index: int) -> None:
        """Drop entry ``index`` and every later one."""


class MemoryStorage:
    """The contract without a disk: for tests and simulations.

    >>> s = MemoryStorage(); s.append([Entry(1, "noop")]); (s.last_index(), s.term_at(1))
    (1, 1)
    """

    def __init__(self) -> None:
        self._term = 0
        self._voted_for: str | None = None
        self._log: list[Entry] = []

    @property
    def term(self) -> int:
        return self._term

    @property
    def voted_for(self) -> str | None:
        return self._voted_for

    def save_hard_state(self, term: int, voted_for: str | None) -> None:
        self._term, self._voted_for = term, voted_for

    def last_index(self) -> int:
        return len(self._log)

    def term_at(self, index: int) -> int:
        if index == 0:
            return 0
        if not 0 < index <= len(self._log):
            raise IndexError(index)
        return self._log[index - 1].term

    def entry(self, index: int) -> Entry:
        if not 0 < index <= len(self._log):
            raise IndexError(index)
        return self._log[index - 1]

    def entries(self, start: int, stop: int) -> list[Entry]:
        return self._log[max(start, 1) - 1:max(stop - 1, 0)]

    def append(self, entries: Sequence[Entry]) -> None:
        self._log.extend(entries)

    def truncate_from(self, index: int) -> None:
        del self._log[max(index, 1) - 1:]


def encode_record(index: int, entry: Entry) -> bytes:
    payload = json.dumps({"index": index, **entry.to_dict()}, separators=(",", ":")).encode()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes, index: int) -> Entry | None:
    try:
        raw = json.loads(payload)
    except ValueError:
        return None
    ok = (isinstance(raw, dict) and raw.get("index") == index and type(raw.get("term")) is int
          and raw.get("kind") in KINDS and isinstance(raw.get("data"), dict))
    return Entry.from_dict(raw) if ok else None


def read_log(data: bytes) -> tuple[list[Entry], list[int], int]:
    """Parse a log file: (entries, each record's offset, length of the good prefix).

    A bad record at the tail (short, crc mismatch, undecodable, or only zeros
    from there on) ends the good prefix; one followed by more data raises.
    """
    entries: list[Entry] = []
    offsets: list[int] = []
    pos = 0
    while pos < len(data):
        entry = None
        end = len(data) + 1  # a short header reaches past the end
        if pos + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, pos)
            end = pos + _HEADER.size + length
            payload = data[pos + _HEADER.size:end]
            if length and end <= len(data) and zlib.crc32(payload) == crc:
                entry = _decode_payload(payload, len(entries) + 1)
        if entry is None:
            if end >= len(data) or not data[pos:].strip(b"\0"):
                return entries, offsets, pos  # torn or zero-filled tail
            raise StorageCorrupt(f"raft log: bad record at byte {pos} followed by more data")
        entries.append(entry)
        offsets.append(pos)
        pos = end
    return entries, offsets, pos


class FileStorage:
    """The contract on a directory (layout in the module docstring); one
    process at a time.

    >>> import tempfile; d = Path(tempfile.mkdtemp())
    >>> s = FileStorage(d); s.append([Entry(1, "noop")]); s.close(); FileStorage(d).last_index()
    1
    """

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self._dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RaftError(f"raft directory {self._dir} is in use by another process") from None
        try:
            self._term, self._voted_for = self._load_state()
            self._log, self._offsets, self._log_fd = self._open_log()
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _load_state(self) -> tuple[int, str | None]:
        path = self._dir / "state.json"
        try:
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            return 0, None
        except ValueError:
            raise StorageCorrupt(f"{path}: not JSON") from None
        if not isinstance(raw, dict):
            raise StorageCorrupt(f"{path}: not an object")
        term, vote = raw.get("term"), raw.get("voted_for")
        if type(term) is not int or term < 0 or not (vote is None or isinstance(vote, str)):
            raise StorageCorrupt(f"{path}: no valid term and vote")
        return term, vote

    def _open_log(self) -> tuple[list[Entry], list[int], int]:
        path = self._dir / "log"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            with open(fd, "rb", closefd=False) as f:
                data = f.read()
            entries, offsets, good = read_log(data)
            if good < len(data):
                os.ftruncate(fd, good)
                os.fsync(fd)
            fsync_dir(self._dir)  # a log file just created must survive too
        except BaseException:
            os.close(fd)
            raise
        return entries, offsets, fd

    def close(self) -> None:
        if self._log_fd >= 0:
            os.close(self._log_fd)
            os.close(self._lock_fd)
            self._log_fd = self._lock_fd = -1

    @property
    def term(self) -> int:
        return self._term

    @property
    def voted_for(self) -> str | None:
        return self._voted_for

    def save_hard_state(self, term: int, voted_for: str | None) -> None:
        write_atomic(self._dir / "state.json", json.dumps({"term": term, "voted_for": voted_for}).encode())
        self._term, self._voted_for = term, voted_for

    def last_index(self) -> int:
        return len(self._log)

    def term_at(self, index: int) -> int:
        if index == 0:
            return 0
        if not 0 < index <= len(self._log):
            raise IndexError(index)
        return self._log[index - 1].term

    def entry(self, index: int) -> Entry:
        if not 0 < index <= len(self._log):
            raise IndexError(index)
        return self._log[index - 1]

    def entries(self, start: int, stop: int) -> list[Entry]:
        return self._log[max(start, 1) - 1:max(stop - 1, 0)]

    def append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        start = end = os.fstat(self._log_fd).st_size
        chunks, offsets = [], []
        for i, entry in enumerate(entries, start=len(self._log) + 1):
            record = encode_record(i, entry)
            offsets.append(end)
            end += len(record)
            chunks.append(record)
        data = b"".join(chunks)
        try:
            written = 0
            while written < len(data):
                written += os.write(self._log_fd, data[written:])
            os.fsync(self._log_fd)
        except BaseException:
            # A partial record left in place would sit under the next append
            # and read as damage, not as a torn tail.
            os.ftruncate(self._log_fd, start)
            raise
        self._log.extend(entries)
        self._offsets.extend(offsets)

    def truncate_from(self, index: int) -> None:
        index = max(index, 1)
        if index > len(self._log):
            return
        os.ftruncate(self._log_fd, self._offsets[index - 1])
        os.fsync(self._log_fd)
        del self._log[index - 1:]
        del self._offsets[index - 1:]
