"""The framed RPC: frames, a server over a real unix socket, the asyncio and the
blocking clients. TLS and peer identity are in test_ca.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import struct
from pathlib import Path

import pytest

from reference_runtime.swarm.errors import Code, ProtocolError, RpcError, SwarmError
from reference_runtime.swarm.framing import MAX_FRAME, call_unix, decode_payload, encode_frame, stream_unix
from reference_runtime.swarm.wire import MAX_IN_FLIGHT, RpcClient, RpcServer


def run(coroutine, timeout: float = 10.0):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


# Frames (pure)


def test_frame_round_trip():
    message = {"id": 3, "method": "raft.message", "params": {"term": 2, "text": "é"}}
    frame = encode_frame(message)
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4 and decode_payload(frame[4:]) == message


def test_frame_limit_on_sending():
    with pytest.raises(ProtocolError, match="exceeds the frame limit"):
        encode_frame({"blob": "x" * MAX_FRAME})
    with pytest.raises(ProtocolError, match="not JSON"):
        encode_frame({"x": object()})
    with pytest.raises(ProtocolError, match="not JSON"):
        encode_frame({"x": float("nan")})


@pytest.mark.parametrize("payload", [
    b"\xff\xfe{}", b"{", b"[1, 2]", b'"text"', b"null", b"", b"[" * 100_000, b'{"a":' * 200 + b"1" + b"}" * 200,
])
def test_garbage_payloads_are_protocol_errors(payload):
    with pytest.raises(ProtocolError):
        decode_payload(payload)


# A server on a unix socket


class Harness:
    """Handlers that record what they saw, and release slow calls on demand."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.notified: asyncio.Queue = asyncio.Queue()
        self.cancelled = asyncio.Event()
        self.peers = []
        self.running = 0  # slow calls in progress

    def handlers(self):
        async def echo(params, peer):
            self.peers.append(peer)
            return params

        async def slow(params, peer):
            self.running += 1
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            finally:
                self.running -= 1
            return "slow"

        async def fail(params, peer):
            raise RpcError("NotLeader", "10.0.0.1:2377")

        async def crash(params, peer):
            raise ValueError("boom")

        async def unserializable(params, peer):
            return {"x": object()}

        async def note(params, peer):
            await self.notified.put(params)

        async def count(params, peer):
            for i in range(params["n"]):
                yield {"line": i}
            if params.get("fail"):
                raise RpcError("NotFound", "gone")

        async def follow(params, peer):
            try:
                for i in range(10**9):
                    yield i
                    await asyncio.sleep(0.001)
            finally:
                self.cancelled.set()

        return {"echo": echo, "slow": slow, "fail": fail, "crash": crash, "unserializable": unserializable,
                "note": note, "count": count, "follow": follow}


@contextlib.asynccontextmanager
async def serving(path, harness=None):
    harness = harness or Harness()
    server = RpcServer(harness.handlers())
    await server.listen_unix(path)
    try:
        yield harness
    finally:
        await server.close()


@pytest.fixture
def sock(tmp_path):
    return str(tmp_path / "swarmd.sock")


def test_call_result_and_local_peer(sock):
    async def main():
        async with serving(sock) as harness:
            client = RpcClient.unix(sock)
            assert await client.call("echo", {"a": [1, "é"]}) == {"a": [1, "é"]}
            assert await client.call("echo") == {}
            await client.close()
            (peer,) = harness.peers[1:]
            assert peer.local and peer.authenticated and peer.node_id is None
    run(main())


def test_errors_are_answers_and_the_server_survives(sock):
    async def main():
        async with serving(sock):
            client = RpcClient.unix(sock)
            with pytest.raises(RpcError) as e:
                await client.call("fail", {})
            assert (e.value.code, e.value.message) == ("NotLeader", "10.0.0.1:2377")
            with pytest.raises(RpcError) as e:
                await client.call("crash", {})
            assert (e.value.code, e.value.message) == (Code.INTERNAL, "boom")
            with pytest.raises(RpcError) as e:
                await client.call("nosuch", {})
            assert e.value.code == Code.UNIMPLEMENTED
            with pytest.raises(RpcError) as e:
                await client.call("unserializable", {})
            assert e.value.code == Code.INTERNAL
            assert await client.call("echo", {"still": "here"}) == {"still": "here"}
            await client.close()
    run(main())


def test_one_slow_call_does_not_block_others_on_the_connection(sock):
    async def main():
        async with serving(sock) as harness:
            client = RpcClient.unix(sock)
            slow = asyncio.create_task(client.call("slow", {}))
            fast = await asyncio.gather(*(client.call("echo", {"i": i}) for i in range(20)))
            assert fast == [{"i": i} for i in range(20)] and not slow.done()
            harness.release.set()
            assert await slow == "slow"
            assert len(client._connection.waiting) == 0  # one connection, nothing left waiting
            await client.close()
    run(main())


