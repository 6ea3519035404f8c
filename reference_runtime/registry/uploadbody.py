"""Receiving an upload's request body into its session file: every byte
written, hashed as it passes, and sent towards the disk while the rest arrives.

Two ways in, one result (:class:`SessionWriter`):

- direct, for plain TCP with a ``Content-Length`` of at least
  :data:`DIRECT_MIN` bytes. aiohttp's reader copies a body three times on the
  event loop (``recv`` into a new bytes object, the parser's slice, the
  stream's join) and allocates each piece afresh; profiled on a 1 GiB push,
  that loop thread was the bottleneck (``recv`` and ``memmove``), while the
  worker that wrote and hashed waited. Here two threads of the body's own
  take the socket for the length of the body: one reads into a few reused
  buffers and hashes them, the other writes them, each with the GIL
  released in its syscalls, so the event loop stays free for other
  requests and memory stays flat (at most :data:`DIRECT_SLOTS` bodies at
  once). aiohttp's parser never sees those bytes, so the connection closes
  after the response (:func:`close_after_response`); clients reconnect, and
  for a body of a MiB or more a handshake is noise.
- stream, for everything else (TLS, chunked transfer encoding, small
  bodies): aiohttp's stream, the chunks written with ``writev`` (no join) and
  hashed in a worker thread, one write in flight while the next chunk arrives.

Write-back: every :data:`WRITEBACK_STEP` bytes the writer asks the kernel to
start writing the range it just filled (``sync_file_range``, which does not
wait), so the fsync that commits the blob waits only for the tail instead of
the whole blob; the fsync itself, and so the guarantee, is unchanged
(storage.commit_upload).
"""
from __future__ import annotations

import asyncio
import ctypes
import os
import queue
import select
import threading
import time
from typing import Callable

DIRECT_MIN = 1 << 20
BUFFER = 1 << 20
BUFFERS = 4  # per direct body: the reader fills one while the writer empties the others
DIRECT_SLOTS = 16  # direct bodies at once (4 MiB of buffers each); more take the stream path
STREAM_BATCH = 1 << 20  # the stream path writes when this much has arrived
WRITEBACK_STEP = 8 << 20
IDLE_TIMEOUT = 120.0  # seconds without a byte from the client before giving up
POLL_SLICE_MS = 500  # how often a waiting reader looks at its cancel flag

CLOSE_KEY = "refregistry.close_connection"
_direct_bodies = [0]  # how many run now; only the event loop thread touches it
_SYNC_FILE_RANGE_WRITE = 2
_libc = ctypes.CDLL(None, use_errno=True)
_libc.sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)


class BodyError(ConnectionResetError):
    """The body stopped short: the client closed, stalled, or the server is
    stopping. A connection error, so the error middleware lets aiohttp drop
    the connection as it does for any client that goes away."""


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a dirty range out, without waiting
    (Python 3.11 has no sync_file_range). Advisory: errors are ignored, the
    commit's fsync is what guarantees durability."""
    _libc.sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class SessionWriter:
    """Appends to an open session file at ``offset``: write, hash, start write-back.

    Runs in worker threads. ``store`` calls come one at a time, in order, as
    do ``hash`` calls (the session's lock serialises requests; a request
    keeps at most one of each in flight)."""

    def __init__(self, fd: int, offset: int, hasher):
        self.fd, self.offset, self.hasher = fd, offset, hasher
        self.flushed = offset  # write-back has been started up to here

    def write(self, chunks: list) -> None:
        self.store(chunks)
        self.hash(chunks)

    def hash(self, chunks: list) -> None:
        if self.hasher is not None:
            for chunk in chunks:
                self.hasher.update(chunk)

    def store(self, chunks: list) -> None:
        """Write at the session's end; the direct path hashes on another thread."""
        total = sum(len(c) for c in chunks)
        written = os.pwritev(self.fd, chunks, self.offset)
        if written < total:  # short write (rare): finish piece by piece
            self._finish(chunks, written)
        self.offset += total
        if self.offset - self.flushed >= WRITEBACK_STEP:
            start_writeback(self.fd, self.flushed, self.offset - self.flushed)
            self.flushed = self.offset

    def _finish(self, chunks: list, done: int) -> None:
        position = self.offset + done
        for chunk in chunks:
            view = memoryview(chunk)
            if done >= len(view):
                done -= len(view)
                continue
            view = view[done:]
            done = 0
            while view:
                n = os.pwrite(self.fd, view, position)
                view, position = view[n:], position + n


# -- direct ------------------------------------------------------------------
def direct_socket(request) -> int | None:
    """The request's socket when its body can be read straight from it, else None."""
    length = request.content_length
    transport = request.transport
    if length is None or length < DIRECT_MIN or transport is None or transport.is_closing():
        return None
    if _direct_bodies[0] >= DIRECT_SLOTS:  # memory stays bounded however many clients push
        return None
    if "Transfer-Encoding" in request.headers or transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    return None if sock is None else sock.fileno()


async def receive_direct(request, fd: int, writer: SessionWriter, length: int) -> None:
    """Read ``length`` body bytes: what aiohttp buffered already, then the socket.

    From here on aiohttp does not read this connection again; the response
    closes it. The body runs on two threads of its own (not the loop's
    executor, whose few workers every other request needs): one reads and
    hashes, one writes, with :data:`BUFFERS` buffers between them."""
    _direct_bodies[0] += 1
    try:
        await _receive_direct(request, fd, writer, length)
    finally:
        _direct_bodies[0] -= 1


