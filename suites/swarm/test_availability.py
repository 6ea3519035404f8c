"""Node availability beyond drain: pause keeps tasks but takes no new ones, a
node made active again takes new tasks (existing ones are not rebalanced),
and a drained node's global task stops and comes back."""

from __future__ import annotations

import time

import pytest

from .conftest import DRAIN_TUTORIAL, MANAGE_NODES, ADMIN_GUIDE, needs_nodes, running_tasks, wait_running

#: How long tasks that must not move are watched, after the change that could move them.
SETTLE = 3.0


def set_availability(swarm, node, availability: str) -> str:
    node_id = node.swarm_node_id()
    swarm.manager.docker("node", "update", "--availability", availability, node_id, check=True)
    return node_id


@pytest.mark.spec(MANAGE_NODES, "Pause availability: the scheduler doesn't assign new tasks to the node, but "
                                "existing tasks remain running")
def test_a_paused_node_keeps_its_tasks_and_takes_no_new_ones(swarm, services):
    needs_nodes(swarm, 3)
    name = services.create("--replicas", str(len(swarm.nodes)), "--stop-grace-period", "1s")
    before = wait_running(swarm, name, len(swarm.nodes))
    paused = swarm.nodes[-1]
    paused_id = set_availability(swarm, paused, "pause")
    kept = [t for t in before if t.node_id == paused_id]
    assert kept, f"no task of {name} ran on {paused.hostname} before it was paused"
    swarm.manager.docker("service", "scale", "--detach", f"{name}=9", check=True)
    after = wait_running(swarm, name, 9)
    on_paused = [t for t in after if t.node_id == paused_id]
    assert [t.id for t in on_paused] == [t.id for t in kept], (
        f"tasks on the paused node: {[t.id[:12] for t in on_paused]}, before: {[t.id[:12] for t in kept]}")


@pytest.mark.spec(DRAIN_TUTORIAL, "a node set back to Active can receive new tasks: during a service update to "
                                  "scale up, during a rolling update, ...")
@pytest.mark.spec(f"{ADMIN_GUIDE}#force-the-swarm-to-rebalance", "when a node becomes available again, the swarm "
                                                                  "does not automatically give a workload to the idle "
                                                                  "node")
def test_an_active_node_again_takes_new_tasks_but_none_move_back(swarm, services):
    needs_nodes(swarm, 3)
    name = services.create("--replicas", "3", "--stop-grace-period", "1s")
    wait_running(swarm, name, 3)
    node = swarm.nodes[-1]
    node_id = set_availability(swarm, node, "drain")
    swarm.wait(lambda: node_id not in {t.node_id for t in running_tasks(swarm, name)}, 30,
               f"the tasks of {name} to leave the drained {node.hostname}")
    moved = wait_running(swarm, name, 3)
    set_availability(swarm, node, "active")
    time.sleep(SETTLE)
    settled = wait_running(swarm, name, 3)
    assert {t.id for t in settled} == {t.id for t in moved}, "tasks moved when the node became active again"
    assert node_id not in {t.node_id for t in settled}
    swarm.manager.docker("service", "scale", "--detach", f"{name}=6", check=True)
    scaled = wait_running(swarm, name, 6)
    new = [t for t in scaled if t.id not in {m.id for m in moved}]
    assert node_id in {t.node_id for t in new}, (
        f"no new task of the scale-up was placed on the active {node.hostname}: {[t.node_id for t in new]}")


@pytest.mark.spec(DRAIN_TUTORIAL, "DRAIN: the manager stops the tasks running on the node; a global service's task "
                                  "on a drained node is shut down and none replaces it there until it is active")
def test_a_drained_node_stops_its_global_task_until_active(swarm, services):
    needs_nodes(swarm, 2)
    name = services.create("--mode", "global", "--stop-grace-period", "1s")
    wait_running(swarm, name, len(swarm.nodes))
    node = swarm.nodes[-1]
    node_id = set_availability(swarm, node, "drain")
    drained = wait_running(swarm, name, len(swarm.nodes) - 1, what=f"the global task on {node.hostname} to stop")
    assert node_id not in {t.node_id for t in drained}
    time.sleep(SETTLE)
    assert node_id not in {t.node_id for t in running_tasks(swarm, name)}, "a global task came back on a drained node"
    set_availability(swarm, node, "active")
    back = wait_running(swarm, name, len(swarm.nodes), what=f"a global task on {node.hostname}, active again")
    assert [t.node_id for t in back].count(node_id) == 1