def test_a_connection_runs_a_bounded_number_of_calls_at_once(sock):
    async def main():
        async with serving(sock) as harness:
            client = RpcClient.unix(sock)
            calls = [asyncio.create_task(client.call("slow", {})) for _ in range(MAX_IN_FLIGHT + 10)]
            for _ in range(500):  # until the server stops taking more
                if harness.running == MAX_IN_FLIGHT:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert harness.running == MAX_IN_FLIGHT
            harness.release.set()
            assert await asyncio.gather(*calls) == ["slow"] * (MAX_IN_FLIGHT + 10)
            await client.close()
    run(main())


def test_notify_gets_no_answer(sock):
    async def main():
        async with serving(sock) as harness:
            client = RpcClient.unix(sock)
            assert await client.notify("note", {"term": 5}) is None
            assert await asyncio.wait_for(harness.notified.get(), 5) == {"term": 5}
            await client.notify("crash", {})  # a failing notification is only logged
            await client.notify("nosuch", {})
            assert await client.call("echo", {"x": 1}) == {"x": 1}
            await client.close()
    run(main())


def test_a_notification_runs_though_the_client_left(sock):
    async def main():
        async with serving(sock) as harness:
            data = frame(b'{"id": null, "method": "note", "params": {"n": 1}}')
            assert await asyncio.to_thread(raw_exchange, sock, data) == b""
            assert await asyncio.wait_for(harness.notified.get(), 5) == {"n": 1}
    run(main())


def test_stream(sock):
    async def main():
        async with serving(sock):
            client = RpcClient.unix(sock)
            assert [item async for item in client.stream("count", {"n": 3})] == [{"line": i} for i in range(3)]
            items = []
            with pytest.raises(RpcError, match="gone"):
                async for item in client.stream("count", {"n": 2, "fail": True}):
                    items.append(item)
            assert items == [{"line": 0}, {"line": 1}]
            # a plain call of a streaming method gets its end only
            assert await client.call("count", {"n": 2}) is None
            await client.close()
    run(main())


def test_leaving_a_stream_stops_the_handler(sock):
    async def main():
        async with serving(sock) as harness:
            client = RpcClient.unix(sock)
            async with contextlib.aclosing(client.stream("follow", {})) as items:
                async for item in items:
                    if item == 3:
                        break
            await asyncio.wait_for(harness.cancelled.wait(), 5)
            assert await client.call("echo", {"after": True}) == {"after": True}
            await client.close()
    run(main())


def test_timeout_is_unavailable_and_cancels_the_handler(sock):
    async def main():
        async with serving(sock) as harness:
            client = RpcClient.unix(sock)
            with pytest.raises(RpcError, match="no answer within 0.2s") as e:
                await client.call("slow", {}, timeout=0.2)
            assert e.value.code == Code.UNAVAILABLE
            await asyncio.wait_for(harness.cancelled.wait(), 5)
            await client.close()
    run(main())


def test_no_server_is_unavailable(sock, tmp_path):
    async def main():
        with pytest.raises(RpcError) as e:
            await RpcClient.unix(sock).call("echo", {}, timeout=2)
        assert e.value.code == Code.UNAVAILABLE
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        import ssl

        with pytest.raises(RpcError) as e:
            await RpcClient.tcp("127.0.0.1", port, ssl.create_default_context()).call("echo", {}, timeout=2)
        assert e.value.code == Code.UNAVAILABLE and "cannot connect" in e.value.message
    run(main())


def test_reconnects_after_the_server_restarts(sock):
    async def main():
        client = RpcClient.unix(sock)
        async with serving(sock):
            assert await client.call("echo", {"n": 1}) == {"n": 1}
        with pytest.raises(RpcError) as e:  # down: the next call says so, and does not hang
            await client.call("echo", {}, timeout=2)
        assert e.value.code == Code.UNAVAILABLE
        async with serving(sock):
            assert await client.call("echo", {"n": 2}) == {"n": 2}
        await client.close()
    run(main())


def test_closing_the_server_fails_calls_in_flight(sock):
    async def main():
        server = RpcServer(Harness().handlers())
        await server.listen_unix(sock)
        client = RpcClient.unix(sock)
        call = asyncio.create_task(client.call("slow", {}, timeout=5))
        await client.call("echo", {})
        await server.close()
        with pytest.raises(RpcError) as e:
            await call
        assert e.value.code == Code.UNAVAILABLE
        assert not os.path.exists(sock)
        await client.close()
    run(main())


# Bad input on the wire: the connection closes, the server goes on


