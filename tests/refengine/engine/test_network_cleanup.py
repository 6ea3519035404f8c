"""Issue 11's cleanup proof: 50 containers started and removed on a user network,
some of them after a SIGKILL to their supervisor, leave no veth, packet-filter
rule, mount or network namespace behind; removing the network then leaves no
bridge, DNS server or chain."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

from reference_runtime.net.cleanup import leftovers
from reference_runtime.net.netstore import NetworkStore

from .conftest import BASE, needs_kernel

pytestmark = needs_kernel

CONTAINERS = 50
KILLED_SUPERVISOR = range(0, CONTAINERS, 5)  # every fifth: 10 supervisors SIGKILLed
PUBLISHING = range(0, CONTAINERS, 3)         # every third publishes a port: DNAT rules to clean


def _netns_inodes() -> set[int]:
    """The network namespaces some process is in now."""
    out = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
            except OSError:
                continue
    return out


def _iptables() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=30, check=True).stdout


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=30, check=True).stdout


def test_fifty_containers_leave_nothing_behind(refengine, tmp_path):
    root = str(refengine.root)
    created = refengine("network", "create", "--subnet", "10.214.77.0/24", "cleanup-net")
    assert created.returncode == 0, created.stderr
    seen = []  # (id, address, host port or None, netns inode, veth)
    for i in range(CONTAINERS):
        args = ["run", "-d", "--network", "cleanup-net", "--network-alias", "member"]
        if i in PUBLISHING:
            args += ["-p", "127.0.0.1::8080"]
        started = refengine(*args, BASE, "sleep", "600")
        assert started.returncode == 0, f"container {i}: {started.stderr}"
        cid = started.stdout.strip()
        doc = json.loads(refengine("inspect", cid).stdout)[0]
        ep = doc["NetworkSettings"]["Networks"]["cleanup-net"]
        ports = doc["NetworkSettings"]["Ports"].get("8080/tcp") or [{}]
        ino = os.stat(f"/proc/{doc['State']['Pid']}/ns/net").st_ino
        seen.append((cid, ep["IPAddress"], ports[0].get("HostPort"), ino))
    store = NetworkStore(root)
    net = store.find("cleanup-net")
    assert len(os.listdir(f"/sys/class/net/{net['Bridge']}/brif")) == CONTAINERS, "not every container got a veth"
    rules = _iptables()
    for cid, ip, port, _ in seen:
        if port:
            assert f"{ip}:8080" in rules, f"no DNAT rule for {cid[:12]}'s published port"

    for i in KILLED_SUPERVISOR:  # the supervisor dies without undoing anything; the container dies with it
        state = json.loads((refengine.root / "containers" / seen[i][0] / "state.json").read_text())
        os.kill(state["Supervisor"]["Pid"], signal.SIGKILL)
    for cid, *_ in seen:
        removed = refengine("rm", "-f", cid)
        assert removed.returncode == 0, removed.stderr

    deadline = time.monotonic() + 10  # a namespace lives until its last process is reaped
    while time.monotonic() < deadline and {ino for *_, ino in seen} & _netns_inodes():
        time.sleep(0.2)
    assert not {ino for *_, ino in seen} & _netns_inodes(), "a container's network namespace is still in use"
    assert os.listdir(f"/sys/class/net/{net['Bridge']}/brif") == [], "veths are still plugged into the bridge"
    rules = _iptables()
    for cid, ip, port, _ in seen:
        assert not re.search(rf"\b{re.escape(ip)}:8080\b", rules), f"a rule still leads to {cid[:12]} ({ip})"
    mounts = open("/proc/self/mountinfo").read()
    assert root not in mounts, f"mounts of the root remain:\n{[m for m in mounts.splitlines() if root in m]}"
    assert store.endpoints(net["Id"], live=False) == {}, "endpoints of removed containers remain"
    records = json.loads(open(os.path.join(store.dir(net["Id"]), "dns.json")).read())
    assert records["names"] == {}, f"the DNS server still answers for removed containers: {records['names']}"

    gone = refengine("network", "rm", "cleanup-net")
    assert gone.returncode == 0, gone.stderr
    left = leftovers(root)
    assert net["Bridge"] not in left["bridges"] and net["Bridge"] not in _links(), "the network's bridge remains"
    assert left["dns"] == [], f"DNS servers remain: {left['dns']}"
    assert "10.214.77." not in _iptables(), "rules of the removed network remain"
