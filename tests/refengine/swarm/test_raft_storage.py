"""Raft storage: one contract for both implementations, then what only the
files must survive (torn and corrupt tails, restarts, a SIGKILL mid-append)."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from reference_runtime.swarm.raft.errors import RaftError, StorageCorrupt
from reference_runtime.swarm.raft.storage import Entry, FileStorage, MemoryStorage, encode_record, read_log

ROOT = Path(__file__).resolve().parents[3]


def cmd(n: int, term: int = 1) -> Entry:
    return Entry(term, "command", {"n": n})


@pytest.fixture(params=["memory", "file"])
def storage(request, tmp_path):
    if request.param == "memory":
        yield MemoryStorage()
        return
    s = FileStorage(tmp_path / "raft")
    yield s
    s.close()


# -- the contract -------------------------------------------------------------

def test_empty(storage):
    assert (storage.term, storage.voted_for, storage.last_index(), storage.term_at(0)) == (0, None, 0, 0)
    assert storage.entries(1, 10) == []
    with pytest.raises(IndexError):
        storage.term_at(1)
    with pytest.raises(IndexError):
        storage.entry(1)


def test_hard_state(storage):
    storage.save_hard_state(3, "b")
    assert (storage.term, storage.voted_for) == (3, "b")
    storage.save_hard_state(4, None)
    assert (storage.term, storage.voted_for) == (4, None)


def test_append_read_truncate(storage):
    storage.append([cmd(1), cmd(2), cmd(3, term=2)])
    storage.append([])
    assert storage.last_index() == 3
    assert [storage.term_at(i) for i in range(4)] == [0, 1, 1, 2]
    assert storage.entry(2) == cmd(2)
    assert storage.entries(2, 4) == [cmd(2), cmd(3, 2)]
    assert storage.entries(0, 99) == [cmd(1), cmd(2), cmd(3, 2)]
    storage.truncate_from(2)
    assert storage.entries(1, 99) == [cmd(1)]
    storage.truncate_from(5)  # past the end: nothing to drop
    storage.append([cmd(9, term=3)])
    assert storage.entries(1, 99) == [cmd(1), cmd(9, 3)]
    storage.truncate_from(1)
    assert storage.last_index() == 0


# -- the files ---------------------------------------------------------------

def _reload(path: Path) -> FileStorage:
    return FileStorage(path)


def test_everything_survives_a_reopen(tmp_path):
    s = FileStorage(tmp_path)
    s.save_hard_state(7, "c")
    s.append([cmd(1), cmd(2, 5), Entry(6, "config", {"members": {"a": "x:1"}}), Entry(7, "noop")])
    s.truncate_from(4)
    s.append([cmd(4, 7)])
    s.close()
    s = _reload(tmp_path)
    assert (s.term, s.voted_for) == (7, "c")
    assert s.entries(1, 99) == [cmd(1), cmd(2, 5), Entry(6, "config", {"members": {"a": "x:1"}}), cmd(4, 7)]
    s.close()


def test_the_directory_is_held_by_one_process_at_a_time(tmp_path):
    s = FileStorage(tmp_path)
    with pytest.raises(RaftError, match="in use"):
        FileStorage(tmp_path)
    s.close()
    FileStorage(tmp_path).close()


def _log_with(tmp_path: Path, n: int) -> Path:
    s = FileStorage(tmp_path)
    s.append([cmd(i) for i in range(1, n + 1)])
    s.close()
    return tmp_path / "log"


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_a_torn_last_record_is_cut(tmp_path, cut):
    log = _log_with(tmp_path, 3)
    size = log.stat().st_size
    os.truncate(log, size - cut)
    s = _reload(tmp_path)
    assert s.entries(1, 9) == [cmd(1), cmd(2)]
    s.append([cmd(30)])  # appends go after the cut, readable again
    s.close()
    assert _reload(tmp_path).entries(1, 9) == [cmd(1), cmd(2), cmd(30)]


def test_a_crc_mismatch_in_the_last_record_is_cut(tmp_path):
    log = _log_with(tmp_path, 3)
    data = bytearray(log.read_bytes())
    data[-3] ^= 0xFF
    log.write_bytes(bytes(data))
    s = _reload(tmp_path)
    assert s.last_index() == 2
    s.close()
    assert log.stat().st_size == len(data) - len(encode_record(3, cmd(3)))


def test_a_zero_filled_tail_is_cut(tmp_path):
    log = _log_with(tmp_path, 2)
    with open(log, "ab") as f:
        f.write(b"\0" * 100)  # a file extended by a crash, its data never written
    assert _reload(tmp_path).entries(1, 9) == [cmd(1), cmd(2)]


def test_damage_before_good_records_is_refused(tmp_path):
    log = _log_with(tmp_path, 3)
    data = bytearray(log.read_bytes())
    data[12] ^= 0xFF  # inside the first record's payload
    log.write_bytes(bytes(data))
    with pytest.raises(StorageCorrupt):
        _reload(tmp_path)


def test_a_record_out_of_sequence_is_damage():
    records = encode_record(1, cmd(1)) + encode_record(3, cmd(3)) + encode_record(3, cmd(4))
    with pytest.raises(StorageCorrupt):
        read_log(records)
    entries, offsets, good = read_log(encode_record(1, cmd(1)) + encode_record(5, cmd(5)))
    assert entries == [cmd(1)] and offsets == [0] and good == len(encode_record(1, cmd(1)))


def test_a_record_that_is_not_an_entry_is_damage():
    payload = json.dumps({"index": 1, "term": "x", "kind": "noop", "data": {}}).encode()
    bad = struct.pack(">II", len(payload), zlib.crc32(payload)) + payload
    with pytest.raises(StorageCorrupt):
        read_log(bad + encode_record(2, cmd(2)))


@pytest.mark.parametrize("content", [b"{", b"[]", b'{"term": -1}', b'{"term": 1, "voted_for": 5}'])
def test_a_bad_state_file_is_refused(tmp_path, content):
    (tmp_path / "state.json").write_bytes(content)
    with pytest.raises(StorageCorrupt):
        FileStorage(tmp_path)
    # the lock was released with the refusal: the repaired directory opens
    (tmp_path / "state.json").write_bytes(b'{"term": 1, "voted_for": null}')
    FileStorage(tmp_path).close()


WRITER = """
import sys, time
from pathlib import Path
from reference_runtime.swarm.raft.storage import Entry, FileStorage
s = FileStorage(Path(sys.argv[1]))
n = s.last_index()
print("ready", flush=True)
while True:
    n += 1
    s.save_hard_state(n, "v%d" % n)
    s.append([Entry(n, "command", {"n": n, "pad": "x" * (n % 700)})])
"""


def test_sigkill_mid_append_leaves_a_loadable_prefix(tmp_path):
    """Kill a writer at arbitrary points, several times: each reload has a
    contiguous log, and the vote saved before each append is never behind it."""
    for round_ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(0.05 + 0.03 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        s = FileStorage(tmp_path)
        last = s.last_index()
        assert last > 0
        assert [e.data["n"] for e in s.entries(1, last + 1)] == list(range(1, last + 1))
        assert s.term >= last and s.voted_for == f"v{s.term}"
        s.close()
