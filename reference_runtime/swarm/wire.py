"""Framed JSON RPC over asyncio streams: the server every swarmd runs and the
client nodes call each other (and their own swarmd) with.

The frame format and message shapes are in :mod:`.framing`. A connection is
persistent and multiplexed: each request runs as its own task, so one slow
handler never holds up the others, and answers go back in whatever order
they finish.

Who the peer is comes from the TLS handshake (:func:`peer_identity`): the
certificate's CN is the node ID, OU its role, O the cluster ID. The server
enforces two rules before any handler runs:

- a certificate that is not a swarm node certificate of this cluster closes
  the connection;
- a peer without a certificate (a node joining, which has no certificate
  yet) may call only the methods in ``open_methods``; anything else is
  answered ``Unauthenticated``. The default allow-list is empty: deny.

The unix socket is for the CLI on the same node: mode 0600, so only root
reaches it, and its peer is ``local``.

>>> async def demo(sock):  # doctest: +SKIP
...     server = RpcServer({"ping": lambda params, peer: asyncio.sleep(0, "pong")})
...     await server.listen_unix(sock)
...     assert await RpcClient.unix(sock).call("ping", {}) == "pong"
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import socket
import ssl
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Code, ProtocolError, RpcError, SwarmError
from .framing import (
    HEADER, MAX_FRAME, answer_kind, check_length, decode_payload, encode_frame, error_from_wire, request,
)
# The blocking client, here for daemon code; the CLI imports it from .framing, which has no asyncio.
from .framing import call_unix, stream_unix  # noqa: F401

log = logging.getLogger(__name__)

MANAGER_OU = "swarm-manager"
WORKER_OU = "swarm-worker"
ROLE_OUS = {"manager": MANAGER_OU, "worker": WORKER_OU}

# A peer without a certificate only joins: a CSR and a token fit in far less.
ANONYMOUS_MAX_FRAME = 64 * 1024
# Requests of one connection running at once; past it the server stops reading
# that connection (TCP pushes back) instead of spawning without bound.
MAX_IN_FLIGHT = 128
HANDSHAKE_TIMEOUT = 10.0
# A peer without a certificate makes one call or two (ca.root, ca.issue) and hangs up;
# one that sends nothing for this long (or half a frame) is cut off, so idle anonymous
# connections cannot pile up until the daemon runs out of file descriptors.
ANONYMOUS_IDLE_TIMEOUT = 30.0
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Peer:
    """The other end of a connection, as the handlers see it."""

    node_id: str | None  # None: no certificate (a joining node) or the local CLI
    role: str | None  # "manager" or "worker"
    cluster_id: str | None
    address: str
    local: bool = False  # the unix socket: the CLI on this node

    @property
    def authenticated(self) -> bool:
        return self.local or self.node_id is not None


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket | None, address: str = "") -> Peer:
    """The peer a verified TLS connection is with; a Peer without node ID when the
    peer sent no certificate. SwarmError for a certificate that names no swarm node
    (missing or repeated CN/OU/O, or an OU that is no swarm role).

    Reads the subject that the ssl module exposes once OpenSSL has verified the
    chain, so neither this module nor the CLI needs ``cryptography``.
    """
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:  # None: no certificate; {}: one that was not verified (CERT_NONE)
        return Peer(None, None, None, address)
    fields: dict[str, list[str]] = {}
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            fields.setdefault(name, []).append(value)

    def single(name: str) -> str:
        values = fields.get(name, [])
        if len(values) != 1 or not values[0]:
            raise SwarmError(f"peer certificate must have exactly one {name}")
        return values[0]

    roles = {ou: role for role, ou in ROLE_OUS.items()}
    ou = single("organizationalUnitName")
    if ou not in roles:
        raise SwarmError(f"peer certificate has no swarm role: OU {ou!r}")
    return Peer(single("commonName"), roles[ou], single("organizationName"), address)


Handler = Callable[[dict, Peer], Awaitable[Any] | AsyncIterator[Any]]
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _ConnectionGone(Exception):
    """Writing failed: the peer or the network ended the connection."""


class _Connection:
    """One end of a framed stream: reading frames, and writing them one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame: int) -> None:
        self.reader, self.writer, self.max_frame = reader, writer, max_frame
        self.idle_timeout: float | None = None  # for a whole frame; None: wait for ever
        self._write_lock = asyncio.Lock()

    async def read(self) -> dict[str, Any] | None:
        """The next message, None at end of stream; ProtocolError for a bad frame, or for
        none complete within ``idle_timeout``."""
        if self.idle_timeout is None:
            return await self._read()
        try:
            return await asyncio.wait_for(self._read(), self.idle_timeout)
        except asyncio.TimeoutError:
            raise ProtocolError(f"no complete frame within {self.idle_timeout:g}s") from None

    async def _read(self) -> dict[str, Any] | None:
        try:
            header = await self.reader.readexactly(HEADER.size)
        except asyncio.IncompleteReadError as e:
            if e.partial:
                raise ProtocolError("connection closed inside a frame header") from None
            return None
        (length,) = HEADER.unpack(header)
        try:
            payload = await self.reader.readexactly(check_length(length, self.max_frame))
        except asyncio.IncompleteReadError:
            raise ProtocolError("connection closed inside a frame") from None
        return decode_payload(payload)

    async def send(self, message: Mapping[str, Any]) -> None:
        frame = encode_frame(message)  # before the lock: a bad message fails alone
        async with self._write_lock:
            try:
                self.writer.write(frame)
                await self.writer.drain()
            except (ConnectionError, ssl.SSLError, OSError) as e:
                raise _ConnectionGone(str(e)) from None

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)