def raw_exchange(path: str, data: bytes, answers: int = 0) -> bytes:
    """Send ``data`` on a fresh connection and return what the server sends: until
    it closes the connection, or (``answers``) until that many frames came."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(data)
        if not answers:
            s.shutdown(socket.SHUT_WR)  # for the torn frames: the server sees their end
        received = b""
        while chunk := s.recv(65536):
            received += chunk
            if answers and len(split_frames(received)) == answers:
                break
        return received


def split_frames(data: bytes) -> list[dict]:
    frames = []
    while len(data) >= 4:
        (length,) = struct.unpack(">I", data[:4])
        if len(data) < 4 + length:
            break
        frames.append(json.loads(data[4:4 + length]))
        data = data[4 + length:]
    return frames


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


@pytest.mark.parametrize("data", [
    struct.pack(">I", MAX_FRAME + 1) + b"{}",  # too long: refused before reading it
    struct.pack(">I", 0xFFFFFFFF),
    frame(b"\xff\xfe"),
    frame(b"{not json"),
    frame(b"[1,2,3]"),
    frame(b"[" * 50_000 + b"]" * 50_000),
    frame(b'{"id": "seven", "method": "echo"}'),
    frame(b'{"id": [1], "method": "echo"}'),
    frame(b'{"id": true, "method": "echo"}'),
    frame(b'{"id": 1, "method": "slow"}') + frame(b'{"id": 1, "method": "echo"}'),  # an id in use
    b"\x00\x00",  # a torn header
    struct.pack(">I", 10) + b"{}",  # a torn frame
])
def test_garbage_closes_the_connection_not_the_server(sock, data, caplog):
    async def main():
        async with serving(sock):
            assert await asyncio.to_thread(raw_exchange, sock, data) == b""
            assert await asyncio.to_thread(call_unix, sock, "echo", {"ok": 1}, 5) == {"ok": 1}
    run(main())
    assert "Traceback" not in caplog.text


def test_a_request_of_the_wrong_shape_is_answered(sock):
    async def main():
        async with serving(sock):
            data = frame(b'{"id": 4, "method": 7}') + frame(b'{"id": 5, "method": "echo", "params": [1]}')
            data += frame(b'{"id": null, "method": 7}') + frame(b'{"cancel": "x"}') + frame(b'{"cancel": 99}')
            data += frame(b'{"id": 6, "method": "echo", "params": {"good": 1}}')
            answers = split_frames(await asyncio.to_thread(raw_exchange, sock, data, 3))
            by_id = {a["id"]: a for a in answers}
            assert set(by_id) == {4, 5, 6}
            assert by_id[4]["error"]["code"] == by_id[5]["error"]["code"] == Code.INVALID_ARGUMENT
            assert by_id[6] == {"id": 6, "result": {"good": 1}}
    run(main())


# The unix socket


def test_unix_socket_is_private_and_replaces_a_stale_one(sock):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock)
    stale.close()  # a socket file nobody listens on: what a killed swarmd leaves

    async def main():
        async with serving(sock):
            mode = os.stat(sock).st_mode
            assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
            with pytest.raises(SwarmError, match="already listens"):
                await RpcServer({}).listen_unix(sock)
            assert await asyncio.to_thread(call_unix, sock, "echo", {"x": 1}, 5) == {"x": 1}
    run(main())
    assert not os.path.exists(sock)
    assert os.listdir(os.path.dirname(sock)) == []


def test_unix_socket_path_errors_are_swarm_errors(tmp_path):
    with pytest.raises(SwarmError, match="cannot listen on"):
        run(RpcServer({}).listen_unix(tmp_path / ("x" * 120) / "swarmd.sock"))


def test_unix_socket_refuses_to_replace_a_regular_file(sock):
    with open(sock, "w") as f:
        f.write("precious")
    with pytest.raises(SwarmError, match="not a socket"):
        run(RpcServer({}).listen_unix(sock))
    assert Path(sock).read_text() == "precious"


# The blocking client


def test_blocking_client(sock):
    async def main():
        async with serving(sock) as harness:
            assert await asyncio.to_thread(call_unix, sock, "echo", {"a": 1}) == {"a": 1}
            with pytest.raises(RpcError) as e:
                await asyncio.to_thread(call_unix, sock, "fail", {})
            assert e.value.code == "NotLeader"
            with pytest.raises(RpcError, match="no answer") as e:
                await asyncio.to_thread(call_unix, sock, "slow", {}, 0.3)
            assert e.value.code == Code.UNAVAILABLE
            await asyncio.wait_for(harness.cancelled.wait(), 5)  # the closed connection ended it
            items = await asyncio.to_thread(lambda: list(stream_unix(sock, "count", {"n": 4}, idle_timeout=5)))
            assert items == [{"line": i} for i in range(4)]

            def first_of_follow():
                with contextlib.closing(stream_unix(sock, "follow", {}, idle_timeout=5)) as items:
                    return next(items), next(items)

            harness.cancelled.clear()
            assert await asyncio.to_thread(first_of_follow) == (0, 1)
            await asyncio.wait_for(harness.cancelled.wait(), 5)
    run(main())
    with pytest.raises(RpcError) as e:
        call_unix(sock, "echo", {}, 1)
    assert e.value.code == Code.UNAVAILABLE and sock in e.value.message


def test_blocking_client_does_not_import_asyncio():
    import subprocess
    import sys

    code = "import sys, reference_runtime.swarm.framing; print('asyncio' in sys.modules, 'ssl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.split() == ["False", "False"]
