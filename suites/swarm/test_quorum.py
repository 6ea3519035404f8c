"""Managers and their quorum: the leader lost midway through a rolling update
(another is elected and finishes it), writes refused without a quorum and
back with it, and ``--force-new-cluster``.

Each check makes every node a manager (:meth:`promote_all`) and kills
daemons with :meth:`crash` (SIGKILL, as a power loss); the cluster is rebuilt
afterwards. docker's managers elect a new leader 10 to 20 s after the old one
is lost (raft's election timeout), hence the long bounded waits.
"""

from __future__ import annotations

import time

import pytest

from .conftest import (CONVERGE_TIMEOUT, LOST_QUORUM, QUORUM, RAFT, SERVICE_UPDATE, needs_nodes, running_tasks,
                       wait_running)

#: Bounded waits (seconds): an election takes 10-20 s on docker.
ELECTION_TIMEOUT = 90.0
UPDATE_TIMEOUT = 180.0
#: The text the admin guide shows for a management operation without a quorum.
NO_QUORUM_ERROR = "context deadline exceeded"


def manager_statuses(swarm, via) -> dict[str, str]:
    """Hostname -> MANAGER STATUS in ``node ls`` on the manager ``via``."""
    return {info["Hostname"]: info["ManagerStatus"] for info in swarm.nodes_ls(via=via)}


def new_leader(swarm, old):
    """Wait until a live manager names a leader other than ``old``."""
    return swarm.wait(lambda: (leader := swarm.leader()) is not None and leader is not old and leader,
                      ELECTION_TIMEOUT, f"a leader other than {old.hostname} to be elected")


def env_of(swarm, task) -> str:
    """The environment of a task's container, from the (live) node it runs on."""
    node = next(n for n in swarm.nodes if swarm.alive(n) and n.swarm_node_id() == task.node_id)
    return node.docker("inspect", "--format", "{{json .Config.Env}}", task.container_id, check=True).stdout


@pytest.mark.spec(LOST_QUORUM, "without a quorum, management operations fail with 'context deadline exceeded'; "
                               "tasks continue to run; the best way to recover is to bring the missing managers "
                               "back online")
@pytest.mark.spec(RAFT, "if a majority is unavailable, the system cannot process requests to schedule additional "
                        "tasks; the existing tasks keep running")
def test_without_a_quorum_writes_are_refused_until_a_manager_returns(swarm, services):
    needs_nodes(swarm, 3)
    swarm.promote_all()
    keeper = swarm.leader()
    assert keeper is not None
    name = services.create("--replicas", "3", "--stop-grace-period", "1s")
    running = wait_running(swarm, name, 3)
    kept = [t for t in running if t.node_id == keeper.swarm_node_id()]
    lost = [n for n in swarm.nodes if n is not keeper]
    for node in lost:
        swarm.crash(node)
    crashed_at = time.monotonic()

    # writes are refused, for as long as the quorum is lost (two attempts at least,
    # the last one after an election timeout would have elapsed)
    refused_name = services.next_name()
    refusals = []
    while len(refusals) < 2 or time.monotonic() - crashed_at < 15:
        attempt = keeper.docker("service", "create", "--detach", "--no-resolve-image", "--name", refused_name,
                                services.image, "true", timeout=120)
        assert not attempt.ok, f"service create succeeded with 1 of 3 managers alive:\n{attempt}"
        refusals.append(attempt.stderr.strip())
        assert time.monotonic() - crashed_at < 120, f"writes were still being attempted after 120s: {refusals}"
    scaled = keeper.docker("service", "scale", "--detach", f"{name}=5", timeout=120)
    assert not scaled.ok, f"service scale succeeded with 1 of 3 managers alive:\n{scaled}"
    refusals.append(scaled.stderr.strip())

    # what ran goes on running, and nothing else starts: the keeper's task, in the same container
    for task in kept:
        state = keeper.docker("inspect", "--format", "{{.State.Running}}", task.container_id, check=True)
        assert state.stdout.strip() == "true", f"task {task.id[:12]} stopped on {keeper.hostname} without a quorum"
    containers = keeper.docker("ps", "-q", "--no-trunc", "--filter", f"label=com.docker.swarm.service.name={name}",
                               check=True).stdout.split()
    assert sorted(containers) == sorted(t.container_id for t in kept), (
        f"containers of {name} on {keeper.hostname} without a quorum: {containers}, "
        f"before: {[t.container_id for t in kept]}")

    # one manager back: a quorum again, and writes with it
    swarm.revive(lost[0])
    swarm.wait(lambda: swarm.leader() is not None, ELECTION_TIMEOUT, "a leader once 2 of 3 managers are back")
    via = swarm.leader()
    swarm.wait(lambda: via.docker("service", "scale", "--detach", f"{name}=4", timeout=60).ok, CONVERGE_TIMEOUT,
               "service scale to succeed once the quorum is back")
    assert services.inspect(name, via)["Spec"]["Mode"]["Replicated"]["Replicas"] == 4

    # last, so that everything above is checked whatever the message says
    undocumented = [r for r in refusals if NO_QUORUM_ERROR not in r]
    assert not undocumented, (f"{len(undocumented)} of {len(refusals)} writes without a quorum were refused "
                              f"with another error than the documented {NO_QUORUM_ERROR!r}: {undocumented[-1]!r}")


