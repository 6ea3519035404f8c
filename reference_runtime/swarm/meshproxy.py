"""The routing mesh's per-request mode: an HTTP proxy on a node for the published
ports of services labelled ``refengine.mesh.balance=request``.

Why: the mesh's default mode balances connections in the kernel (nat rules,
:func:`.overlaynode.mesh_rules`), as IPVS does in docker; a client that keeps its
connection open then sends every request to one task (moby#25325). For HTTP the
node can do better: it ends the client's connection itself, keeps it open as
the client asks, and sends each request to the next running task (round robin),
on a connection of its own from the node's address on the service's network
(so the task's reply comes back to this node). A task that refuses or drops
the connection before answering (killed, stopping) costs a retry on the next
task, not a failed request: a request whose response has begun is never
retried, nor one a task is slow to answer (504: it may still be at work); an
answer is passed on as it comes. The proxy runs in the node daemon's event
loop (aiohttp's server and client, whose HTTP parsers are in C);
:class:`MeshProxy.apply` follows the managers' view after every heartbeat.
"""

from __future__ import annotations

import asyncio
import itertools
import logging

log = logging.getLogger("swarmd.meshproxy")

REQUEST = "request"
#: Bounded waits (seconds): connecting to a task, and a task's whole answer.
CONNECT_TIMEOUT = 2.0
RESPONSE_TIMEOUT = 60.0
#: The largest request body the proxy takes (it holds a request in memory to be
#: able to send it again to another task): larger ones are refused with 413.
MAX_BODY = 8 * 1024 * 1024
#: How much of a task's answer the proxy holds at a time (answers are streamed).
CHUNK = 64 * 1024
#: Hop-by-hop headers (RFC 9110 7.6.1): they belong to one connection, not to the message.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
                        "upgrade", "host", "content-length"})


#: Methods a proxy may send again after a failure (RFC 9110 9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class _Port:
    """One published port: its server, its backends in turn, the source address."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.backends: list[str] = []
        self.source = ""
        self._turn = itertools.count()
        self.runner = None
        self.session = None
        self.session_source = ""

    def order(self) -> list[str]:
        """The backends starting with the next one in turn (the rest are the retries)."""
        if not self.backends:
            return []
        start = next(self._turn) % len(self.backends)
        return self.backends[start:] + self.backends[:start]


class MeshProxy:
    def __init__(self) -> None:
        self.ports: dict[int, _Port] = {}

    async def apply(self, entries: list[dict]) -> None:
        """Serve exactly the per-request ports of ``entries`` (:func:`.networks.mesh_view`)
        with their current backends."""
        wanted = {int(e["port"]): e for e in entries if e.get("balance") == REQUEST and e["protocol"] == "tcp"}
        for port in set(self.ports) - set(wanted):
            await self._close(self.ports.pop(port))
        for port, entry in wanted.items():
            served = self.ports.get(port)
            if served is None:
                served = _Port(port)
                try:
                    await self._open(served)
                except OSError as exc:  # the port is taken in the node's namespace: tried again next time
                    log.warning("mesh port %d: %s", port, exc)
                    continue
                self.ports[port] = served
            served.backends, served.source = list(entry["backends"]), entry.get("source", "")

    async def close(self) -> None:
        for port in list(self.ports):
            await self._close(self.ports.pop(port))

    async def _open(self, served: _Port) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=MAX_BODY)
        async def handle(request):
            return await self._forward(served, request)
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, "0.0.0.0", served.port, reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        served.runner = runner

    async def _close(self, served: _Port) -> None:
        if served.session is not None:
            await served.session.close()
        if served.runner is not None:
            await served.runner.cleanup()

    def _session(self, served: _Port):
        import aiohttp

        if served.session is None or served.session.closed or served.session_source != served.source:
            old = served.session
            # a connection per request (force_close): busybox-like servers close after each
            # answer anyway, and a pooled connection to a task that is gone would fail a request
            connector = aiohttp.TCPConnector(force_close=True, limit=0,
                                             local_addr=(served.source, 0) if served.source else None)
            served.session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                   timeout=aiohttp.ClientTimeout(total=RESPONSE_TIMEOUT,
                                                                                 sock_connect=CONNECT_TIMEOUT))
            served.session_source = served.source
            if old is not None:
                asyncio.get_running_loop().create_task(old.close())
        return served.session

    async def _forward(self, served: _Port, request):
        import aiohttp
        from aiohttp import web

        body = await request.read()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        headers.append(("Host", request.headers.get("Host", f"{request.url.host}:{served.port}")))
        session, last = self._session(served), "no running task"
        for backend in served.order():
            try:
                answer = await session.request(request.method, f"http://{backend}{request.rel_url}",
                                               headers=headers, data=body or None, allow_redirects=False)
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError) as exc:
                # refused, reset or closed before an answer: nothing reached the client yet, so
                # the request goes to the next task, if it was not sent or is safe to repeat
                last = f"{backend}: {exc.__class__.__name__}"
                if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
                    continue  # never connected: the request did not leave
                if isinstance(exc, asyncio.TimeoutError):
                    # a slow task, not a gone one: it may still be doing the work, and each next
                    # task would get the same request and the same wait (N x RESPONSE_TIMEOUT)
                    return web.Response(status=504, text=f"no task answered in time ({last})\n")
                if request.method in IDEMPOTENT:
                    continue
                break
            try:
                # The answer has begun: it goes to the client as it comes, never held whole (a
                # task's large download would fill the node daemon's memory) and never retried;
                # a task that fails in the middle cuts the client's connection (aiohttp).
                kept = [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP]
                reply = web.StreamResponse(status=answer.status, reason=answer.reason, headers=kept)
                if answer.content_length is not None:
                    reply.content_length = answer.content_length
                await reply.prepare(request)
                async for chunk in answer.content.iter_chunked(CHUNK):
                    await reply.write(chunk)
                await reply.write_eof()
                return reply
            finally:
                answer.release()
        return web.Response(status=502 if served.backends else 503, text=f"no task answered ({last})\n")
