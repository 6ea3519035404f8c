"""The swarm RPC wire format, and the blocking client the CLI speaks it with.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON
holding one object. Messages on a connection::

    {"id": 7, "method": "raft.message", "params": {...}}   request
    {"id": null, "method": "...", "params": {...}}         notification: no answer
    {"cancel": 7}                                          the caller gave up on 7
    {"id": 7, "result": ...}                               answer
    {"id": 7, "error": {"code": "NotLeader", "message": "..."}}
    {"id": 7, "stream": item}                              one item of a streamed
                                                           answer; "result": null ends it

Stdlib only and no asyncio (the asyncio side is :mod:`.wire`): ``refengine``
imports this module to reach its node's swarmd and must stay fast to start.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator, Mapping
from typing import Any

from ..jsondepth import MAX_JSON_DEPTH, json_depth
from .errors import Code, ProtocolError, RpcError

MAX_FRAME = 16 * 1024 * 1024
HEADER = struct.Struct(">I")


def encode_frame(message: Mapping[str, Any], limit: int = MAX_FRAME) -> bytes:
    """One frame holding ``message``; ProtocolError if it would exceed ``limit``. Pure.

    >>> encode_frame({"id": 1, "result": None})
    b'\\x00\\x00\\x00\\x16{"id":1,"result":null}'
    """
    try:
        payload = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"message is not JSON: {e}") from None
    if len(payload) > limit:
        raise ProtocolError(f"message of {len(payload)} bytes exceeds the frame limit of {limit}")
    return HEADER.pack(len(payload)) + payload


def check_length(length: int, limit: int = MAX_FRAME) -> int:
    """A frame header's length, or ProtocolError past ``limit`` (checked before reading
    the payload, so a peer cannot make us buffer it). Pure."""
    if length > limit:
        raise ProtocolError(f"frame of {length} bytes exceeds the limit of {limit}")
    return length


def decode_payload(payload: bytes) -> dict[str, Any]:
    """The object a frame's payload holds; ProtocolError for anything else. Pure.

    >>> decode_payload(b'{"id":null,"method":"m"}')
    {'id': None, 'method': 'm'}
    """
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError(f"frame is not UTF-8 JSON: {e}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"frame holds a JSON {type(message).__name__}, not an object")
    if json_depth(message) > MAX_JSON_DEPTH:
        raise ProtocolError(f"frame nests deeper than {MAX_JSON_DEPTH} levels")
    return message


def request(request_id: int | None, method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"id": request_id, "method": method, "params": dict(params or {})}


def answer_kind(message: Mapping[str, Any]) -> str:
    """Which answer a message is: "result", "error" or "stream"; ProtocolError otherwise. Pure."""
    for kind in ("stream", "error", "result"):
        if kind in message:
            return kind
    raise ProtocolError("answer has neither result, error nor stream")


def error_from_wire(error: Any) -> RpcError:
    """The RpcError an ``"error"`` member describes (a malformed one is a protocol error). Pure."""
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        raise ProtocolError("error answer without a code")
    message = error.get("message")
    return RpcError(error["code"], message if isinstance(message, str) else "")


# The blocking client: one connection per call, so nothing is multiplexed here.


def _connect_unix(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError as e:  # TimeoutError included
        sock.close()
        raise RpcError(Code.UNAVAILABLE, f"cannot connect to {path}: {e.strerror or e}") from None
    return sock


def _recv_exact(sock: socket.socket, size: int, deadline: float | None, path: str) -> bytes:
    chunks, remaining = [], size
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RpcError(Code.UNAVAILABLE, f"no answer from {path} in time")
            sock.settimeout(left)
        try:
            chunk = sock.recv(min(remaining, 1 << 20))
        except TimeoutError:
            raise RpcError(Code.UNAVAILABLE, f"no answer from {path} in time") from None
        except OSError as e:
            raise RpcError(Code.UNAVAILABLE, f"connection to {path} failed: {e.strerror or e}") from None
        if not chunk:
            raise RpcError(Code.UNAVAILABLE, f"{path} closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_answer(sock: socket.socket, deadline: float | None, path: str) -> dict[str, Any]:
    (length,) = HEADER.unpack(_recv_exact(sock, HEADER.size, deadline, path))
    message = decode_payload(_recv_exact(sock, check_length(length), deadline, path))
    if message.get("id") != 1:
        raise ProtocolError(f"answer for an unknown call {message.get('id')!r}")
    return message


def _send_request(path: str, method: str, params: Mapping[str, Any] | None, timeout: float | None) -> socket.socket:
    sock = _connect_unix(path, timeout)
    try:
        sock.sendall(encode_frame(request(1, method, params)))
    except OSError as e:
        sock.close()
        raise RpcError(Code.UNAVAILABLE, f"connection to {path} failed: {e.strerror or e}") from None
    return sock


def call_unix(path: str, method: str, params: Mapping[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """Call ``method`` on the server at the unix socket ``path`` and return its result.

    Raises the server's RpcError, or RpcError("Unavailable") when there is no server
    or no answer within ``timeout`` seconds (connecting included).

    >>> call_unix("/var/lib/refengine/swarm/swarmd.sock", "node.ls", {})  # doctest: +SKIP
    """
    deadline = time.monotonic() + timeout
    with _send_request(path, method, params, timeout) as sock:
        while True:
            message = _read_answer(sock, deadline, path)
            kind = answer_kind(message)
            if kind == "error":
                raise error_from_wire(message["error"])
            if kind == "result":
                return message["result"]
            # a stream item for a plain call: the handler streams; keep only the end


def stream_unix(
    path: str,
    method: str,
    params: Mapping[str, Any] | None = None,
    timeout: float = 10.0,
    idle_timeout: float | None = None,
) -> Iterator[Any]:
    """Call a streaming ``method`` and yield its items as they come.

    ``timeout`` bounds connecting; ``idle_timeout`` (None: wait for ever, as
    ``logs --follow`` does) bounds each wait for the next item. Closing the
    generator closes the connection, which cancels the handler on the server.
    """
    with _send_request(path, method, params, timeout) as sock:
        while True:
            deadline = None if idle_timeout is None else time.monotonic() + idle_timeout
            if deadline is None:
                sock.settimeout(None)
            message = _read_answer(sock, deadline, path)
            kind = answer_kind(message)
            if kind == "error":
                raise error_from_wire(message["error"])
            if kind == "result":
                return
            yield message["stream"]