@pytest.mark.spec(LOST_QUORUM, "swarm init --force-new-cluster on a manager removes all managers except the one "
                               "it ran on; that manager has all the previous information about services and "
                               "tasks, and the swarm can be managed again")
def test_force_new_cluster_recovers_a_lost_quorum(swarm, services):
    needs_nodes(swarm, 3)
    swarm.promote_all()
    survivor = swarm.leader()
    assert survivor is not None
    name = services.create("--replicas", "3", "--stop-grace-period", "1s")
    wait_running(swarm, name, 3)
    service_id = services.inspect(name)["ID"]
    lost = [n for n in swarm.nodes if n is not survivor]
    for node in lost:
        swarm.crash(node)
    forced = swarm.force_new_cluster(survivor)
    assert forced.ok, f"swarm init --force-new-cluster failed on the surviving manager:\n{forced}"
    statuses = swarm.wait(lambda: (s := manager_statuses(swarm, survivor))[survivor.hostname] == "Leader" and s,
                          ELECTION_TIMEOUT, f"{survivor.hostname} to lead the forced new cluster")
    managers = {host: status for host, status in statuses.items() if status}
    assert managers == {survivor.hostname: "Leader"}, f"other managers remain after --force-new-cluster: {statuses}"
    assert services.inspect(name, survivor)["ID"] == service_id, "the service is not the one created before"
    # managed again: a change is accepted and carried out
    survivor.docker("service", "scale", "--detach", f"{name}=4", check=True)
    assert services.inspect(name, survivor)["Spec"]["Mode"]["Replicated"]["Replicas"] == 4
    fresh = services.create("--replicas", "1", via=survivor)
    [task] = wait_running(swarm, fresh, 1, via=survivor)
    assert task.node_id == survivor.swarm_node_id()


@pytest.mark.spec(RAFT, "if the leader manager dies unexpectedly, any other manager can pick up the task of "
                        "scheduling and restore the services to a stable state")
@pytest.mark.spec(QUORUM, "whether you have 3 or 4 managers, you can still lose 1 manager and maintain the quorum")
@pytest.mark.spec(SERVICE_UPDATE, "a rolling update (--update-parallelism 1, --update-delay) replaces the tasks "
                                  "one at a time until every task runs the updated spec (UpdateStatus completed)")
def test_an_update_completes_under_a_new_leader_when_the_leader_dies_midway(swarm, services):
    """The leader is killed while it rolls out an update: another manager is elected
    (the old one listed Unreachable), finishes the update with no task lost or
    doubled, and takes new changes."""
    needs_nodes(swarm, 3)
    replicas = 6
    swarm.promote_all()
    name = services.create("--replicas", str(replicas), "--update-parallelism", "1", "--update-delay", "1s",
                           "--update-monitor", "1s", "--stop-grace-period", "1s")
    before = {t.id for t in wait_running(swarm, name, replicas)}
    old = swarm.leader()
    assert old is not None
    swarm.manager.docker("service", "update", "--detach", "--env-add", "CFT_UPDATED=1", name, check=True)
    # midway: two tasks of the new spec run, and at least two of the old spec still do
    swarm.wait(lambda: 2 <= len({t.id for t in running_tasks(swarm, name, old)} - before) <= replicas - 2,
               CONVERGE_TIMEOUT, f"the update of {name} to be midway")
    assert services.update_state(name, old) == "updating"
    swarm.crash(old)

    leader = new_leader(swarm, old)
    statuses = manager_statuses(swarm, leader)
    assert statuses[old.hostname] == "Unreachable", f"the killed leader is listed {statuses[old.hostname]!r}"
    assert sorted(statuses.values()) == ["Leader", "Reachable", "Unreachable"], statuses
    swarm.wait(lambda: services.update_state(name, leader) == "completed", UPDATE_TIMEOUT,
               f"the update of {name} to complete under {leader.hostname}")
    assert swarm.leader() is not old
    running = wait_running(swarm, name, replicas, via=leader)
    slots = sorted(t.slot for t in running)
    assert slots == list(range(1, replicas + 1)), f"running tasks per slot after the update: {slots}"
    assert not before & {t.id for t in running}, "a task of the old spec still runs after the update completed"
    live = {n.swarm_node_id() for n in swarm.nodes if swarm.alive(n)}
    stray = [t for t in running if t.node_id not in live]
    assert not stray, f"tasks listed running on the killed leader after the update: {stray}"
    for task in running:
        env = env_of(swarm, task)
        assert "CFT_UPDATED=1" in env, f"task {task.id[:12]} (slot {task.slot}) runs the old spec: {env}"
    # and the swarm keeps accepting changes
    fresh = services.create("--replicas", "2", via=leader)
    placed = {t.node_id for t in wait_running(swarm, fresh, 2, via=leader)}
    assert placed <= live, "a task of a service created after the crash was placed on the dead node"
