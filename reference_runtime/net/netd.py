"""A resident helper per state root that keeps pyroute2 loaded: the kernel
side of a container start (bridge, veth, address, route) is one request to
it instead of importing pyroute2 in every supervisor.

Why: pyroute2 0.9 imports every netlink family and asyncio, about 150 ms,
which was three quarters of a start on a bridge network; the plumbing itself
takes about 10 ms. netavark and aardvark split the same way for the same
reason. ``refengine`` stays daemonless in what matters: this helper holds no
state (each request says everything), it is started on first use, exits
after :data:`IDLE` seconds without a request or when its socket or its root
goes away, and any failure to reach it falls back to doing the work in the
calling process, so it is never needed for correctness.

Protocol: one JSON line per connection, ``{"op": NAME, "args": {...}}``, one
JSON line back, ``{"ok": RESULT}`` or ``{"error": MESSAGE}``; NAME is one of
:data:`OPERATIONS` (functions of :mod:`.links`). The socket lives in the
root's ``networks`` directory, mode 0600: only root reaches it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from ..errors import ContainerError

OPERATIONS = ("ensure_bridge", "plug", "unplug", "delete_link")
IDLE = 600.0
WATCH = 2.0
READY = 5.0
REPLY = 60.0


def socket_path(root_path: str) -> str:
    return os.path.join(root_path, "networks", "netd.sock")


def call(root_path: str, op: str, **args):
    """``links.<op>(**args)``, by the root's helper (started if needed), else here."""
    path = socket_path(root_path)
    try:
        return _request(path, op, args)
    except (FileNotFoundError, ConnectionRefusedError):
        if _spawn(root_path):
            try:
                return _request(path, op, args)
            except (FileNotFoundError, ConnectionRefusedError, TimeoutError):
                pass
    except TimeoutError:
        pass
    from . import links

    return getattr(links, op)(**args)


def _request(path: str, op: str, args: dict):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(REPLY)
        s.connect(path)
        s.sendall(json.dumps({"op": op, "args": args}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionRefusedError("the network helper closed the connection")
            data += chunk
    reply = json.loads(data)
    if "error" in reply:
        raise ContainerError(reply["error"])
    return reply.get("ok")


def _spawn(root_path: str) -> bool:
    """Start the helper and wait until its socket accepts; whether it did."""
    import subprocess

    netdir = os.path.join(root_path, "networks")
    try:
        with open(os.path.join(netdir, "netd.log"), "ab") as log:
            subprocess.Popen([sys.executable, "-m", __name__, root_path], stdin=subprocess.DEVNULL, stdout=log,
                             stderr=log, cwd="/", start_new_session=True)
    except OSError:
        return False
    deadline = time.monotonic() + READY
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(socket_path(root_path))
                return True
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.01)
    return False


def _handle(conn: socket.socket) -> None:
    from . import links

    conn.settimeout(REPLY)
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < 65536:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        request = json.loads(data)
        op, args = request["op"], request["args"]
        if op not in OPERATIONS or not isinstance(args, dict):
            raise ContainerError(f"unknown operation {op!r}")
        reply = {"ok": getattr(links, op)(**args)}
    except ContainerError as exc:
        reply = {"error": str(exc)}
    except (ValueError, KeyError, TypeError) as exc:
        reply = {"error": f"bad request to the network helper: {exc}"}
    except OSError:
        return
    try:
        conn.sendall(json.dumps(reply).encode() + b"\n")
    except OSError:
        pass


def serve(root_path: str) -> int:
    """The helper's life: one instance per root (an flock), the socket bound before
    pyroute2 loads (early clients wait in the backlog), requests one at a time."""
    import fcntl

    netdir = os.path.join(root_path, "networks")
    lock = os.open(os.path.join(netdir, "netd.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another helper serves this root
    path = socket_path(root_path)
    try:
        os.unlink(path)  # a dead helper's (or a copied root's) socket file
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(path)
    finally:
        os.umask(old)
    server.listen(64)
    server.settimeout(WATCH)
    inode = os.stat(path).st_ino
    from pyroute2 import IPRoute  # noqa: F401 - the point of this process: loaded once

    last = time.monotonic()
    while True:
        try:
            conn, _ = server.accept()
        except socket.timeout:
            try:
                if os.stat(path).st_ino != inode:
                    return 0  # another helper took over, or cleanup removed ours
            except FileNotFoundError:
                return 0
            if time.monotonic() - last > IDLE:
                os.unlink(path)
                return 0
            continue
        with conn:
            _handle(conn)
        last = time.monotonic()


def stop(root_path: str) -> None:
    """Make the root's helper exit (within :data:`WATCH` seconds): its socket goes."""
    try:
        os.unlink(socket_path(root_path))
    except FileNotFoundError:
        pass


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