def _request_id(message: Mapping[str, Any]) -> int | None:
    request_id = message.get("id")
    if request_id is not None and (type(request_id) is not int):
        raise ProtocolError(f"request id must be an integer or null, not {request_id!r}")
    return request_id


class RpcServer:
    """Answers requests with ``handlers[method](params, peer)``.

    A handler returns the result (JSON-serializable), raises RpcError to answer
    an error, or returns an async iterator to stream items. Any other exception
    is logged and answered as ``Internal``.
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        cluster_id: str | None = None,
        open_methods: Collection[str] = frozenset(),
    ) -> None:
        self.handlers = dict(handlers)
        self.cluster_id = cluster_id  # None: accept any cluster the CA vouches for
        self.open_methods = frozenset(open_methods)
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[asyncio.Task] = set()
        self._unix_paths: list[Path] = []

    async def listen_tcp(self, host: str, port: int, ssl_context: ssl.SSLContext) -> tuple[str, int]:
        """Serve on ``host:port`` (0: any free port) over TLS; returns the bound address."""
        server = await asyncio.start_server(
            self._accept_tcp, host, port, ssl=ssl_context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT
        )
        self._servers.append(server)
        return server.sockets[0].getsockname()[:2]

    async def listen_unix(self, path: str | os.PathLike) -> None:
        """Serve on a unix socket of mode 0600 at ``path``, replacing a stale socket
        file; SwarmError if a server still answers there or ``path`` is not a socket."""
        path = Path(path)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise SwarmError(f"{path} exists and is not a socket")
            if await _answers(path):
                raise SwarmError(f"a server already listens on {path}")
        # Bound under a temporary name, restricted, then renamed into place: the
        # socket is never reachable under its name with a wider mode.
        # (The temporary name is no longer than swarmd.sock: socket paths are short.)
        tmp = path.parent / f".tmp-{os.urandom(3).hex()}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(tmp))
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except OSError as e:
            sock.close()
            tmp.unlink(missing_ok=True)
            raise SwarmError(f"cannot listen on {path}: {e.strerror or e}") from None
        except BaseException:
            sock.close()
            tmp.unlink(missing_ok=True)
            raise
        server = await asyncio.start_unix_server(self._accept_unix, sock=sock)
        self._servers.append(server)
        self._unix_paths.append(path)

    async def close(self) -> None:
        """Stop listening, end every connection (in-flight handlers are cancelled)."""
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        for path in self._unix_paths:
            path.unlink(missing_ok=True)
        self._servers.clear()
        self._unix_paths.clear()

    def _track_this_connection(self) -> None:
        """Remember the task serving a connection, for close() to end it."""
        task = asyncio.current_task()
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _accept_unix(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track_this_connection()
        with contextlib.suppress(asyncio.CancelledError):  # close() ended it; see _accept_tcp
            await self._serve(_Connection(reader, writer, MAX_FRAME), Peer(None, None, None, "unix", local=True))

    async def _accept_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track_this_connection()
        # close() cancels this task, which asyncio made for the connection and reports
        # as an error if it ends cancelled: it ends normally instead.
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve_tcp(reader, writer)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = "%s:%s" % writer.get_extra_info("peername")[:2]
        connection = _Connection(reader, writer, MAX_FRAME)
        try:
            peer = peer_identity(writer.get_extra_info("ssl_object"), address)
            if peer.cluster_id is not None and self.cluster_id is not None and peer.cluster_id != self.cluster_id:
                raise SwarmError(f"certificate of cluster {peer.cluster_id}, not {self.cluster_id}")
        except SwarmError as e:
            log.warning("refused connection from %s: %s", address, e)
            await connection.close()
            return
        if not peer.authenticated:
            connection.max_frame = ANONYMOUS_MAX_FRAME
            connection.idle_timeout = ANONYMOUS_IDLE_TIMEOUT
        await self._serve(connection, peer)

    async def _serve(self, connection: _Connection, peer: Peer) -> None:
        """Read requests and start each as a task until the connection ends. Calls
        still running then are cancelled (their answers cannot be delivered);
        notifications already received still run to their end."""
        calls: dict[int, asyncio.Task] = {}
        notifications: set[asyncio.Task] = set()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        try:
            while True:
                message = await connection.read()
                if message is None:
                    break
                if "cancel" in message:
                    task = calls.get(message["cancel"]) if type(message["cancel"]) is int else None
                    if task is not None:
                        task.cancel()
                    continue
                request_id = _request_id(message)
                if request_id in calls:
                    raise ProtocolError(f"request id {request_id} is already in use")
                await slots.acquire()
                task = asyncio.create_task(self._answer(connection, peer, request_id, message))
                task.add_done_callback(lambda _: slots.release())
                if request_id is None:
                    notifications.add(task)
                    task.add_done_callback(notifications.discard)
                else:
                    calls[request_id] = task
                    task.add_done_callback(lambda _, i=request_id: calls.pop(i, None))
        except ProtocolError as e:
            log.warning("closing connection from %s: %s", peer.address, e)
        except (ConnectionError, ssl.SSLError, OSError) as e:
            log.info("connection from %s failed: %s", peer.address, e)
        finally:
            # (close() cancels this task, and with it what is awaited here)
            ended = list(calls.values())
            for task in ended:
                task.cancel()
            await asyncio.gather(*ended, *notifications, return_exceptions=True)
            await connection.close()

    async def _answer(self, connection: _Connection, peer: Peer, request_id: int | None, message: dict) -> None:
        method = message.get("method")
        try:
            reply = {"id": request_id, "result": await self._dispatch(connection, peer, request_id, message)}
        except asyncio.CancelledError:
            raise
        except RpcError as e:
            reply = {"id": request_id, "error": e.to_wire()}
        except _ConnectionGone:
            return  # while streaming; the reader ends the connection
        except Exception as e:
            log.exception("handler of %r failed", method)
            reply = {"id": request_id, "error": {"code": Code.INTERNAL, "message": str(e) or type(e).__name__}}
        if request_id is None:
            if "error" in reply and reply["error"]["code"] != Code.INTERNAL:  # Internal: logged above
                log.warning("notification %r from %s failed: %s", method, peer.address, reply["error"]["message"])
            return
        try:
            await connection.send(reply)
        except ProtocolError as e:  # a result that is not JSON or too big
            log.error("answer to %r not sent: %s", method, e)
            with contextlib.suppress(_ConnectionGone):
                await connection.send({"id": request_id, "error": {"code": Code.INTERNAL, "message": str(e)}})
        except _ConnectionGone:
            pass

    async def _dispatch(self, connection: _Connection, peer: Peer, request_id: int | None, message: dict) -> Any:
        method, params = message.get("method"), message.get("params", {})
        if not isinstance(method, str) or not isinstance(params, dict):
            raise RpcError(Code.INVALID_ARGUMENT, "a request needs a method name and params that are an object")
        if not peer.authenticated and method not in self.open_methods:
            raise RpcError(Code.UNAUTHENTICATED, f"{method} needs a swarm node certificate")
        handler = self.handlers.get(method)
        if handler is None:
            raise RpcError(Code.UNIMPLEMENTED, f"unknown method {method!r}")
        outcome = handler(params, peer)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if not hasattr(outcome, "__aiter__"):
            return outcome
        # A streamed answer: items as they come, then the final result null.
        async with contextlib.aclosing(outcome) if hasattr(outcome, "aclose") else contextlib.nullcontext(outcome):
            async for item in outcome:
                if request_id is not None:
                    await connection.send({"id": request_id, "stream": item})
        return None


async def _answers(path: Path) -> bool:
    """Whether a server accepts connections on the unix socket ``path``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


