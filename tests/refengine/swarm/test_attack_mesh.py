"""An attacker's and a careless user's view of the routing mesh and virtual IPs
(reference_runtime/swarm/networks.py, state.py, meshproxy.py, agent.py): specs
that would break every node's rules or capture the nodes' own traffic, addresses
that leak, a proxy that held whole answers, an unhealthy task left in rotation."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest
from aiohttp import web

from reference_runtime.swarm import agent as agent_module
from reference_runtime.swarm.agent import Agent, Container
from reference_runtime.swarm.meshproxy import MeshProxy
from reference_runtime.swarm.networks import NetworkError, ingress_network, lb_commands, resolve_ports
from reference_runtime.swarm.state import StoreError, apply

from .sim import Sim, spec

AT = "2026-11-28T17:00:00.000000001Z"


def _apply(state, command):
    return apply(state, command, state.index + 1)


def _ports(*ports: dict) -> dict:
    return {"ID": "s1", "Spec": {"Name": "web", "EndpointSpec": {"Ports": list(ports)}}}


def _published(sim: Sim, name: str, replicas: int = 1) -> str:
    service = spec(name, replicas)
    service["EndpointSpec"] = {"Ports": [{"TargetPort": 80}]}
    return sim.create(service)


# -- the store ---------------------------------------------------------------------
def test_a_boolean_port_is_refused_it_would_reach_every_nodes_nat_rules_as_True():
    # Python's True is an int: TargetPort true became "10.0.1.3:True" in the mesh rules,
    # and the one iptables-restore of each node's whole mesh then failed on every node
    with pytest.raises(NetworkError, match="invalid port"):
        resolve_ports(_ports({"TargetPort": True}), [])
    with pytest.raises(NetworkError, match="invalid port"):
        resolve_ports(_ports({"TargetPort": 80, "PublishedPort": True}), [])
    sim = Sim(nodes=1)
    service = spec("web")
    service["EndpointSpec"] = {"Ports": [{"TargetPort": True}]}
    with pytest.raises(StoreError, match="invalid port"):
        _apply(sim.state, {"op": "service.create", "id": "s1", "at": AT, "spec": service})


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_port_53_is_not_published_it_would_take_every_containers_dns(protocol):
    # refengine's embedded DNS listens on each bridge's gateway, a local address of the
    # node: the mesh's DNAT of local destinations would send every container's queries
    # to the publishing service, which could answer them
    with pytest.raises(NetworkError, match="swarm's own"):
        resolve_ports(_ports({"TargetPort": 5353, "PublishedPort": 53, "Protocol": protocol}), [])


def test_tens_of_thousands_of_ports_resolve_in_linear_time():
    # every manager resolves them inside apply, at every replay of the log: the duplicate
    # check was quadratic (minutes for a spec that fits in one frame)
    many = _ports(*({"TargetPort": 80, "PublishedPort": n} for n in range(40000, 60000)))
    started = time.monotonic()
    assert len(resolve_ports(many, [])) == 20000
    assert time.monotonic() - started < 2.0


def test_a_removed_node_frees_its_mesh_address_so_node_churn_never_fills_the_network():
    sim = Sim(nodes=1)
    _apply(sim.state, {"op": "network.create", "id": "ing", "at": AT, "network": ingress_network()})
    sid = _published(sim, "web", replicas=0)
    assert sim.state.services[sid]["Endpoint"]["Ports"][0]["PublishedPort"] == 30000
    for number in range(300):  # more joins than the /24 has addresses: each join is a new node ID
        node_id = sim.add_node(f"w{number}")
        for command in lb_commands(sim.state.nodes, sim.state.services, sim.state.networks):
            sim.propose(command)
        assert node_id in sim.state.networks["ing"]["_lb"]
        sim.propose({"op": "node.remove", "id": node_id, "at": sim.at, "force": True})
        assert node_id not in sim.state.networks["ing"]["_lb"]
    assert not sim.refused, sim.refused[:1]
    assert len(sim.state.networks["ing"]["_lb"]) == 1  # the manager's


def test_ingress_cannot_be_removed_while_a_published_service_depends_on_it():
    sim = Sim(nodes=1)
    _apply(sim.state, {"op": "network.create", "id": "ing", "at": AT, "network": ingress_network()})
    sid = _published(sim, "web", replicas=0)  # no task holds ingress yet
    with pytest.raises(StoreError, match=f"ingress network cannot be removed because service {sid} depends on it"):
        _apply(sim.state, {"op": "network.remove", "id": "ing"})
    _apply(sim.state, {"op": "service.remove", "id": sid, "at": AT})
    _apply(sim.state, {"op": "network.remove", "id": "ing"})
    assert "ing" not in sim.state.networks


# -- the mesh proxy ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_tasks_answer_is_streamed_through_the_proxy_not_held_whole_in_the_daemon():
    async def scenario():
        release = asyncio.Event()

        async def download(request):  # a large or slow answer: its first part, then the rest later
            reply = web.StreamResponse()
            await reply.prepare(request)
            await reply.write(b"first part;")
            await release.wait()
            await reply.write(b"the rest")
            await reply.write_eof()
            return reply
        app = web.Application()
        app.router.add_get("/{tail:.*}", download)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        backend = _free_port()
        await web.TCPSite(runner, "127.0.0.1", backend).start()
        proxy, port = MeshProxy(), _free_port()
        await proxy.apply([{"protocol": "tcp", "port": port, "network": "n1", "source": "127.0.0.1",
                            "backends": [f"127.0.0.1:{backend}"], "balance": "request"}])
        try:
            async with aiohttp.ClientSession() as client:
                async def first_part():
                    answer = await client.get(f"http://127.0.0.1:{port}/big")
                    return answer, await answer.content.readexactly(len(b"first part;"))
                try:
                    answer, head = await asyncio.wait_for(first_part(), 5)
                except asyncio.TimeoutError:
                    pytest.fail("the proxy held the task's answer instead of passing it on")
                assert answer.status == 200 and head == b"first part;"
                release.set()
                assert await answer.content.read() == b"the rest"
        finally:
            release.set()
            await proxy.close()
            await runner.cleanup()
    asyncio.run(scenario())


# -- the agent -----------------------------------------------------------------------
def test_an_unhealthy_task_is_reported_failed_before_its_container_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(agent_module, "ROTATION_DRAIN", 0.0)

    async def scenario():
        agent = Agent(str(tmp_path), "n1")
        stopping, release = asyncio.Event(), asyncio.Event()

        async def call(*args, timeout=0.0):
            if args[0] == "stop":  # a stop waits out the task's grace period (10 s by default)
                stopping.set()
                await release.wait()
            return 0, "", ""
        agent.call = call
        agent.containers = lambda: {}
        task = {"ID": "t1", "Spec": {"ContainerSpec": {}}, "DesiredState": "running",
                "Status": {"State": "running"}}
        agent._observe(task, Container("c1", "t1", True, "running", 0, 42, "", health="unhealthy"))
        await asyncio.wait_for(stopping.wait(), 5)
        # the failure is known while the container stops: every node drops it from its rotation
        assert agent.pending.get("t1", {}).get("State") == "failed"
        assert agent.pending["t1"]["Err"] == "task: container unhealthy"
        release.set()
        await asyncio.gather(*agent.busy.values())
    asyncio.run(scenario())


# -- the node's data path ------------------------------------------------------------
def test_a_bridge_keeps_its_gateway_and_the_nodes_current_mesh_address_only(tmp_path):
    # a node that left and joined again (a new node ID) holds a new mesh address; its old
    # one is free in the store (node.remove) and may be a task's: it must leave the bridge
    from reference_runtime.swarm.overlaynode import OverlayNode

    node, calls = OverlayNode(str(tmp_path), ["refengine"]), []

    async def run(*argv, stdin=None):
        calls.append(argv)
        if argv[:3] == ("ip", "-o", "-4"):
            return 0, ("7: br-1    inet 10.0.0.1/24 brd 10.0.0.255 scope global br-1\\       valid_lft forever\n"
                       "7: br-1    inet 10.0.0.7/24 scope global secondary br-1\\       valid_lft forever\n")
        return 0, ""
    node._run = run
    net = {"Bridge": "br-1", "IPAM": {"Config": [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]}}
    asyncio.run(node._ensure_address(net, "10.0.0.9/24"))
    assert ("ip", "addr", "del", "10.0.0.7/24", "dev", "br-1") in calls
    assert ("ip", "addr", "add", "10.0.0.9/24", "dev", "br-1") in calls
    assert not [c for c in calls if c[:3] == ("ip", "addr", "del") and c[3].startswith("10.0.0.1/")]
    calls.clear()
    asyncio.run(node._ensure_address(net, "10.0.0.7/24"))  # held already: nothing to do
    assert [c for c in calls if c[:2] == ("ip", "addr") and c[2] != "show"] == []


def test_a_node_that_leaves_the_swarm_takes_its_routing_mesh_down(tmp_path, monkeypatch):
    # after `swarm leave` the node's nat rules kept sending its published ports into the
    # swarm's overlays (and its bridges stayed on them), until a next swarm replaced them
    from reference_runtime.swarm import overlaynode

    loaded: list[str] = []
    monkeypatch.setattr(overlaynode.firewall, "load", lambda text, jumps: loaded.append(text))
    monkeypatch.setattr(overlaynode.firewall, "ensure_forwarding", lambda: None)

    async def scenario():
        agent, calls = Agent(str(tmp_path), "n1"), []
        agent.containers = lambda: {}

        async def run(*argv, stdin=None):
            calls.append(argv)
            return 0, ""
        agent.overlay._run = run
        bridge = {"Id": "b1", "Name": "front", "Bridge": "br-1",
                  "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
                  "IPAM": {"Config": [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]}}
        agent.overlay._local = lambda: {"n1": bridge}
        agent.overlay.view = {"networks": [], "mesh": [
            {"protocol": "tcp", "port": 30000, "network": "n1", "source": "10.0.1.9", "backends": ["10.0.1.3:80"],
             "balance": "connection"}]}
        await agent.overlay.sync()
        assert "DNAT" in loaded[-1]
        await agent.remove_all()
        assert "DNAT" not in loaded[-1] and "SNAT" not in loaded[-1]
        await agent.close()
    asyncio.run(scenario())


def test_a_slow_task_is_not_sent_the_request_again_on_every_other_task(monkeypatch):
    # a timeout is not a gone task: the first may still be at work, and each next one got
    # the same request and the same wait (a slow GET ran on every task, N x 60 s)
    from reference_runtime.swarm import meshproxy

    monkeypatch.setattr(meshproxy, "RESPONSE_TIMEOUT", 0.5)

    async def scenario():
        hits, release, runners = [], asyncio.Event(), []

        def slow(name):
            async def answer(request):
                hits.append(name)
                await release.wait()
                return web.Response(text=name)
            return answer
        backends = []
        for name in ("a", "b"):
            app = web.Application()
            app.router.add_get("/{tail:.*}", slow(name))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            port = _free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
            backends.append(f"127.0.0.1:{port}")
        proxy, port = MeshProxy(), _free_port()
        await proxy.apply([{"protocol": "tcp", "port": port, "network": "n1", "source": "127.0.0.1",
                            "backends": backends, "balance": "request"}])
        try:
            async with aiohttp.ClientSession() as client:
                answer = await client.get(f"http://127.0.0.1:{port}/report")
                assert answer.status == 504
                assert len(hits) == 1, hits
        finally:
            release.set()
            await proxy.close()
            for runner in runners:
                await runner.cleanup()
    asyncio.run(scenario())


def test_a_udp_port_of_a_per_request_service_is_still_published_by_the_kernel():
    # the proxy serves HTTP (TCP) only: the service's UDP port was published nowhere
    from reference_runtime.swarm.overlaynode import mesh_rules

    udp = {"protocol": "udp", "port": 30001, "network": "n1", "source": "10.0.1.9", "backends": ["10.0.1.3:53"],
           "balance": "request"}
    assert "-p udp -m udp --dport 30001" in mesh_rules([udp], {"n1": "br-1"})
    assert "--dport" not in mesh_rules([dict(udp, protocol="tcp")], {"n1": "br-1"})


def test_a_managers_own_port_is_not_published_also_when_it_is_not_2377():
    # `swarm init --listen-addr 0.0.0.0:2400`: the mesh's DNAT of 2400 on every node would
    # send the managers' Raft and the agents' heartbeats to the service
    managers = [{"ID": "m1", "ManagerStatus": {"Addr": "10.0.0.1:2400"}}, {"ID": "w1"}]
    with pytest.raises(NetworkError, match="swarm's own"):
        resolve_ports(_ports({"TargetPort": 80, "PublishedPort": 2400}), [], managers)
    assert resolve_ports(_ports({"TargetPort": 80, "PublishedPort": 2400, "Protocol": "udp"}), [], managers)
    busy = [{"ID": "m1", "ManagerStatus": {"Addr": "10.0.0.1:30000"}}]
    assert resolve_ports(_ports({"TargetPort": 80}), [], busy)[0]["PublishedPort"] == 30001
    sim = Sim(nodes=1)
    manager = next(iter(sim.state.nodes.values()))
    manager["ManagerStatus"]["Addr"] = "10.0.0.1:2400"
    service = spec("web")
    service["EndpointSpec"] = {"Ports": [{"TargetPort": 80, "PublishedPort": 2400}]}
    with pytest.raises(StoreError, match="swarm's own"):
        _apply(sim.state, {"op": "service.create", "id": "s1", "at": AT, "spec": service})


def test_a_network_mtu_that_is_a_digit_only_to_unicode_does_not_break_every_container_start():
    # "²".isdigit() is True: the option passed `network create` and each container's
    # attach then failed in int()
    from reference_runtime.net import netstore

    assert netstore.mtu({"Options": {netstore.MTU_OPTION: "²"}}) == 0
    assert netstore.mtu({"Options": {netstore.MTU_OPTION: "1450"}}) == 1450
