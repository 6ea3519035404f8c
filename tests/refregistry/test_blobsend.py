"""refregistry's blob body writer: every byte of the asked range, through a
reader slower than the writer, and a clear error for a stalled reader, a gone
reader and a blob shorter than its size."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from reference_runtime.registry import blobsend


@pytest.fixture
def blob(tmp_path):
    data = os.urandom(3 * blobsend.CHUNK + 12345)
    path = tmp_path / "blob"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    yield fd, data
    os.close(fd)


def _pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    return a, b


@pytest.mark.parametrize("offset, count", [(0, None), (1, 10), (blobsend.CHUNK - 1, blobsend.CHUNK + 2), (0, 0)])
def test_the_range_arrives_whole_through_a_slow_reader(blob, offset, count):
    fd, data = blob
    count = len(data) - offset if count is None else count
    writer, reader = _pair()
    got = bytearray()

    def read():
        while chunk := reader.recv(7919):  # small reads: the writer meets a full buffer often
            got.extend(chunk)

    thread = threading.Thread(target=read)
    thread.start()
    assert blobsend.send_range(writer.fileno(), fd, offset, count) == count
    writer.close()
    thread.join(30)
    reader.close()
    assert bytes(got) == data[offset:offset + count]


def test_a_stalled_reader_times_out(blob, monkeypatch):
    fd, data = blob
    monkeypatch.setattr(blobsend, "STALL", 0.3)
    writer, reader = _pair()
    with pytest.raises(TimeoutError):
        blobsend.send_range(writer.fileno(), fd, 0, len(data))
    writer.close()
    reader.close()


def test_a_gone_reader_is_an_oserror(blob):
    fd, data = blob
    writer, reader = _pair()
    reader.close()
    with pytest.raises(OSError):
        blobsend.send_range(writer.fileno(), fd, 0, len(data))
    writer.close()


def test_a_short_blob_is_an_eoferror(blob):
    fd, data = blob
    writer, reader = _pair()
    threading.Thread(target=lambda: [None for _ in iter(lambda: reader.recv(1 << 20), b"")], daemon=True).start()
    with pytest.raises(EOFError):
        blobsend.send_range(writer.fileno(), fd, 0, len(data) + 1)
    writer.close()
