"""Placement: constraints, spreading, and swarmkit's explanation when nothing fits."""

from __future__ import annotations

from collections import Counter

import pytest

from reference_runtime.swarm.scheduler import node_matches, parse_constraints, schedule

from .sim import Sim, spec


def _node(**labels) -> dict:
    return {"ID": "abc", "Spec": {"Role": "worker", "Labels": labels, "Availability": "active"},
            "Description": {"Hostname": "host1", "Platform": {"OS": "linux", "Architecture": "x86_64"},
                            "Engine": {"Labels": {"disk": "ssd"}}},
            "Status": {"State": "ready", "Addr": "10.0.0.5"}}


@pytest.mark.parametrize("exprs, expected", [
    (["node.role==worker"], True), (["node.role == manager"], False), (["node.role!=manager"], True),
    (["node.hostname==HOST1"], True), (["node.id==abc"], True), (["node.labels.zone==a"], True),
    (["node.labels.zone!=a"], False), (["node.labels.missing!=x"], True), (["node.labels.missing==x"], False),
    (["engine.labels.disk==ssd"], True), (["node.platform.os==linux", "node.platform.arch==x86_64"], True),
    (["node.ip==10.0.0.5"], True), (["node.whatever==x"], False),
])
def test_constraints(exprs, expected):
    assert node_matches(parse_constraints(exprs), _node(zone="a")) is expected


def test_a_constraint_without_operator_is_refused():
    with pytest.raises(ValueError, match="constraint expected one operator from ==, !="):
        parse_constraints(["node.role=manager"])


def test_tasks_spread_over_nodes_by_service_then_by_total():
    sim = Sim(nodes=3)
    busy = sim.create(spec("busy", 2, Placement={"Constraints": ["node.hostname!=node3"]}))
    sim.until(lambda s: s.converged(busy, 2))
    web = sim.create(spec("web", 4))
    sim.until(lambda s: s.converged(web, 4))
    per_node = Counter(t["NodeID"] for t in sim.running(web))
    assert sorted(per_node.values()) == [1, 1, 2]
    assert per_node["n-node3"] == 2, "the node with the fewest tasks in all takes the extra one"


def test_a_task_that_fits_nowhere_stays_pending_with_swarmkits_explanation():
    sim = Sim(nodes=3)
    sim.set_node("n-node3", Availability="drain")
    sid = sim.create(spec("web", 1, Placement={"Constraints": ["node.labels.zone==nowhere"]}))
    sim.run(1)
    [task] = sim.tasks(sid)
    assert task["Status"]["State"] == "pending"
    assert task["Status"]["Message"] == "pending task scheduling"
    assert task["Status"]["Err"] == ("no suitable node (scheduling constraints not satisfied on 2 nodes; "
                                     "1 node not available for new tasks)")
    assert schedule(sim.state, sim.at) == [], "the same explanation is not proposed again"
    sim.set_node("n-node2", Labels={"zone": "nowhere"})
    sim.until(lambda s: s.converged(sid, 1))
    assert sim.running(sid)[0]["NodeID"] == "n-node2"
    assert sim.running(sid)[0]["Status"]["State"] == "running"


def test_manager_constraint_and_assignment_message():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3, Placement={"Constraints": ["node.role==manager"]}))
    sim.step()  # creates the tasks
    sim.lead()  # places them
    assert {t["Status"]["Message"] for t in sim.tasks(sid)} == {"scheduler assigned task to node"}
    sim.until(lambda s: s.converged(sid, 3))
    assert {t["NodeID"] for t in sim.running(sid)} == {"n-node1"}
