"""What becomes of a service's tasks: restart conditions and attempts, the stop
grace period, placement constraints, and global services on nodes that join."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from .conftest import (CONVERGE_TIMEOUT, GLOBAL_SERVICES, NODE_UPDATE, SERVICE_CREATE, needs_nodes, node_ids,
                       parse_time, tasks, wait_running)

#: The conftest's IDLE as one --args string.
IDLE_ARGS = ["sh", "-c", "'trap \"exit 0\" TERM; sleep 600 & wait'"]
#: How long after a task ended a restart that is not due is waited for, in
#: restart delays of 1s: a restart would come after one.
NO_RESTART_WAIT = 3.0


@pytest.mark.spec(SERVICE_CREATE, "--restart-condition: restart when condition is met (none, on-failure, any); "
                                  "--restart-max-attempts: maximum number of restarts before giving up")
def test_restart_condition_and_max_attempts(swarm, services):
    failing = ["sh", "-c", "sleep 1; exit 3"]
    never = services.create("--restart-condition", "none", "--restart-delay", "1s", command=failing)
    capped = services.create("--restart-condition", "on-failure", "--restart-max-attempts", "2",
                             "--restart-delay", "1s", command=failing)
    succeeding = services.create("--restart-condition", "on-failure", "--restart-delay", "1s",
                                 command=["sh", "-c", "sleep 1; exit 0"])

    def ended(name, count, state):
        every = tasks(swarm, name)
        return len(every) >= count and all(t.state == state for t in every)
    swarm.wait(lambda: ended(capped, 3, "failed"), CONVERGE_TIMEOUT, f"3 failed tasks of {capped}")
    swarm.wait(lambda: ended(never, 1, "failed") and ended(succeeding, 1, "complete"), CONVERGE_TIMEOUT,
               f"the tasks of {never} and {succeeding} to end")
    time.sleep(NO_RESTART_WAIT)  # a restart that is not due would have come by now
    counts = {name: [(t.slot, t.state, t.error) for t in tasks(swarm, name)] for name in (never, capped, succeeding)}
    assert counts[never] == [(1, "failed", "task: non-zero exit (3)")], (
        f"--restart-condition none: a task that exited 3 was restarted: {counts[never]}")
    assert counts[succeeding] == [(1, "complete", "")], (
        f"--restart-condition on-failure: a task that exited 0 was restarted: {counts[succeeding]}")
    assert counts[capped] == [(1, "failed", "task: non-zero exit (3)")] * 3, (
        f"--restart-max-attempts 2: the first task and 2 restarts, all failed, expected: {counts[capped]}")


@pytest.mark.spec(SERVICE_CREATE, "--stop-grace-period: time to wait before force killing a container")
def test_stop_grace_period_is_waited_before_the_kill(swarm, services):
    deaf = ["sh", "-c", "trap '' TERM; sleep 600 & wait"]  # ignores SIGTERM: only the kill ends it
    periods = {1: services.create("--stop-grace-period", "1s", command=deaf),
               6: services.create("--stop-grace-period", "6s", command=deaf)}
    old = {grace: wait_running(swarm, name, 1)[0] for grace, name in periods.items()}
    asked = datetime.now(timezone.utc)
    for name in periods.values():  # the old tasks stop by their grace period; the new ones end at TERM
        swarm.manager.docker("service", "update", "--detach", "--args", " ".join(IDLE_ARGS), name, check=True)
    elapsed = {}
    for grace, task in old.items():
        node = node_ids(swarm)[task.node_id]

        def finished():
            state = node.docker("inspect", "--format", "{{.State.ExitCode}} {{.State.FinishedAt}}", task.container_id,
                                check=True).stdout.split()
            return state if parse_time(state[1]) else None
        code, at = swarm.wait(finished, CONVERGE_TIMEOUT, f"the container of {task.id[:12]} to stop")
        assert code == "137", f"a task ignoring SIGTERM with a {grace}s grace period exited {code}, not killed (137)"
        elapsed[grace] = (parse_time(at) - asked).total_seconds()
    for grace, seconds in elapsed.items():
        assert seconds >= grace, f"killed {seconds:.2f}s after the update, within its {grace}s grace period"
    assert elapsed[6] - elapsed[1] >= 3, f"a 6s and a 1s grace period ended {elapsed[6] - elapsed[1]:.2f}s apart"


@pytest.mark.spec(SERVICE_CREATE, "--constraint node.role==manager places the tasks on manager nodes only")
@pytest.mark.spec(NODE_UPDATE, "--label-add adds a node label; a service constrained to node.labels.KEY==VALUE "
                               "runs only on the nodes with that label")
def test_constraints_on_role_and_node_labels(swarm, services):
    needs_nodes(swarm, 3)
    managers = services.create("--replicas", "3", "--constraint", "node.role==manager")
    labelled = swarm.nodes[1]
    label_id = labelled.swarm_node_id()
    swarm.manager.docker("node", "update", "--label-add", "cft_placement=here", label_id, check=True)
    try:
        chosen = services.create("--replicas", "3", "--constraint", "node.labels.cft_placement==here")
        on_managers = wait_running(swarm, managers, 3)
        on_label = wait_running(swarm, chosen, 3)
        manager_id = swarm.manager.swarm_node_id()
        assert {t.node_id for t in on_managers} == {manager_id}, "a task constrained to managers ran on a worker"
        assert {t.node_id for t in on_label} == {label_id}, "a task constrained to a label ran on a node without it"
    finally:
        swarm.manager.docker("node", "update", "--label-rm", "cft_placement", label_id)


@pytest.mark.spec(GLOBAL_SERVICES, "a global service runs one task on every available node; when you add a node to "
                                   "the swarm, the orchestrator creates a task and the scheduler assigns it to the "
                                   "new node")
def test_a_node_that_joins_gets_a_task_of_a_global_service(swarm, services):
    needs_nodes(swarm, 2)
    node = swarm.nodes[-1]
    swarm.leave(node)
    name = services.create("--mode", "global", "--stop-grace-period", "1s")
    before = wait_running(swarm, name, len(swarm.nodes) - 1)
    node_id = swarm.join(node, "worker")
    after = wait_running(swarm, name, len(swarm.nodes), what=f"a task of {name} on the node that joined")
    assert [t.node_id for t in after].count(node_id) == 1
    assert {t.id for t in before} <= {t.id for t in after}, "the tasks on the other nodes were replaced"
