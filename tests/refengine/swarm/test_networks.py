"""Overlay networks in the store: addresses of tasks, removal of a network in use,
the agent's view, and the DNS names it adds (reference_runtime/swarm/networks.py)."""

from __future__ import annotations

import ipaddress

import pytest

from reference_runtime.net.endpoints import merge_names
from reference_runtime.swarm import taskspec
from reference_runtime.swarm.networks import new_network, next_subnet, node_overlay
from reference_runtime.swarm.state import StoreError, apply

from .sim import Sim, spec

AT = "2026-11-28T17:00:00.000000001Z"


def _apply(state, command):
    return apply(state, command, state.index + 1)


def _sim_with_network(name: str = "front") -> tuple[Sim, str]:
    sim = Sim(nodes=2)
    _apply(sim.state, {"op": "network.create", "id": "net1", "at": AT,
                       "network": new_network(name, {}, "10.0.1.0/24", 4097)})
    service = spec("web", 3)
    service["TaskTemplate"]["Networks"] = [{"Target": name}]
    sid = sim.create(service)
    return sim, sid


def _task(sim: Sim, sid: str, task_id: str, slot: int, live: list[str] = ()) -> dict:
    _apply(sim.state, {"op": "task.create", "id": task_id, "at": AT, "service": sid, "slot": slot,
                       "expect_live": list(live)})
    return sim.state.tasks[task_id]


def test_tasks_get_distinct_addresses_after_the_gateway_in_docker_shape():
    sim, sid = _sim_with_network()
    first, second = _task(sim, sid, "t1", 1), _task(sim, sid, "t2", 2)
    [attachment] = first["NetworksAttachments"]
    assert attachment["Network"]["ID"] == "net1" and attachment["Network"]["Spec"]["Name"] == "front"
    # 10.0.1.2 is the service's virtual IP
    assert attachment["Addresses"] == ["10.0.1.3/24"]
    assert second["NetworksAttachments"][0]["Addresses"] == ["10.0.1.4/24"]


def test_an_address_is_free_again_once_its_task_is_final():
    sim, sid = _sim_with_network()
    _task(sim, sid, "t1", 1)
    _apply(sim.state, {"op": "task.desired", "id": "t1", "at": AT, "desired": "shutdown"})
    _apply(sim.state, {"op": "task.status", "id": "t1",
                       "status": {"State": "failed", "Timestamp": AT, "Message": "started"}})
    assert _task(sim, sid, "t2", 1, live=[])["NetworksAttachments"][0]["Addresses"] == ["10.0.1.3/24"]


def test_a_task_on_a_network_that_does_not_exist_is_refused():
    sim = Sim(nodes=1)
    service = spec("web")
    service["TaskTemplate"]["Networks"] = [{"Target": "nowhere"}]
    with pytest.raises(StoreError, match="network nowhere not found"):  # vip mode: no virtual IP there
        _apply(sim.state, {"op": "service.create", "id": "s1", "at": AT, "spec": service})
    service["EndpointSpec"] = {"Mode": "dnsrr"}
    sid = sim.create(service)
    with pytest.raises(StoreError, match="network nowhere not found"):
        _apply(sim.state, {"op": "task.create", "id": "t1", "at": AT, "service": sid, "slot": 1, "expect_live": []})


def test_network_remove_is_refused_while_a_service_or_task_uses_it():
    sim, sid = _sim_with_network()
    _task(sim, sid, "t1", 1)
    with pytest.raises(StoreError, match=f"network net1 is in use by service {sid}$"):
        _apply(sim.state, {"op": "network.remove", "id": "net1"})
    _apply(sim.state, {"op": "service.remove", "id": sid, "at": AT})
    with pytest.raises(StoreError, match="network net1 is in use by task t1$"):
        _apply(sim.state, {"op": "network.remove", "id": "net1"})
    _apply(sim.state, {"op": "task.status", "id": "t1",
                       "status": {"State": "shutdown", "Timestamp": AT, "Message": "shutdown"}})
    _apply(sim.state, {"op": "network.remove", "id": "net1"})
    assert "net1" not in sim.state.networks