class _ClientConnection(_Connection):
    """A client's connection: routes each answer to the call waiting for it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        super().__init__(reader, writer, MAX_FRAME)
        self.address = address
        self.waiting: dict[int, asyncio.Future | asyncio.Queue] = {}
        self.broken: RpcError | None = None
        self.reader_task = asyncio.create_task(self._route())

    async def _route(self) -> None:
        reason = "closed the connection"
        try:
            while (message := await self.read()) is not None:
                request_id = message.get("id")
                waiter = self.waiting.get(request_id) if type(request_id) is int else None
                if waiter is None:
                    continue  # an answer to a call that timed out or was cancelled
                kind = answer_kind(message)
                value = error_from_wire(message["error"]) if kind == "error" else message[kind]
                if isinstance(waiter, asyncio.Queue):
                    waiter.put_nowait((kind, value))
                elif kind != "stream" and not waiter.done():
                    waiter.set_exception(value) if kind == "error" else waiter.set_result(value)
        except ProtocolError as e:
            log.warning("closing connection to %s: %s", self.address, e)
            reason = f"sent a bad frame ({e})"
        except (ConnectionError, ssl.SSLError, OSError) as e:
            reason = f"connection failed ({e})"
        finally:
            self.fail(RpcError(Code.UNAVAILABLE, f"{self.address}: {reason}"))

    def fail(self, error: RpcError) -> None:
        """Mark the connection broken and end every call waiting on it with ``error``."""
        self.broken = self.broken or error
        for waiter in self.waiting.values():
            if isinstance(waiter, asyncio.Queue):
                waiter.put_nowait(("error", error))
            elif not waiter.done():
                waiter.set_exception(error)
        self.waiting.clear()
        self.writer.close()

    @property
    def usable(self) -> bool:
        return self.broken is None and not self.writer.is_closing()


class RpcClient:
    """Calls methods on one server over one persistent connection, made on the
    first call and made again on the call after it broke (a call in flight when
    it breaks fails with ``Unavailable``: whether it ran is unknown, so it is
    not retried here)."""

    def __init__(self, connect: Callable[[], Awaitable[Streams]], address: str) -> None:
        self.address = address
        self._connect = connect
        self._connection: _ClientConnection | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._ids = itertools.count(1)

    @classmethod
    def tcp(cls, host: str, port: int, ssl_context: ssl.SSLContext, *, server_name: str = MANAGER_OU) -> RpcClient:
        """A client of a node's TCP server. ``server_name`` is the name the server's
        certificate must carry when the context checks names (see ``ca.client_context``):
        only managers serve, and only their certificates carry ``swarm-manager``."""
        return cls(lambda: asyncio.open_connection(host, port, ssl=ssl_context, server_hostname=server_name,
                                                   ssl_handshake_timeout=HANDSHAKE_TIMEOUT), f"{host}:{port}")

    @classmethod
    def unix(cls, path: str | os.PathLike) -> RpcClient:
        return cls(lambda: asyncio.open_unix_connection(str(path)), str(path))

    async def call(self, method: str, params: Mapping[str, Any] | None = None, timeout: float = 10.0) -> Any:
        """The result of ``method``; the server's RpcError, or RpcError("Unavailable")
        when no answer comes within ``timeout`` seconds (connecting included)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connection = await self._connected(timeout)
        request_id = next(self._ids)
        answer = connection.waiting[request_id] = loop.create_future()
        try:
            await self._send(connection, request(request_id, method, params))
            return await asyncio.wait_for(answer, max(deadline - loop.time(), 0))
        except asyncio.TimeoutError:
            await self._cancel(connection, request_id)
            raise RpcError(Code.UNAVAILABLE, f"{method} on {self.address}: no answer within {timeout:g}s") from None
        except asyncio.CancelledError:
            await self._cancel(connection, request_id)
            raise
        finally:
            connection.waiting.pop(request_id, None)

    async def notify(self, method: str, params: Mapping[str, Any] | None = None, timeout: float = 10.0) -> None:
        """Send ``method`` without waiting for (or getting) an answer."""
        connection = await self._connected(timeout)
        await self._send(connection, request(None, method, params))

    async def stream(
        self, method: str, params: Mapping[str, Any] | None = None, timeout: float = 10.0
    ) -> AsyncIterator[Any]:
        """The items a streaming ``method`` sends, as they come. ``timeout`` bounds
        connecting only: a followed log may be quiet for long. Leaving the loop early
        tells the server to stop (use ``contextlib.aclosing`` to leave promptly)."""
        connection = await self._connected(timeout)
        request_id = next(self._ids)
        items: asyncio.Queue = asyncio.Queue()
        connection.waiting[request_id] = items
        finished = False
        try:
            await self._send(connection, request(request_id, method, params))
            while True:
                kind, value = await items.get()
                if kind == "error":
                    finished = True
                    raise value
                if kind == "result":
                    finished = True
                    return
                yield value
        finally:
            connection.waiting.pop(request_id, None)
            if not finished:
                await self._cancel(connection, request_id)

    async def close(self) -> None:
        """End the connection (calls waiting on it fail with ``Unavailable``); a later
        call makes a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.fail(RpcError(Code.UNAVAILABLE, f"client of {self.address} closed"))
            connection.reader_task.cancel()
            await asyncio.gather(connection.reader_task, return_exceptions=True)
            await connection.close()

    async def _connected(self, timeout: float) -> _ClientConnection:
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:  # concurrent first calls share one connection
            if self._connection is not None and self._connection.usable:
                return self._connection
            if self._connection is not None:
                await self._connection.close()
                self._connection = None
            try:
                reader, writer = await asyncio.wait_for(self._connect(), min(timeout, CONNECT_TIMEOUT))
            except asyncio.TimeoutError:
                raise RpcError(Code.UNAVAILABLE, f"cannot connect to {self.address}: timed out") from None
            except (OSError, ssl.SSLError) as e:
                raise RpcError(Code.UNAVAILABLE, f"cannot connect to {self.address}: {e.strerror or e}") from None
            self._connection = _ClientConnection(reader, writer, self.address)
            return self._connection

    async def _send(self, connection: _ClientConnection, message: Mapping[str, Any]) -> None:
        if connection.broken is not None:
            raise connection.broken
        try:
            await connection.send(message)
        except _ConnectionGone as e:
            error = RpcError(Code.UNAVAILABLE, f"{self.address}: connection failed ({e})")
            connection.fail(error)
            raise error from None

    async def _cancel(self, connection: _ClientConnection, request_id: int) -> None:
        """Tell the server to stop a call we no longer wait for (best effort)."""
        if connection.usable:
            with contextlib.suppress(RpcError, asyncio.CancelledError):
                await self._send(connection, {"cancel": request_id})
