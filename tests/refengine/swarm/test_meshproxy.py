"""The routing mesh's per-request HTTP mode (reference_runtime/swarm/meshproxy.py),
with real sockets on loopback: round robin per request on one kept connection,
a gone task costs a retry rather than a failed request, the view's changes."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp import web

from reference_runtime.swarm.meshproxy import MeshProxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _backend(name: str) -> tuple[web.AppRunner, str]:
    async def answer(request):
        return web.Response(text=name, headers={"Connection": "close"})
    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"127.0.0.1:{port}"


def _entry(port: int, backends: list[str], balance: str = "request") -> dict:
    return {"protocol": "tcp", "port": port, "network": "n1", "source": "127.0.0.1", "backends": backends,
            "balance": balance}


def test_requests_on_one_kept_connection_go_to_each_task_in_turn_and_a_gone_task_costs_a_retry():
    async def scenario():
        backends = [await _backend(name) for name in ("a", "b", "c")]
        proxy, port = MeshProxy(), _free_port()
        await proxy.apply([_entry(port, [address for _, address in backends])])
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as client:
                seen = [await (await client.get(f"http://127.0.0.1:{port}/")).text() for _ in range(9)]
                assert seen == ["a", "b", "c"] * 3
                # one client connection carried them all: the proxy keeps it while the tasks close theirs
                assert len(client.connector._conns) == 1
                await backends[1][0].cleanup()  # "b" is gone before the view says so
                after = [(r.status, await r.text()) for r in [await client.get(f"http://127.0.0.1:{port}/")
                                                                for _ in range(6)]]
                assert after and all(status == 200 for status, _ in after), after
                assert {text for _, text in after} == {"a", "c"}
                await proxy.apply([_entry(port, [])])  # no running task
                empty = await client.get(f"http://127.0.0.1:{port}/")
                assert empty.status == 503
            await proxy.apply([_entry(port, [backends[0][1]], balance="connection")])  # the kernel's now
            assert not proxy.ports
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0, "the port is still served"
        finally:
            await proxy.close()
            for runner, _ in backends:
                await runner.cleanup()
    asyncio.run(scenario())