async def _receive_direct(request, fd: int, writer: SessionWriter, length: int) -> None:
    request[CLOSE_KEY] = True
    buffered = request.content.read_nowait(-1)  # may resume the transport: pause after it
    request.transport.pause_reading()
    if len(buffered) > length:
        raise BodyError("more body than Content-Length")
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    cancel = threading.Event()
    own_fd = os.dup(fd)  # ours until the threads end, even if aiohttp closes the connection

    def run() -> None:
        try:
            _pipeline(own_fd, writer, buffered, length - len(buffered), cancel)
            outcome = None
        except BaseException as exc:  # handed to the awaiting handler
            outcome = exc
        finally:
            os.close(own_fd)
        try:
            loop.call_soon_threadsafe(_settle, done, outcome)
        except RuntimeError:  # the loop is closed: the server stopped, nobody waits
            pass

    threading.Thread(target=run, name="refregistry-body", daemon=True).start()
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        cancel.set()
        await asyncio.wait([done])  # the caller truncates the file: the threads must be gone
        if done.done() and not done.cancelled():
            done.exception()  # seen: the cancellation is what the caller gets
        raise
    finally:
        # The body is over for aiohttp too: without this it would "linger",
        # waiting up to 10 s for body bytes that went past it, before closing.
        request.content.feed_eof()


def _settle(future: asyncio.Future, outcome: BaseException | None) -> None:
    if future.done():
        return
    if outcome is None:
        future.set_result(None)
    else:
        future.set_exception(outcome)


def _pipeline(fd: int, writer: SessionWriter, buffered: bytes, left: int, cancel: threading.Event) -> None:
    """Reader (this thread): socket -> buffer, hash. Writer (a second thread): buffer -> file."""
    free: queue.SimpleQueue = queue.SimpleQueue()
    full: queue.SimpleQueue = queue.SimpleQueue()
    failed: list[BaseException] = []
    for _ in range(BUFFERS):
        free.put(memoryview(bytearray(BUFFER)))

    def write_loop() -> None:
        while (item := full.get()) is not None:
            buffer, n, pooled = item
            if not failed:
                try:
                    writer.store([buffer[:n]])
                except BaseException as exc:
                    failed.append(exc)
            if pooled:
                free.put(buffer)

    def take_free() -> memoryview:
        while True:
            if failed:
                raise failed[0]
            if cancel.is_set():
                raise BodyError("the server is stopping")
            try:
                return free.get(timeout=POLL_SLICE_MS / 1000)
            except queue.Empty:
                continue

    def hand_over(buffer: memoryview, n: int) -> None:
        writer.hash([buffer[:n]])
        full.put((buffer, n, True))

    thread = threading.Thread(target=write_loop, name="refregistry-body-writer", daemon=True)
    thread.start()
    try:
        if buffered:
            writer.hash([buffered])
            full.put((buffered, len(buffered), False))
        _read_socket(fd, left, cancel, take_free, hand_over)
    finally:
        full.put(None)
        thread.join()
    if failed:
        raise failed[0]


def _read_socket(fd: int, left: int, cancel: threading.Event, take_free, hand_over) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    buffer = take_free() if left else None
    filled = 0
    last_byte = time.monotonic()
    while left:
        try:
            n = os.readv(fd, [buffer[filled:filled + min(left, len(buffer) - filled)]])
        except (BlockingIOError, InterruptedError):
            if filled:  # hand over what we have rather than sit on it
                hand_over(buffer, filled)
                buffer, filled = take_free(), 0
            while not poller.poll(POLL_SLICE_MS):
                if cancel.is_set():
                    raise BodyError("the server is stopping") from None
                if time.monotonic() - last_byte > IDLE_TIMEOUT:
                    raise BodyError(f"no body bytes for {IDLE_TIMEOUT:.0f}s") from None
            continue
        if n == 0:
            raise BodyError(f"the client closed the connection with {left} body bytes missing")
        last_byte = time.monotonic()
        filled += n
        left -= n
        if filled == len(buffer) or not left:
            hand_over(buffer, filled)
            buffer, filled = (take_free() if left else None), 0


# -- stream ------------------------------------------------------------------
async def receive_stream(request, writer: SessionWriter, expected: int | None,
                         too_long: Callable[[], Exception]) -> int:
    """Read the body from aiohttp's stream; returns its length."""
    loop = asyncio.get_running_loop()
    writing: asyncio.Future | None = None  # one write in flight while the next chunks arrive
    pending: list[bytes] = []
    pending_size = received = 0
    try:
        async for chunk in request.content.iter_any():
            received += len(chunk)
            if expected is not None and received > expected:
                raise too_long()
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= STREAM_BATCH:
                if writing is not None:
                    await writing
                writing = loop.run_in_executor(None, writer.write, pending)
                pending, pending_size = [], 0
        if writing is not None:
            await writing
            writing = None
        if pending:
            await loop.run_in_executor(None, writer.write, pending)
        return received
    finally:
        if writing is not None:  # an error with a write in flight: let it end before the caller truncates
            await asyncio.shield(asyncio.wait([writing]))


async def close_after_response(request, response) -> None:
    """on_response_prepare: a connection whose body was read directly must close."""
    if request.get(CLOSE_KEY):
        # The headers are prepared before this hook runs, hence the explicit header.
        response.force_close()
        response.headers["Connection"] = "close"
