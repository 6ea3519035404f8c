"""Membership: init, join with worker and manager tokens, token rotation, leave,
roles in ``node ls``, promote and demote."""

from __future__ import annotations

import pytest

from .conftest import (NODE_DEMOTE, NODE_LS, NODE_RM, NODE_PROMOTE, NODE_TIMEOUT, SWARM_INIT, SWARM_JOIN,
                       SWARM_JOIN_TOKEN, SWARM_LEAVE, needs_nodes)


def manager_status(cluster, node) -> str:
    """The MANAGER STATUS column of ``node`` in the manager's ``node ls``."""
    listed = {n["Hostname"]: n for n in cluster.nodes_ls()}
    return listed[node.hostname]["ManagerStatus"] if node.hostname in listed else "(not listed)"


@pytest.mark.spec(SWARM_INIT, "the engine targeted by swarm init becomes a manager in the newly created swarm; "
                              "node ls lists each node with STATUS Ready, AVAILABILITY Active, and MANAGER STATUS "
                              "Leader for the primary manager, empty for a worker")
def test_init_makes_a_leader_and_joined_nodes_are_workers(swarm):
    listed = {n["Hostname"]: n for n in swarm.nodes_ls()}
    assert sorted(listed) == sorted(node.hostname for node in swarm.nodes)
    roles = {name: n["ManagerStatus"] for name, n in listed.items()}
    assert roles == {node.hostname: ("Leader" if node is swarm.manager else "") for node in swarm.nodes}
    assert {n["Status"] for n in listed.values()} == {"Ready"}
    assert {n["Availability"] for n in listed.values()} == {"Active"}
    assert listed[swarm.manager.hostname]["Self"] is True


@pytest.mark.spec(SWARM_JOIN, "the node joins as a manager node or worker node based upon the token you pass "
                              "with the --token flag")
def test_join_with_the_manager_token_makes_a_manager(swarm):
    needs_nodes(swarm, 2)
    node = swarm.nodes[-1]
    swarm.leave(node)  # and the manager forgets its entry, so it can join afresh
    swarm.join(node, "manager")
    assert manager_status(swarm, node) == "Reachable"
    assert node.docker("info", "--format", "{{.Swarm.ControlAvailable}}", check=True).stdout.strip() == "true"


@pytest.mark.spec(SWARM_JOIN_TOKEN, "--rotate generates a new join token for the role; the old token is no longer "
                                    "valid for joining, the new one is")
def test_a_rotated_token_no_longer_joins(swarm):
    needs_nodes(swarm, 2)
    node = swarm.nodes[-1]
    swarm.leave(node)  # and the manager forgets its entry, so it can join afresh
    old = swarm.join_token("worker")
    swarm.manager.docker("swarm", "join-token", "--rotate", "-q", "worker", check=True)
    new = swarm.join_token("worker")
    assert new != old, "join-token --rotate printed the same worker token"
    refused = swarm.join_with(node, old)
    assert not refused.ok, f"a node joined with the rotated-away worker token:\n{refused}"
    assert node.swarm_state() == "inactive", "a refused join left the node in a swarm"
    joined = swarm.join_with(node, new)
    assert joined.ok, f"the new worker token did not join:\n{joined}"


@pytest.mark.spec(SWARM_LEAVE, "when a worker leaves the swarm, the node still appears in the node list, marked "
                               "as down; node rm removes it from the list")
def test_a_worker_that_leaves_is_listed_down_until_removed(swarm):
    needs_nodes(swarm, 2)
    node = swarm.nodes[-1]
    node_id = node.swarm_node_id()
    node.docker("swarm", "leave", check=True)
    assert node.swarm_state() == "inactive"

    def status():
        return {n["ID"]: n["Status"] for n in swarm.nodes_ls()}.get(node_id)
    swarm.wait(lambda: status() == "Down", NODE_TIMEOUT, f"the manager to list {node.hostname} as Down")
    swarm.manager.docker("node", "rm", node_id, check=True)
    assert node_id not in swarm.node_ids()


@pytest.mark.spec(NODE_PROMOTE, "node promote promotes a node to manager in the swarm")
@pytest.mark.spec(NODE_DEMOTE, "node demote demotes a manager to worker in the swarm")
def test_promote_then_demote(swarm):
    needs_nodes(swarm, 2)
    node = swarm.nodes[1]
    node_id = node.swarm_node_id()
    control = ["info", "--format", "{{.Swarm.ControlAvailable}}"]
    swarm.manager.docker("node", "promote", node_id, check=True)
    swarm.wait(lambda: manager_status(swarm, node) == "Reachable", NODE_TIMEOUT,
               f"{node.hostname} to be a reachable manager")
    # the node learns its new role from the managers a moment after they record it
    swarm.wait(lambda: node.docker(*control).stdout.strip() == "true", NODE_TIMEOUT,
               f"{node.hostname} to take control")
    swarm.manager.docker("node", "demote", node_id, check=True)
    swarm.wait(lambda: manager_status(swarm, node) == "", NODE_TIMEOUT, f"{node.hostname} to be a worker again")
    swarm.wait(lambda: node.docker(*control).stdout.strip() == "false", NODE_TIMEOUT,
               f"{node.hostname} to give up control")


@pytest.mark.spec(NODE_LS, "the AVAILABILITY column shows whether the scheduler can assign tasks to the node: "
                           "Active, Pause or Drain")
def test_node_update_availability_shows_in_node_ls(swarm):
    node = swarm.nodes[-1]
    node_id = node.swarm_node_id()
    for availability in ("pause", "drain", "active"):
        swarm.manager.docker("node", "update", "--availability", availability, node_id, check=True)
        listed = {n["ID"]: n["Availability"] for n in swarm.nodes_ls()}
        assert listed[node_id] == availability.capitalize()


@pytest.mark.spec(NODE_RM, "node rm of a node that is not down is refused ('is not down and can't be removed') "
                           "unless --force is given")
def test_node_rm_of_a_ready_node_is_refused(swarm):
    needs_nodes(swarm, 2)
    node = swarm.nodes[-1]
    node_id = node.swarm_node_id()
    refused = swarm.manager.docker("node", "rm", node_id)
    assert not refused.ok, f"node rm removed a Ready node without --force:\n{refused}"
    assert "is not down" in refused.stderr, refused.stderr
    assert node_id in swarm.node_ids()
    assert node.swarm_state() == "active"
