"""The replicated store: docker's shapes, deterministic apply, guards and errors."""

from __future__ import annotations

import json

import pytest

from reference_runtime.swarm.errors import SwarmError
from reference_runtime.swarm.state import (ClusterState, StoreError, apply, parse_time, public, restore, rfc3339,
                                           service_status, snapshot)

from .sim import Sim, spec

AT = "2026-11-28T17:00:00.000000001Z"


def _fresh() -> ClusterState:
    return Sim(nodes=2).state


def _apply(state, command):
    return apply(state, command, state.index + 1)


def test_cluster_init_makes_docker_swarm_object():
    state = _fresh()
    cluster = state.cluster
    assert set(cluster) >= {"ID", "Version", "CreatedAt", "UpdatedAt", "Spec", "TLSInfo", "RootRotationInProgress",
                            "DataPathPort", "DefaultAddrPool", "SubnetSize", "JoinTokens"}
    assert cluster["Spec"]["Orchestration"] == {"TaskHistoryRetentionLimit": 5}
    assert cluster["Spec"]["Raft"]["ElectionTick"] == 10 and cluster["Spec"]["Dispatcher"]["HeartbeatPeriod"] == 5e9
    assert (cluster["DataPathPort"], cluster["DefaultAddrPool"], cluster["SubnetSize"]) == (4789, ["10.0.0.0/8"], 24)
    version = cluster["Version"]["Index"]
    _apply(state, {"op": "cluster.update", "version": version, "at": AT, "tokens": {"Worker": "SWMTKN-1-new"}})
    assert state.cluster["JoinTokens"] == {"Worker": "SWMTKN-1-new", "Manager": "SWMTKN-1-m"}
    assert state.cluster["Version"]["Index"] == state.index and state.cluster["UpdatedAt"] == AT


def test_a_stale_version_is_out_of_sequence_and_changes_nothing():
    sim = Sim(nodes=1)
    sid = sim.create(spec("web"))
    old = sim.service(sid)["Version"]["Index"]
    sim.scale(sid, 2)
    before = snapshot(sim.state)
    with pytest.raises(StoreError) as refused:
        _apply(sim.state, {"op": "service.update", "id": sid, "version": old, "at": AT, "spec": spec("web", 3)})
    assert str(refused.value) == "rpc error: code = Unknown desc = update out of sequence"
    assert isinstance(refused.value, SwarmError)
    assert snapshot(sim.state) == before


def test_name_conflict_and_not_found_use_the_daemons_texts():
    sim = Sim(nodes=1)
    sim.create(spec("web"))
    with pytest.raises(StoreError, match="^rpc error: code = AlreadyExists desc = name conflicts with an existing "
                                         "object: service web already exists$"):
        _apply(sim.state, {"op": "service.create", "id": "other", "at": AT, "spec": spec("web")})
    with pytest.raises(StoreError, match="code = NotFound desc = service nope not found"):
        _apply(sim.state, {"op": "service.update", "id": "nope", "version": 1, "at": AT, "spec": spec("x")})
    with pytest.raises(StoreError, match="service mode change is not allowed"):
        _apply(sim.state, {"op": "service.update", "id": "s-web", "at": AT, "spec": spec("web", None),
                           "version": sim.service("s-web")["Version"]["Index"]})


def test_version_index_is_the_raft_index_of_the_last_change():
    state = _fresh()
    apply(state, {"op": "service.create", "id": "s1", "at": AT, "spec": spec("a")}, 40)
    assert state.services["s1"]["Version"] == {"Index": 40} and state.index == 40
    apply(state, {"op": "service.update", "id": "s1", "version": 40, "at": AT, "spec": spec("a", 2)}, 41)
    service = state.services["s1"]
    assert service["Version"] == {"Index": 41}
    assert service["PreviousSpec"]["Mode"] == {"Replicated": {"Replicas": 1}}
    assert service["Spec"]["Mode"] == {"Replicated": {"Replicas": 2}}


def test_a_batch_is_all_or_nothing():
    sim = Sim(nodes=1)
    sid = sim.create(spec("web"))
    before = snapshot(sim.state)
    good = {"op": "task.create", "id": "x1", "at": AT, "service": sid, "slot": 1, "expect_live": []}
    bad = {"op": "task.create", "id": "x2", "at": AT, "service": sid, "slot": 1, "expect_live": []}
    with pytest.raises(StoreError, match="update out of sequence"):
        _apply(sim.state, {"op": "batch", "commands": [good, bad]})  # the second finds slot 1 taken
    assert snapshot(sim.state) == before
    assert _apply(sim.state, {"op": "batch", "commands": [good]}) == ["x1"]


def test_task_create_guard_keeps_one_new_task_per_slot():
    sim = Sim(nodes=1)
    sid = sim.create(spec("web"))
    create = {"op": "task.create", "at": AT, "service": sid, "slot": 1, "expect_live": []}
    _apply(sim.state, {**create, "id": "a"})
    with pytest.raises(StoreError):
        _apply(sim.state, {**create, "id": "b"})
    _apply(sim.state, {**create, "id": "c", "expect_live": ["a"]})  # start-first: two tasks, on purpose
    task = sim.state.tasks["a"]
    assert (task["Slot"], task["DesiredState"], task["Status"]["State"], task["Status"]["Message"]) == \
        (1, "running", "new", "created")
    assert task["Spec"] == sim.service(sid)["Spec"]["TaskTemplate"] and "NodeID" not in task