def test_subnets_skip_taken_ones_and_routes_and_vxlan_ids_follow():
    assert next_subnet([], []) == ("10.0.1.0/24", 4097)
    routes = [ipaddress.ip_network("10.0.2.0/24"), ipaddress.ip_network("0.0.0.0/0")]  # a default route is no clash
    assert next_subnet([ipaddress.ip_network("10.0.1.0/24")], routes) == ("10.0.3.0/24", 4099)


def test_the_agents_view_names_only_running_tasks_of_the_nodes_networks():
    sim, sid = _sim_with_network()
    for task_id, slot in (("t1", 1), ("t2", 2), ("t3", 3)):
        _task(sim, sid, task_id, slot)
    [node_a, node_b] = sorted(sim.state.nodes)
    for task_id, node, state in (("t1", node_a, "running"), ("t2", node_b, "running"), ("t3", node_b, "starting")):
        sim.state.tasks[task_id]["NodeID"] = node
        sim.state.tasks[task_id]["Status"]["State"] = state
    view = node_overlay(sim.state.nodes, sim.state.services, sim.state.tasks, sim.state.networks, node_a)
    [network] = view["networks"]
    assert network["network"]["ID"] == "net1"
    # the service is in vip mode (the default): its name is its virtual IP, tasks.web its running tasks
    [vip] = sim.state.services[sid]["Endpoint"]["VirtualIPs"]
    assert vip == {"NetworkID": "net1", "Addr": "10.0.1.2/24"}
    assert network["names"] == {"web": ["10.0.1.2"], "tasks.web": ["10.0.1.3", "10.0.1.4"]}
    assert network["vips"] == {"10.0.1.2": ["10.0.1.3", "10.0.1.4"]}
    assert node_a not in view["peers"] and len(view["peers"]) == len(sim.state.nodes) - 1


def test_a_tasks_container_joins_the_overlays_bridge_with_its_address_and_the_service_alias():
    sim, sid = _sim_with_network()
    task = _task(sim, sid, "t1", 1)
    argv = taskspec.create_argv(dict(task, NodeID="n1"), "web")
    at = argv.index("--network")
    assert argv[at:at + 6] == ["--network", "front", "--ip", "10.0.1.3", "--network-alias", "web"]


def test_merged_names_keep_local_records_and_ignore_a_bad_file():
    records = {"internal": False, "names": {"a": ["10.0.1.2"]}}
    assert merge_names(records, "not json") == records
    assert merge_names(records, '{"names": {"WEB": ["10.0.1.3"]}}')["names"] == {"a": ["10.0.1.2"], "web": ["10.0.1.3"]}
    # the managers' view replaces a name's local records: a service's name is its virtual IP only
    assert merge_names(records, '{"names": {"a": ["10.0.1.5", 7]}}')["names"] == {"a": ["10.0.1.5"]}


def test_a_virtual_ip_is_kept_by_updates_never_given_to_a_task_and_freed_in_dnsrr_mode():
    sim, sid = _sim_with_network()
    [vip] = sim.state.services[sid]["Endpoint"]["VirtualIPs"]
    assert _task(sim, sid, "t1", 1)["NetworksAttachments"][0]["Addresses"] == ["10.0.1.3/24"]
    other = spec("api")
    other["TaskTemplate"]["Networks"] = [{"Target": "net1"}]
    assert sim.state.services[sim.create(other)]["Endpoint"]["VirtualIPs"] == [
        {"NetworkID": "net1", "Addr": "10.0.1.4/24"}]  # neither the first service's nor its task's
    assert sim.update(sid, lambda s: s["TaskTemplate"]["ContainerSpec"].update(Args=["sleep", "1"]))
    assert sim.state.services[sid]["Endpoint"]["VirtualIPs"] == [vip]
    assert sim.update(sid, lambda s: s.update(EndpointSpec={"Mode": "dnsrr"}))
    assert "VirtualIPs" not in sim.state.services[sid]["Endpoint"]
    assert sim.state.services[sid]["Endpoint"]["Spec"] == {"Mode": "dnsrr"}
    assert _task(sim, sid, "t2", 2, live=[])["NetworksAttachments"][0]["Addresses"] == ["10.0.1.2/24"]


