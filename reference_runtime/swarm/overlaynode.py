"""The data path of the swarm's overlay networks on one node, kept by its agent.

For each overlay network a task of this node is on, the node has (all in the
node's network namespace, where swarmd runs)::

    refengine bridge network NAME      same subnet and gateway as the overlay, labelled
                                       com.docker.swarm.network.id=ID, MTU 1450 (a frame
                                       and the VXLAN header fit in the underlay's 1500);
                                       a task's container joins it with its allocated
                                       address (--ip)
    vxlan cftvxVNI                     id VNI, dstport 4789, local = this node's address,
                                       nolearning; a port of that bridge, MTU 1450
    fdb 00:00:00:00:00:00 dst PEER     one per other node: broadcasts and unknown
                                       destinations go to every peer (head-end replication)
    ebtables DROP of ARP for the gateway through the vxlan port
                                       every node's bridge holds the gateway address (it is
                                       where refengine's embedded DNS listens): its ARP must
                                       stay on the node, or containers would learn a remote
                                       bridge's MAC for it
    <network dir>/swarm-names.json     {"names": {NAME: [IPs]}}: each service's name (its
                                       virtual IP, or its running tasks on every node in
                                       dnsrr mode) and tasks.NAME, for the network's DNS
    nat table of each task container   in the container's own network namespace, as docker
                                       puts its IPVS rules there: a connection to a virtual
                                       IP is sent to the service's running tasks in turn
                                       (:func:`nat_rules`; conntrack keeps the rest of the
                                       connection on the chosen task and turns the replies'
                                       source back into the virtual IP)

and for the routing mesh, when any service publishes a port (:func:`.networks.mesh_view`)::

    the bridge of each network the mesh reaches tasks on, also without a task of this
    node on it, holding this node's own address on it (allocated by the managers)
    nat chain CFT-MESH (from PREROUTING and OUTPUT, for local destinations)
                                       a new connection to a published port goes to the
                                       service's running tasks in turn (on any node)
    nat chain CFT-MESH-POST (first in POSTROUTING)
                                       ... from this node's own address on the network,
                                       so a task on another node answers through this node

The managers send the view this needs with each heartbeat reply
(:func:`.networks.node_overlay`); :meth:`OverlayNode.sync` applies it.
Commands are the ``ip``/``bridge``/``ebtables`` tools and refengine's own CLI,
as a user would type them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from ..atomicfile import write_atomic
from ..errors import ContainerError
from ..net import endpoints, firewall
from ..net.netstore import MTU_OPTION, OVERLAY_LABEL as LABEL, NetworkStore
from . import networks
from .meshproxy import MeshProxy

log = logging.getLogger("swarmd.overlay")

VXLAN_PORT = "4789"
VXLAN_MTU = "1450"
ZERO_MAC = "00:00:00:00:00:00"
CALL_TIMEOUT = 30.0


def vxlan_name(vni: int) -> str:
    """The VXLAN device of a network (at most 15 characters).

    >>> vxlan_name(4097)
    'cftvx4097'
    """
    return f"cftvx{vni}"


def round_robin(head: str, backends: list[str]) -> list[str]:
    """DNAT rules (each begins with ``head``) sending new connections to ``backends`` in
    turn: the first takes every N-th, the next every (N-1)-th of the rest, ..., the last
    the remainder (``statistic --mode nth``; nat rules see only a connection's first packet).

    >>> round_robin("-A C", ["a", "b"])
    ['-A C -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination a', '-A C -j DNAT --to-destination b']
    """
    rules = []
    for at, backend in enumerate(backends):
        left = len(backends) - at
        nth = f" -m statistic --mode nth --every {left} --packet 0" if left > 1 else ""
        rules.append(f"{head}{nth} -j DNAT --to-destination {backend}")
    return rules


def nat_rules(vips: dict[str, list[str]]) -> str:
    """``iptables-restore`` input for a task container's whole nat table: each virtual IP
    balanced round robin per connection between its tasks (``statistic --mode nth``:
    the first rule takes every N-th new connection, the next every (N-1)-th of the
    rest, ...; nat rules see only a connection's first packet). The table is ours to
    replace: nothing else writes it in a task's namespace. A virtual IP without a
    running task gets no rule, so it does not answer.

    >>> print(nat_rules({"10.0.1.2": ["10.0.1.3", "10.0.1.4"], "10.0.1.9": []}), end="")
    *nat
    :PREROUTING ACCEPT [0:0]
    :INPUT ACCEPT [0:0]
    :OUTPUT ACCEPT [0:0]
    :POSTROUTING ACCEPT [0:0]
    :CFT-VIP-0 - [0:0]
    -A OUTPUT -d 10.0.1.2/32 -j CFT-VIP-0
    -A CFT-VIP-0 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.0.1.3
    -A CFT-VIP-0 -j DNAT --to-destination 10.0.1.4
    COMMIT
    """
    lines = ["*nat", *(f":{chain} ACCEPT [0:0]" for chain in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"))]
    rules = []
    for index, (vip, backends) in enumerate(sorted((v, b) for v, b in vips.items() if b)):
        chain = f"CFT-VIP-{index}"
        lines.append(f":{chain} - [0:0]")
        rules.append(f"-A OUTPUT -d {vip}/32 -j {chain}")
        rules += round_robin(f"-A {chain}", backends)
    return "\n".join([*lines, *rules, "COMMIT", ""])


MESH_CHAIN, MESH_POST = "CFT-MESH", "CFT-MESH-POST"
#: jumps into the mesh chains, as ``iptables-save`` prints them (firewall.load adds missing ones)
MESH_JUMPS = {"nat": [f"-A PREROUTING -m addrtype --dst-type LOCAL -j {MESH_CHAIN}",
                      f"-A OUTPUT -m addrtype --dst-type LOCAL -j {MESH_CHAIN}",
                      # before refengine's MASQUERADE of its bridges' hairpin traffic
                      f"-I POSTROUTING 1 -j {MESH_POST}"]}


def mesh_rules(mesh: list[dict], bridges: dict[str, str]) -> str:
    """``iptables-restore --noflush`` input for the node's routing mesh: each published
    port balanced round robin per connection between its backends, and the connections
    sent from the node's own address on the backends' network. ``bridges``: network ID
    -> the bridge of this node for it. A port without a backend gets no rule.

    >>> print(mesh_rules([{"protocol": "tcp", "port": 8080, "network": "n1", "source": "10.0.1.9",
    ...                    "backends": ["10.0.1.3:80", "10.0.1.4:80"]}], {"n1": "br-1"}), end="")
    *nat
    :CFT-MESH - [0:0]
    :CFT-MESH-POST - [0:0]
    -A CFT-MESH -p tcp -m tcp --dport 8080 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.0.1.3:80
    -A CFT-MESH -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.1.4:80
    -A CFT-MESH-POST -o br-1 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -j SNAT --to-source 10.0.1.9
    COMMIT
    """
    pre, post = [], []
    for entry in mesh:
        bridge, backends, source = bridges.get(entry["network"]), entry["backends"], entry["source"]
        proto, port = entry["protocol"], int(entry["port"])
        if not bridge or not backends or not source or (entry.get("balance") == "request" and proto == "tcp"):
            continue  # per-request ports are the mesh proxy's (meshproxy: HTTP, so TCP ones only)
        pre += round_robin(f"-A {MESH_CHAIN} -p {proto} -m {proto} --dport {port}", backends)
        post.append(f"-A {MESH_POST} -o {bridge} -p {proto} -m conntrack --ctstate DNAT --ctorigdstport {port} "
                    f"-j SNAT --to-source {source}")
    return "\n".join(["*nat", f":{MESH_CHAIN} - [0:0]", f":{MESH_POST} - [0:0]", *pre, *post, "COMMIT", ""])


def arp_rules(vxlan: str, gateway: str) -> list[list[str]]:
    """The ebtables rules that keep the gateway's ARP on this node (chain first)."""
    return [["FORWARD", "-o", vxlan, "-p", "ARP", "--arp-ip-dst", gateway, "-j", "DROP"],
            ["OUTPUT", "-o", vxlan, "-p", "ARP", "--arp-ip-src", gateway, "-j", "DROP"],
            ["INPUT", "-i", vxlan, "-p", "ARP", "--arp-ip-src", gateway, "-j", "DROP"]]


class OverlayNode:
    def __init__(self, root_path: str, refengine_argv: list[str]):
        self.root_path = root_path
        self.refengine = refengine_argv
        #: the managers' last view (networks.node_overlay)
        self.view: dict = {}
        self._applied: str = ""
        #: (pid, pid start) of a task container -> the nat rules loaded in its namespace
        self._nat: dict[tuple[int, int], str] = {}
        #: the routing mesh's rules last loaded in the node's namespace
        self._mesh: str = ""
        self.proxy = MeshProxy()
        self._lock = asyncio.Lock()

    async def _run(self, *argv: str, stdin: str | None = None) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stdin=asyncio.subprocess.DEVNULL if stdin is None
                                                    else asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(None if stdin is None else stdin.encode()),
                                              CALL_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return 124, f"{argv[0]} did not finish within {CALL_TIMEOUT:.0f}s"
        return proc.returncode, (out + err).decode(errors="replace")

    def _local(self) -> dict[str, dict]:
        """Overlay ID -> this node's bridge network for it."""
        store = NetworkStore(self.root_path)
        return {n["Labels"][LABEL]: n for n in store.all() if LABEL in (n.get("Labels") or {})}

    # -- before a task's container is created ---------------------------------------------
    async def prepare(self, task: dict) -> None:
        """The bridge networks of the task's overlays (so ``create --network`` finds them)."""
        async with self._lock:
            for attachment in task.get("NetworksAttachments") or []:
                await self._ensure_network(attachment["Network"])

    async def _ensure_network(self, network: dict) -> dict | None:
        local = self._local().get(network["ID"])
        if local is not None:
            return local
        config = network["IPAMOptions"]["Configs"][0]
        status, out = await self._run(*self.refengine, "network", "create", "--subnet", config["Subnet"],
                                      "--gateway", config["Gateway"], "--label", f"{LABEL}={network['ID']}",
                                      "--opt", f"{networks.VXLAN_OPTION}={networks.vni_of(network)}",
                                      "--opt", f"{MTU_OPTION}={VXLAN_MTU}",  # frames must fit in the VXLAN
                                      network["Spec"]["Name"])
        if status != 0:
            log.warning("bridge network for overlay %s: %s", network["Spec"]["Name"], out.strip())
        return self._local().get(network["ID"])

    # -- after each heartbeat, and after a task starts ---------------------------------------
    async def sync(self, force: bool = False) -> None:
        """Make the VXLAN ports, peers, DNS names and virtual IPs match the managers' view
        (``force``: also when the view did not change, as after a task's start)."""
        async with self._lock:
            view = self.view or {}
            stamp = json.dumps(view, sort_keys=True)
            if not force and stamp == self._applied:
                return
            local = self._local()
            store = NetworkStore(self.root_path)
            nat: dict[tuple[int, int], str] = {}
            mesh = view.get("mesh") or []
            for entry in view.get("networks") or []:
                network = entry["network"]
                net = local.get(network["ID"])
                if net is None and any(m["network"] == network["ID"] for m in mesh):
                    net = await self._ensure_network(network)  # the mesh reaches tasks on it from here
                    if net is not None:
                        local[network["ID"]] = net
                if net is None:
                    continue  # made by prepare() when a task needs it
                await self._ensure_vxlan(net, networks.vni_of(network), view.get("addr", ""),
                                         view.get("peers") or [])
                await asyncio.to_thread(self._write_names, net, entry.get("names") or {})
                if entry.get("lb"):
                    await self._ensure_address(net, entry["lb"])
                rules = nat_rules(entry.get("vips") or {})
                for ep in store.endpoints(net["Id"]).values():  # a task is on its first network only
                    nat[(int(ep["Pid"]), int(ep["PidStart"]))] = rules
            await self._load_nat(nat)
            await self._load_mesh(mesh, {i: n["Bridge"] for i, n in local.items()})
            await self.proxy.apply([m for m in mesh if m["source"]])
            wanted = {entry["network"]["ID"] for entry in view.get("networks") or []}
            for network_id, net in local.items():
                if network_id not in wanted and not store.endpoints(net["Id"]):
                    await self._remove(net)
            self._applied = stamp

    async def _ensure_address(self, net: dict, address: str) -> None:
        """This node's own address on the network's bridge (the mesh's source address), and
        no other but the gateway: one it held under an earlier node ID (a leave and a join)
        is free in the store again and may be a task's by now."""
        _, shown = await self._run("ip", "-o", "-4", "addr", "show", "dev", net["Bridge"])
        held = {words[words.index("inet") + 1] for words in map(str.split, shown.splitlines()) if "inet" in words}
        gateway = net["IPAM"]["Config"][0]["Gateway"]
        for stale in sorted(held - {address}):
            if stale.split("/")[0] != gateway:
                await self._run("ip", "addr", "del", stale, "dev", net["Bridge"])
        if address not in held:
            status, out = await self._run("ip", "addr", "add", address, "dev", net["Bridge"])
            if status != 0:
                log.warning("mesh address %s on %s: %s", address, net["Bridge"], out.strip())

    async def _load_mesh(self, mesh: list[dict], bridges: dict[str, str]) -> None:
        rules = mesh_rules(mesh, bridges)
        if rules == self._mesh:
            return
        try:
            if mesh:  # a node that never ran a task has not routed yet
                await asyncio.to_thread(firewall.ensure_forwarding)
            await asyncio.to_thread(firewall.load, rules, MESH_JUMPS)
        except ContainerError as exc:  # tried again at the next sync
            log.warning("routing mesh rules: %s", exc)
        else:
            self._mesh = rules

    async def _load_nat(self, wanted: dict[tuple[int, int], str]) -> None:
        """Each task container's nat rules, loaded where they changed (one iptables-restore
        in its namespace); containers gone are forgotten."""
        for key in set(self._nat) - set(wanted):
            del self._nat[key]
        for (pid, start), rules in sorted(wanted.items()):
            if self._nat.get((pid, start)) == rules:
                continue
            status, out = await self._run("nsenter", f"--net=/proc/{pid}/ns/net", "iptables-restore", "-w", "5",
                                          stdin=rules)
            if status == 0:
                self._nat[(pid, start)] = rules
            else:  # tried again at the next sync; a container that just exited is gone by then
                log.warning("virtual IPs in container %d: %s", pid, out.strip())

    async def _remove(self, net: dict) -> None:
        """A bridge network whose overlay no task of this node is on any more: it goes with
        its VXLAN port and rules (the overlay may be removed, or made again with another ID)."""
        vni = net["Options"].get(networks.VXLAN_OPTION, "")
        if vni.isdigit():
            vxlan = vxlan_name(int(vni))
            for rule in arp_rules(vxlan, net["IPAM"]["Config"][0]["Gateway"]):
                await self._run("ebtables", "-D", *rule)
            await self._run("ip", "link", "del", vxlan)
        status, out = await self._run(*self.refengine, "network", "rm", net["Id"])
        if status != 0:
            log.warning("bridge network %s: %s", net["Name"], out.strip())

    async def _ensure_vxlan(self, net: dict, vni: int, addr: str, peers: list[str]) -> None:
        vxlan = vxlan_name(vni)
        status, _ = await self._run("ip", "link", "show", vxlan)
        if status != 0:
            argv = ["ip", "link", "add", vxlan, "type", "vxlan", "id", str(vni), "dstport", VXLAN_PORT, "nolearning"]
            if addr:
                argv += ["local", addr]
            status, out = await self._run(*argv)
            if status != 0:
                log.warning("vxlan %s: %s", vxlan, out.strip())
                return
            gateway = net["IPAM"]["Config"][0]["Gateway"]
            for rule in arp_rules(vxlan, gateway):
                await self._run("ebtables", "-A", *rule)
        await self._run("ip", "link", "set", vxlan, "mtu", VXLAN_MTU)
        await self._run("ip", "link", "set", vxlan, "master", net["Bridge"])
        await self._run("ip", "link", "set", vxlan, "up")
        _, fdb = await self._run("bridge", "fdb", "show", "dev", vxlan)
        present = {line.split()[line.split().index("dst") + 1] for line in fdb.splitlines()
                   if line.startswith(ZERO_MAC) and "dst" in line.split()}
        for peer in sorted(set(peers) - present):
            await self._run("bridge", "fdb", "append", ZERO_MAC, "dev", vxlan, "dst", peer)
        for peer in sorted(present - set(peers)):
            await self._run("bridge", "fdb", "del", ZERO_MAC, "dev", vxlan, "dst", peer)

    def _write_names(self, net: dict, names: dict[str, list[str]]) -> None:
        store = NetworkStore(self.root_path)
        with store.lock():
            path = Path(store.dir(net["Id"])) / endpoints.SWARM_NAMES
            write_atomic(path, json.dumps({"names": names}, sort_keys=True).encode())
            current = next((n for n in store.all() if n["Id"] == net["Id"]), None)
            if current is not None:
                endpoints.refresh_dns(store, current)