def test_task_status_never_moves_backwards_and_desired_only_forward():
    sim = Sim(nodes=1)
    sid = sim.create(spec("web"))
    sim.until(lambda s: s.converged(sid, 1))
    [task] = sim.tasks(sid)
    sim.report(task["ID"], "failed")
    sim.report(task["ID"], "running")  # a late report
    assert sim.state.tasks[task["ID"]]["Status"]["State"] == "failed"
    _apply(sim.state, {"op": "task.desired", "id": task["ID"], "at": AT, "desired": "shutdown"})
    _apply(sim.state, {"op": "task.desired", "id": task["ID"], "at": AT, "desired": "running"})
    assert sim.state.tasks[task["ID"]]["DesiredState"] == "shutdown"


def test_manual_rollback_swaps_spec_and_previous_spec():
    sim = Sim(nodes=1)
    sid = sim.create(spec("web"))
    with pytest.raises(StoreError, match=f"service {sid} does not have a previous spec"):
        _apply(sim.state, {"op": "service.update", "id": sid, "at": AT, "rollback": True,
                           "version": sim.service(sid)["Version"]["Index"]})
    sim.update(sid, lambda s: s["TaskTemplate"]["ContainerSpec"].update(Env=["V=2"]))
    sim.update(sid, rollback=True)
    service = sim.service(sid)
    assert "Env" not in service["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert service["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["V=2"]
    assert service["UpdateStatus"]["State"] == "rollback_started"
    assert service["UpdateStatus"]["Message"] == "manually requested rollback"


def test_node_remove_demote_and_leader():
    sim = Sim(nodes=2)
    worker = "n-node2"
    with pytest.raises(StoreError, match=f"node {worker} is not down and can't be removed"):
        _apply(sim.state, {"op": "node.remove", "id": worker, "at": AT})
    with pytest.raises(StoreError, match="attempting to demote the last manager of the swarm"):  # node1 alone
        _apply(sim.state, {"op": "node.update", "id": "n-node1", "at": AT,
                           "version": sim.state.nodes["n-node1"]["Version"]["Index"],
                           "spec": {"Role": "worker", "Availability": "active", "Labels": {}}})
    with pytest.raises(StoreError, match="must be demoted to worker before removal"):
        _apply(sim.state, {"op": "node.remove", "id": "n-node1", "at": AT, "force": True})
    sid = sim.create(spec("web", 2))
    sim.until(lambda s: s.converged(sid, 2))
    sim.node_down(worker)
    _apply(sim.state, {"op": "node.remove", "id": worker, "at": AT})
    assert worker not in sim.state.nodes
    orphaned = [t for t in sim.tasks(sid) if t.get("NodeID") == worker]
    assert [t["Status"]["State"] for t in orphaned] == ["orphaned"]
    # one leader at a time
    sim.add_node("node3", role="manager")
    for node_id in ("n-node1", "n-node3"):
        _apply(sim.state, {"op": "node.manager", "id": node_id, "at": AT,
                           "status": {"Leader": True, "Reachability": "reachable", "Addr": "10.0.0.1:2377"}})
    assert sim.state.nodes["n-node3"]["ManagerStatus"]["Leader"] is True
    assert "Leader" not in sim.state.nodes["n-node1"]["ManagerStatus"]


def test_apply_is_deterministic_and_snapshots_round_trip_through_json():
    one = Sim(nodes=3)
    sid = one.create(spec("web", 3))
    one.until(lambda s: s.converged(sid, 3))
    one.scale(sid, 5)
    one.run(3)
    replica = ClusterState()
    for command, index in one.log:  # another manager applying the same committed log
        try:
            apply(replica, json.loads(json.dumps(command)), index)
        except StoreError:
            pass
    assert snapshot(replica) == snapshot(one.state)
    again = restore(json.loads(json.dumps(snapshot(one.state))))
    assert snapshot(again) == snapshot(one.state) and again.index == one.state.index


def test_public_strips_private_bookkeeping():
    sim = Sim(nodes=1)
    sid = sim.create(spec("web"))
    sim.until(lambda s: s.converged(sid, 1))
    [task] = sim.tasks(sid)
    assert "_spec_version" in task and "_running_at" in task
    shown = public(task)
    assert not [k for k in json.dumps(shown).split('"') if k.startswith("_")]
    assert shown["Status"]["State"] == "running" and shown["ServiceID"] == sid


def test_time_round_trip():
    assert parse_time(rfc3339(1_800_000_000.25)) == 1_800_000_000.25
    assert rfc3339(0) == "1970-01-01T00:00:00.000000000Z"


def test_service_status_counts_as_swarmkit():
    sim = Sim(nodes=2)
    web = sim.create(spec("web", 3))
    agent = sim.create(spec("agent", None))
    sim.step()
    assert service_status(sim.state, web) == {"RunningTasks": 0, "DesiredTasks": 3, "CompletedTasks": 0}
    sim.until(lambda s: s.converged(web, 3) and s.converged(agent, 2))
    assert service_status(sim.state, web) == {"RunningTasks": 3, "DesiredTasks": 3, "CompletedTasks": 0}
    assert service_status(sim.state, agent) == {"RunningTasks": 2, "DesiredTasks": 2, "CompletedTasks": 0}
