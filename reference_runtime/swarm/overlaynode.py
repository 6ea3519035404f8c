"""The data path of the swarm's overlay networks on one node, kept by its agent.

For each overlay network a task of this node is on, the node has (all in the
node's network namespace, where swarmd runs)::

    refengine bridge network NAME      same subnet and gateway as the overlay, labelled
                                       com.docker.swarm.network.id=ID; a task's container
                                       joins it with its allocated address (--ip)
    vxlan cftvxVNI                     id VNI, dstport 4789, local = this node's address,
                                       nolearning; a port of that bridge, MTU 1450
    fdb 00:00:00:00:00:00 dst PEER     one per other node: broadcasts and unknown
                                       destinations go to every peer (head-end replication)
    ebtables DROP of ARP for the gateway through the vxlan port
                                       every node's bridge holds the gateway address (it is
                                       where refengine's embedded DNS listens): its ARP must
                                       stay on the node, or containers would learn a remote
                                       bridge's MAC for it
    <network dir>/swarm-names.json     {"names": {SERVICE: [task IPs]}}: the running tasks
                                       of the network's services on every node, merged into
                                       the network's DNS records (DNS round robin)

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
from ..net import endpoints
from ..net.netstore import OVERLAY_LABEL as LABEL, NetworkStore
from . import networks

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
        self._lock = asyncio.Lock()

    async def _run(self, *argv: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                    start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), CALL_TIMEOUT)
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
                                      network["Spec"]["Name"])
        if status != 0:
            log.warning("bridge network for overlay %s: %s", network["Spec"]["Name"], out.strip())
        return self._local().get(network["ID"])

    # -- after each heartbeat, and after a task starts ---------------------------------------
    async def sync(self, force: bool = False) -> None:
        """Make the VXLAN ports, peers and DNS names match the managers' view."""
        async with self._lock:
            view = self.view or {}
            stamp = json.dumps(view, sort_keys=True)
            if not force and stamp == self._applied:
                return
            local = self._local()
            for entry in view.get("networks") or []:
                network = entry["network"]
                net = local.get(network["ID"])
                if net is None:
                    continue  # made by prepare() when a task needs it
                await self._ensure_vxlan(net, networks.vni_of(network), view.get("addr", ""),
                                         view.get("peers") or [])
                await asyncio.to_thread(self._write_names, net, entry.get("names") or {})
            wanted = {entry["network"]["ID"] for entry in view.get("networks") or []}
            store = NetworkStore(self.root_path)
            for network_id, net in local.items():
                if network_id not in wanted and not store.endpoints(net["Id"]):
                    await self._remove(net)
            self._applied = stamp

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

