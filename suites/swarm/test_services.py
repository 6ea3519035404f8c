"""Services: create, ls, inspect, scale, replacement of failed tasks, global
mode, and draining a node."""

from __future__ import annotations

import time

import pytest

from .conftest import (CONVERGE_TIMEOUT, DRAIN_TUTORIAL, GLOBAL_SERVICES, ROLLING_UPDATE, SCALE_TUTORIAL,
                       SERVICE_CREATE, SERVICE_LS, SERVICE_SCALE, TASK_STATES, needs_nodes, node_ids, running_tasks,
                       tasks, wait_running)


@pytest.mark.spec(SERVICE_CREATE, "--replicas sets the number of tasks of a replicated service")
@pytest.mark.spec(SCALE_TUTORIAL, "the tasks of a service are distributed between the nodes of the swarm")
def test_replicated_service_runs_its_replicas_spread_over_the_nodes(swarm, services):
    count = len(swarm.nodes)
    name = services.create("--replicas", str(count))
    running = wait_running(swarm, name, count)
    per_node = sorted(t.node_id for t in running)
    assert per_node == sorted(node_ids(swarm)), f"{count} replicas on {count} nodes, not one per node: {per_node}"
    for task in running:  # each task's container runs on the node the manager assigned
        node = node_ids(swarm)[task.node_id]
        assert node.docker("inspect", "--format", "{{.State.Running}}", task.container_id,
                           check=True).stdout.strip() == "true"


@pytest.mark.spec(SERVICE_LS, "service ls lists the services with MODE and REPLICAS (running/desired)")
def test_service_ls_and_inspect_show_mode_and_replicas(swarm, services):
    name = services.create("--replicas", "2")
    wait_running(swarm, name, 2)
    listed = [line.split("\t") for line in swarm.manager.docker(
        "service", "ls", "--filter", f"name={name}", "--format", "{{.Name}}\t{{.Mode}}\t{{.Replicas}}",
        check=True).stdout.splitlines()]
    assert listed == [[name, "replicated", "2/2"]]
    spec = services.inspect(name)["Spec"]
    assert spec["Name"] == name
    assert spec["Mode"] == {"Replicated": {"Replicas": 2}}


@pytest.mark.spec(SCALE_TUTORIAL, "scaling a service creates new tasks to reach the desired number of running "
                                  "instances; the tasks already running go on")
@pytest.mark.spec(SERVICE_SCALE, "scale sets the desired number of replicas of a replicated service")
def test_scale_adds_tasks_without_updating_the_running_ones(swarm, services):
    name = services.create("--replicas", "1")
    [first] = wait_running(swarm, name, 1)
    version = services.inspect(name)["Version"]["Index"]
    swarm.manager.docker("service", "scale", "--detach", f"{name}=4", check=True)
    running = wait_running(swarm, name, 4)
    assert first.id in {t.id for t in running}, "scaling up replaced the task that was running"
    assert [t for t in running if t.id == first.id][0].container_id == first.container_id
    service = services.inspect(name)
    assert service["Spec"]["Mode"]["Replicated"]["Replicas"] == 4
    assert service["Version"]["Index"] > version
    assert "UpdateStatus" not in service, f"scale started an update: {service.get('UpdateStatus')}"
    swarm.manager.docker("service", "scale", "--detach", f"{name}=2", check=True)
    wait_running(swarm, name, 2)
    assert "UpdateStatus" not in services.inspect(name)


@pytest.mark.spec(SERVICE_SCALE, "the scale command cannot be applied on services which are global mode")
def test_scale_of_a_global_service_is_refused(swarm, services):
    name = services.create("--mode", "global")
    wait_running(swarm, name, len(swarm.nodes))
    refused = swarm.manager.docker("service", "scale", "--detach", f"{name}=5")
    assert not refused.ok, f"scale of a global service succeeded:\n{refused}"
    assert "global" in refused.stderr.lower() or "replicated" in refused.stderr.lower(), refused.stderr
    assert services.inspect(name)["Spec"]["Mode"] == {"Global": {}}


