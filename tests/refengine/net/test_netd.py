"""The resident network helper: it serves ``links`` operations for its root,
refuses anything else in one line, exits when its socket goes, and a caller
that cannot reach it does the work itself."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from reference_runtime.errors import ContainerError
from reference_runtime.net import links, netd

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="netlink changes need root")


@pytest.fixture
def root(tmp_path):
    (tmp_path / "networks").mkdir()
    yield str(tmp_path)
    netd.stop(str(tmp_path))


def _helper_pid(root: str) -> int | None:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"reference_runtime.net.netd" in argv and root.encode() in argv:
                return int(pid)
    return None


@needs_root
def test_started_on_first_use_serves_and_exits_when_its_socket_goes(root):
    name = f"rftest{os.getpid() % 100000:05d}"
    try:
        netd.call(root, "ensure_bridge", ifname=name, gateway="10.217.3.1", prefixlen=24)
        assert name in links.interfaces("rftest")
        pid = _helper_pid(root)
        assert pid, "no helper process serves the root"
        netd.call(root, "delete_link", ifname=name)
        assert name not in links.interfaces("rftest")
        netd.stop(root)
        deadline = time.monotonic() + 3 * netd.WATCH
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{pid}/cmdline") or b"netd" not in open(f"/proc/{pid}/cmdline", "rb").read()
    finally:
        links.delete_link(name)


@needs_root
def test_unknown_operations_and_bad_arguments_are_refused_in_one_line(root):
    netd.call(root, "delete_link", ifname="rfnosuchlink0")  # starts it; deleting nothing is fine
    for request in ({"op": "os.system", "args": {}}, {"op": "plug", "args": {"pid": "x"}}, {"op": "plug", "args": []}):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(netd.socket_path(root))
            s.sendall(json.dumps(request).encode() + b"\n")
            reply = json.loads(s.makefile().readline())
        assert "error" in reply and "\n" not in reply["error"], reply
    with pytest.raises(ContainerError):
        netd.call(root, "plug", pid=1, bridge="rfnosuchbridge", host_if="venosuch0", ifname="eth9",
                  address="10.217.4.2", prefixlen=24, mac="02:42:0a:d9:04:02", gateway="")


@needs_root
def test_a_dead_socket_file_is_replaced_and_a_broken_helper_falls_back(root, monkeypatch):
    path = netd.socket_path(root)
    with socket.socket(socket.AF_UNIX) as stale:  # a socket file nobody listens on (a copied root's)
        stale.bind(path)
    netd.call(root, "delete_link", ifname="rfnosuchlink1")
    assert _helper_pid(root)
    netd.stop(root)
    monkeypatch.setattr(netd, "_spawn", lambda root_path: False)  # cannot start: done in-process
    done = []
    monkeypatch.setattr(links, "delete_link", lambda ifname: done.append(ifname))
    netd.call(root, "delete_link", ifname="rfnosuchlink2")
    assert done == ["rfnosuchlink2"]
