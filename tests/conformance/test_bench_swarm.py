"""The swarm bench's reading of what a manager reports (pure), and how its
cases are laid out; the clusters themselves are measured by ``conformance
bench --only swarm`` alone."""

import json

import pytest

from conformance.bench import swarm
from conformance.bench.core import Unavailable
from conformance.bench.swarm import (Task, converged, parse_tasks, replacement, summary, update_end,
                                     update_started_at)


def task_doc(task_id, slot, state, desired="running", container="c-" + "0" * 8, node="node-1"):
    return {"ID": task_id, "Slot": slot, "NodeID": node, "DesiredState": desired,
            "Status": {"State": state, "Timestamp": "2026-11-28T17:06:09.63517027Z",
                       "ContainerStatus": {"ContainerID": container, "PID": 42}}}


def test_tasks_are_read_from_inspect_including_those_without_a_container_yet():
    pending = task_doc("t2", 2, "pending")
    del pending["Status"]["ContainerStatus"]
    tasks = parse_tasks(json.dumps([task_doc("t1", 1, "running", container="abc"), pending]))
    assert tasks == [Task("t1", 1, "node-1", "running", "running", "abc"),
                     Task("t2", 2, "node-1", "pending", "running", "")]
    assert tasks[0].running and not tasks[0].pending
    assert tasks[1].pending and not tasks[1].running
    assert parse_tasks("") == [] and parse_tasks("[]") == []


def test_a_global_task_has_no_slot_and_a_null_container_status_is_no_container():
    doc = task_doc("t1", None, "assigned")
    del doc["Slot"]
    doc["Status"]["ContainerStatus"] = None
    assert parse_tasks(json.dumps([doc])) == [Task("t1", None, "node-1", "assigned", "running", "")]


def test_a_service_is_converged_with_exactly_its_count_running_and_nothing_pending():
    running = [Task(f"t{i}", i, "n", "running", "running", "c") for i in range(1, 4)]
    assert converged(running, 3)
    assert not converged(running[:2], 3)
    # the killed task: failed, still desired running until the orchestrator replaces it
    assert not converged(running + [Task("old", 1, "n", "failed", "running", "c")], 3)
    # replaced: the old one is desired shutdown and no longer counts
    assert converged(running + [Task("old", 1, "n", "failed", "shutdown", "c")], 3)
    # a task that is shutting down but still running does not count as running
    assert not converged(running[:2] + [Task("t3", 3, "n", "running", "shutdown", "c")], 3)
    assert not converged(running + [Task("t4", 4, "n", "running", "running", "c")], 3)


def test_the_replacement_is_a_new_running_task_in_the_same_slot():
    killed = Task("old", 2, "n", "failed", "shutdown", "c1")
    other_slot = Task("t1", 1, "n", "running", "running", "c2")
    starting = Task("new", 2, "n", "starting", "running", "")
    assert replacement([killed, other_slot, starting], 2, "old") is None
    ran = Task("new", 2, "n", "running", "running", "c3")
    assert replacement([killed, other_slot, ran], 2, "old") == ran
    # the killed task itself, while still listed running, is not its replacement
    assert replacement([Task("old", 2, "n", "running", "running", "c1")], 2, "old") is None


def test_an_update_is_over_only_once_a_new_one_has_ended():
    before = {"UpdateStatus": {"State": "completed", "StartedAt": "2026-11-28T17:00:00Z"}}
    assert update_started_at(before) == "2026-11-28T17:00:00Z" and update_started_at({}) == ""
    assert update_started_at({"UpdateStatus": None}) == ""
    # right after `service update`, inspect may still show the previous update
    assert update_end(before, "2026-11-28T17:00:00Z") == ""
    under_way = {"UpdateStatus": {"State": "updating", "StartedAt": "2026-11-28T17:01:00Z"}}
    assert update_end(under_way, "2026-11-28T17:00:00Z") == ""
    done = {"UpdateStatus": {"State": "completed", "StartedAt": "2026-11-28T17:01:00Z"}}
    assert update_end(done, "2026-11-28T17:00:00Z") == "completed"
    assert update_end(done, "") == "completed"  # the service's first update
    paused = {"UpdateStatus": {"State": "paused", "StartedAt": "2026-11-28T17:01:00Z", "Message": "x"}}
    assert update_end(paused, "") == "paused"  # ends the wait at once: the round fails with the message
    assert update_end({}, "") == "" and update_end({"UpdateStatus": {}}, "") == ""


def test_a_timeout_message_counts_the_states_seen():
    assert summary([]) == "no task"
    assert summary([Task("a", 1, "n", "running", "running", ""), Task("b", 2, "n", "running", "running", ""),
                    Task("c", 3, "n", "rejected", "shutdown", "")]) == "2 running/running, 1 rejected/shutdown"


def test_three_cases_compare_refengine_swarm_with_docker_swarm_and_the_last_stops_the_clusters():
    cases = swarm.cases(None)
    assert [c.name.split(":")[0] for c in cases] == ["swarm"] * 3
    for case in cases:
        assert list(case.subjects) == ["refengine swarm", "docker swarm"] and case.baseline == "docker swarm"
        assert case.unit == "ms" and not case.higher_is_better
        assert case.plan(15, 2) == (swarm.MAX_ROUNDS, swarm.MAX_WARMUP)
    assert [c.teardown is not None for c in cases] == [False, False, True]
    cases[-1].teardown()  # nothing was started: stopping is a no-op


def test_a_subject_that_cannot_start_its_cluster_is_unavailable_in_every_case(monkeypatch):
    bench = swarm.SwarmBench()
    subject = bench.subjects["docker swarm"]
    started = []
    monkeypatch.setattr(swarm.os, "geteuid", lambda: 1000)
    subject.make = lambda: started.append(1)
    for measure in (swarm.SwarmSubject.replicas_up, swarm.SwarmSubject.replace_killed,
                    swarm.SwarmSubject.rolling_update):
        with pytest.raises(Unavailable, match="needs root"):
            bench.round(measure, subject)()
    assert started == []


def test_an_unexpected_error_in_a_round_stops_both_clusters_before_it_propagates():
    bench = swarm.SwarmBench()
    stopped = []

    class Running:
        def stop(self):
            stopped.append(1)
            return []

    for subject in bench.subjects.values():
        subject.cluster = Running()

    def broken(subject):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        bench.round(broken, bench.subjects["refengine swarm"])()
    assert stopped == [1, 1] and all(s.cluster is None for s in bench.subjects.values())
    bench.close()  # idempotent
    assert stopped == [1, 1]