@pytest.mark.spec(TASK_STATES, "if a task fails, the orchestrator removes the task and its container and then "
                               "creates a new task to replace it according to the desired state of the service")
def test_a_task_whose_container_is_killed_is_replaced(swarm, services):
    name = services.create("--replicas", "2")
    victim = wait_running(swarm, name, 2)[0]
    node = node_ids(swarm)[victim.node_id]
    node.docker("kill", victim.container_id, check=True)
    # the manager hears of the failure a moment after the kill
    swarm.wait(lambda: victim.id not in {t.id for t in running_tasks(swarm, name)}, CONVERGE_TIMEOUT,
               f"the killed task {victim.id[:12]} to stop running")
    running = wait_running(swarm, name, 2, what=f"a replacement for the killed task {victim.id[:12]}")
    assert victim.id not in {t.id for t in running}
    assert victim.slot in {t.slot for t in running}, "the replacement took another slot"
    [old] = [t for t in tasks(swarm, name) if t.id == victim.id]
    assert old.state == "failed" and old.desired == "shutdown", old


@pytest.mark.spec(GLOBAL_SERVICES, "for a global service, the swarm runs one task for the service on every "
                                   "available node in the cluster")
def test_global_service_runs_one_task_on_every_node(swarm, services):
    name = services.create("--mode", "global")
    running = wait_running(swarm, name, len(swarm.nodes))
    assert sorted(t.node_id for t in running) == sorted(node_ids(swarm))


@pytest.mark.spec(DRAIN_TUTORIAL, "DRAIN availability prevents a node from receiving new tasks; the manager "
                                  "stops tasks running on the node and launches replica tasks on a node with "
                                  "ACTIVE availability")
def test_drain_moves_tasks_to_active_nodes(swarm, services):
    needs_nodes(swarm, 2)
    count = len(swarm.nodes)
    name = services.create("--replicas", str(count))
    before = wait_running(swarm, name, count)
    drained = swarm.nodes[-1]
    drained_id = drained.swarm_node_id()
    assert drained_id in {t.node_id for t in before}
    swarm.manager.docker("node", "update", "--availability", "drain", drained_id, check=True)
    after = wait_running(swarm, name, count, what=f"{count} tasks off the drained node")
    swarm.wait(lambda: drained_id not in {t.node_id for t in running_tasks(swarm, name)}, 30,
               f"no task of {name} to run on {drained.hostname}")
    assert drained_id not in {t.node_id for t in after}
    # and no new task lands there later
    time.sleep(2)
    assert drained_id not in {t.node_id for t in running_tasks(swarm, name)}


@pytest.mark.spec(ROLLING_UPDATE, "a service update is rolled out task by task: the scheduler stops a task, "
                                  "schedules the update for it and starts the container of the updated task, "
                                  "until every task runs the updated spec")
def test_update_replaces_every_task(swarm, services):
    name = services.create("--replicas", "3", "--update-parallelism", "1", "--update-delay", "0s")
    before = {t.id for t in wait_running(swarm, name, 3)}
    swarm.manager.docker("service", "update", "--detach", "--env-add", "CFT_UPDATED=1", name, check=True)
    swarm.wait(lambda: (services.inspect(name).get("UpdateStatus") or {}).get("State") == "completed",
               CONVERGE_TIMEOUT, f"the update of {name} to complete")
    after = wait_running(swarm, name, 3)
    assert not before & {t.id for t in after}, "a task of the old spec still runs after the update"
    for task in after:
        node = node_ids(swarm)[task.node_id]
        env = node.docker("inspect", "--format", "{{json .Config.Env}}", task.container_id, check=True).stdout
        assert "CFT_UPDATED=1" in env, f"task {task.id[:12]} runs without the updated environment: {env}"