def test_published_ports_are_resolved_kept_refused_when_taken_or_the_swarms_own():
    from reference_runtime.swarm.networks import NetworkError, resolve_ports

    def service(sid, *ports):
        return {"ID": sid, "Spec": {"Name": sid, "EndpointSpec": {"Ports": list(ports)}}}
    web = service("s1", {"TargetPort": 80}, {"TargetPort": 53, "Protocol": "udp"})
    web["Endpoint"] = {"Ports": resolve_ports(web, [])}
    assert [(p["Protocol"], p["PublishedPort"]) for p in web["Endpoint"]["Ports"]] == [("tcp", 30000), ("udp", 30000)]
    assert resolve_ports(web, [web]) == web["Endpoint"]["Ports"]  # an update keeps them
    api = service("s2", {"TargetPort": 80})
    assert resolve_ports(api, [web])[0]["PublishedPort"] == 30001
    with pytest.raises(NetworkError, match="port '30000' is already in use by service 's1' \\(s1\\) as an ingress port"):
        resolve_ports(service("s3", {"TargetPort": 80, "PublishedPort": 30000}), [web])
    with pytest.raises(NetworkError, match="swarm's own"):
        resolve_ports(service("s4", {"TargetPort": 80, "PublishedPort": 2377}), [])
    with pytest.raises(NetworkError, match="invalid port"):
        resolve_ports(service("s5", {"TargetPort": "80"}), [])
    host = resolve_ports(service("s6", {"TargetPort": 80, "PublishedPort": 30000, "PublishMode": "host"}), [web])
    assert host[0]["PublishMode"] == "host"  # host mode is the node's, not the mesh's


def test_a_published_service_without_networks_is_on_ingress_and_each_node_gets_a_mesh_address():
    from reference_runtime.swarm.networks import ingress_network, lb_commands, mesh_view

    sim = Sim(nodes=2)
    _apply(sim.state, {"op": "network.create", "id": "ing", "at": AT, "network": ingress_network()})
    service = spec("web", 2)
    service["EndpointSpec"] = {"Ports": [{"TargetPort": 8080, "PublishedPort": 8080}]}
    sid = sim.create(service)
    assert sim.state.services[sid]["Endpoint"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 8080, "PublishMode": "ingress"}]
    task = _task(sim, sid, "t1", 1)
    assert [a["Network"]["Spec"]["Name"] for a in task["NetworksAttachments"]] == ["ingress"]
    commands = lb_commands(sim.state.nodes, sim.state.services, sim.state.networks)
    assert sorted(c["node"] for c in commands) == sorted(sim.state.nodes) and {c["id"] for c in commands} == {"ing"}
    for command in commands:
        _apply(sim.state, command)
    assert not lb_commands(sim.state.nodes, sim.state.services, sim.state.networks)
    held = sim.state.networks["ing"]["_lb"]
    task_ip = task["NetworksAttachments"][0]["Addresses"][0]
    assert len(set(held.values())) == 2 and task_ip not in held.values()
    assert _task(sim, sid, "t2", 2)["NetworksAttachments"][0]["Addresses"][0] not in held.values()
    sim.state.tasks["t1"].update(DesiredState="running", Status={"State": "running"})
    [entry] = mesh_view(sorted(sim.state.nodes)[0], sim.state.services, sim.state.tasks, sim.state.networks)
    assert entry["backends"] == [f"{task_ip.split('/')[0]}:8080"] and entry["port"] == 8080
    from reference_runtime.swarm.networks import document
    assert document(sim.state.networks["ing"])["Ingress"] is True  # as docker's `network inspect ingress`
