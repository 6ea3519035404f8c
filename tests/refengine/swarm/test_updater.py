"""Rolling updates and rollbacks: parallelism, delay, order, failure actions,
manual rollback, force, and a leader change in the middle of an update."""

from __future__ import annotations

import random
from collections import Counter

from reference_runtime.swarm.orchestrator import reconcile
from reference_runtime.swarm.state import parse_time

from .sim import Sim, spec

S = 10**9


def _set_env(value: str):
    return lambda s: s["TaskTemplate"]["ContainerSpec"].update(Env=[f"V={value}"])


def _status(sim: Sim, sid: str) -> dict:
    return sim.service(sid).get("UpdateStatus") or {}


def _updated(sim: Sim, sid: str, value: str) -> list[dict]:
    return [t for t in sim.running(sid) if sim.env(t) == [f"V={value}"]]


def _one_per_slot(sim: Sim, sid: str) -> None:
    """Never two running tasks desired running in a slot (stop-first), never a duplicate."""
    slots = Counter(t["Slot"] for t in sim.running(sid))
    assert all(n == 1 for n in slots.values()), slots


def _deployed(sim: Sim, sid: str, replicas: int, value: str) -> bool:
    return sim.converged(sid, replicas) and len(_updated(sim, sid, value)) == replicas


def test_rolling_update_one_at_a_time_stop_first_and_completes():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3, UpdateConfig={"Parallelism": 1, "Delay": 0, "Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 3))
    before = {t["ID"] for t in sim.running(sid)}
    sim.update(sid, _set_env("2"))
    in_flight = []

    def check(s: Sim) -> None:
        _one_per_slot(s, sid)
        in_flight.append(len([t for t in s.tasks(sid) if t["DesiredState"] in ("ready", "running")
                              and t["Status"]["State"] != "running"]))
        assert len(s.running(sid)) >= 2, "stop-first with parallelism 1 stopped two tasks at once"
    sim.until(lambda s: _status(s, sid).get("State") == "completed", check=check)
    assert max(in_flight) == 1
    status = _status(sim, sid)
    assert status["Message"] == "update completed"
    assert parse_time(status["StartedAt"]) < parse_time(status["CompletedAt"])
    assert _deployed(sim, sid, 3, "2")
    assert not before & {t["ID"] for t in sim.running(sid)}
    assert sorted(t["Slot"] for t in sim.running(sid)) == [1, 2, 3]
    assert reconcile(sim.state, sim.now + 60, sim.new_id) == []


def test_update_status_is_updating_with_docker_message():
    sim = Sim(nodes=2)
    sid = sim.create(spec("web", 2))
    sim.until(lambda s: s.converged(sid, 2))
    sim.update(sid, _set_env("2"))
    sim.step()
    assert _status(sim, sid)["State"] == "updating"
    assert _status(sim, sid)["Message"] == "update in progress"
    assert "CompletedAt" not in _status(sim, sid)


def test_parallelism_and_delay_make_batches():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 4, UpdateConfig={"Parallelism": 2, "Delay": 3 * S, "Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 4))
    sim.update(sid, _set_env("2"))
    created_at: dict[str, float] = {}

    def check(s: Sim) -> None:
        created_at.update({t["ID"]: parse_time(t["CreatedAt"]) for t in s.tasks(sid) if s.env(t) == ["V=2"]})
    sim.until(lambda s: _status(s, sid).get("State") == "completed", check=check)
    batches = Counter(created_at.values())
    assert sorted(batches.values()) == [2, 2], f"not two batches of two: {batches}"
    first, second = sorted(batches)
    assert second - first >= 3.0, f"the second batch {second - first} s after the first, not after the delay"
    assert _deployed(sim, sid, 4, "2")


def test_parallelism_zero_updates_all_at_once():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3, UpdateConfig={"Parallelism": 0, "Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 3))
    sim.update(sid, _set_env("2"))
    sim.step()
    assert len([t for t in sim.tasks(sid) if sim.env(t) == ["V=2"]]) == 3
    sim.until(lambda s: _status(s, sid).get("State") == "completed")


def test_start_first_starts_the_new_task_before_stopping_the_old():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3, UpdateConfig={"Parallelism": 1, "Order": "start-first", "Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 3))
    sim.update(sid, _set_env("2"))
    most = []

    def check(s: Sim) -> None:
        running = s.running(sid)
        assert len(running) >= 3, "start-first let the running count drop"
        most.append(len(running))
    sim.until(lambda s: _status(s, sid).get("State") == "completed", check=check)
    assert max(most) == 4, "the new task never ran beside the old one"
    sim.run(1)
    assert _deployed(sim, sid, 3, "2")
    assert sorted(t["Slot"] for t in sim.running(sid)) == [1, 2, 3]


def _failing_v2(task: dict) -> str:
    return "failed" if task["Spec"]["ContainerSpec"].get("Env") == ["V=2"] else "running"


def test_failure_action_pause():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3, UpdateConfig={"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * S}))
    sim.until(lambda s: s.converged(sid, 3))
    sim.outcome = _failing_v2
    sim.update(sid, _set_env("2"))
    sim.until(lambda s: _status(s, sid).get("State") == "paused", 30)
    failed = [t for t in sim.tasks(sid) if t["Status"]["State"] == "failed"]
    assert _status(sim, sid)["Message"] == \
        f"update paused due to failure or early termination of task {failed[0]['ID']}"
    sim.run(20)
    assert len([t for t in sim.tasks(sid) if t["Status"]["State"] == "running" and sim.env(t) == []]) == 2, \
        "a paused update went on to other slots"
    assert _status(sim, sid)["State"] == "paused"


def test_a_task_failing_after_the_update_completed_does_not_pause_it():
    sim = Sim(nodes=2)
    sid = sim.create(spec("web", 2, UpdateConfig={"Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 2))
    sim.update(sid, _set_env("2"))
    sim.until(lambda s: _status(s, sid).get("State") == "completed")
    sim.report(sim.running(sid)[0]["ID"], "failed")
    sim.until(lambda s: s.converged(sid, 2))
    assert _status(sim, sid)["State"] == "completed"


def test_failure_action_continue_completes():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 2, UpdateConfig={"Parallelism": 1, "FailureAction": "continue", "Monitor": 1 * S},
                          RestartPolicy={"Condition": "none"}))
    sim.until(lambda s: s.converged(sid, 2))
    sim.outcome = _failing_v2
    sim.update(sid, _set_env("2"))
    sim.until(lambda s: _status(s, sid).get("State") == "completed", 60)
    assert sorted(t["Status"]["State"] for t in sim.tasks(sid) if sim.env(t) == ["V=2"]) == ["failed", "failed"]


def test_failure_action_rollback_restores_the_previous_spec():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3, UpdateConfig={"Parallelism": 1, "FailureAction": "rollback", "Monitor": 5 * S},
                          RollbackConfig={"Parallelism": 0, "Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 3))
    sim.outcome = _failing_v2
    sim.update(sid, _set_env("2"))
    sim.until(lambda s: _status(s, sid).get("State") == "rollback_started", 30)
    [failed] = [t for t in sim.tasks(sid) if t["Status"]["State"] == "failed"]
    assert _status(sim, sid)["Message"] == \
        f"update rolled back due to failure or early termination of task {failed['ID']}"
    service = sim.service(sid)
    assert "Env" not in service["Spec"]["TaskTemplate"]["ContainerSpec"] and "PreviousSpec" not in service
    sim.until(lambda s: _status(s, sid).get("State") == "rollback_completed", 60)
    assert _status(sim, sid)["Message"] == "rollback completed"
    assert sim.converged(sid, 3) and all(sim.env(t) == [] for t in sim.running(sid))


def test_manual_rollback_uses_the_rollback_config():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3, UpdateConfig={"Parallelism": 0, "Monitor": 1 * S},
                          RollbackConfig={"Parallelism": 1, "Order": "start-first", "Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 3))
    sim.update(sid, _set_env("2"))
    sim.until(lambda s: _status(s, sid).get("State") == "completed")
    sim.update(sid, rollback=True)
    assert _status(sim, sid)["State"] == "rollback_started"

    def check(s: Sim) -> None:
        assert len(s.running(sid)) >= 3, "the rollback did not run start-first"
    sim.until(lambda s: _status(s, sid).get("State") == "rollback_completed", check=check)
    sim.run(1)
    assert sim.converged(sid, 3) and all(sim.env(t) == [] for t in sim.running(sid))


def test_force_update_replaces_every_task():
    sim = Sim(nodes=2)
    sid = sim.create(spec("web", 2, UpdateConfig={"Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 2))
    before = {t["ID"] for t in sim.running(sid)}
    sim.update(sid, lambda s: s["TaskTemplate"].update(ForceUpdate=1))
    sim.until(lambda s: _status(s, sid).get("State") == "completed")
    assert sim.converged(sid, 2) and not before & {t["ID"] for t in sim.running(sid)}


def test_a_new_update_during_an_update_starts_over_to_the_newest_spec():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 4, UpdateConfig={"Parallelism": 1, "Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 4))
    sim.update(sid, _set_env("2"))
    sim.run(1.5)
    assert _status(sim, sid)["State"] == "updating"
    sim.update(sid, _set_env("3"))
    assert "UpdateStatus" not in sim.service(sid)
    sim.until(lambda s: _status(s, sid).get("State") == "completed", check=lambda s: _one_per_slot(s, sid))
    sim.run(1)
    assert _deployed(sim, sid, 4, "3")


def test_a_new_leader_finishes_an_update_with_no_task_lost_or_duplicated():
    for cut in (0.5, 1.25, 2.0, 3.5, 6.0):
        for order in ("stop-first", "start-first"):
            sim = Sim(nodes=3)
            sid = sim.create(spec("web", 5, UpdateConfig={"Parallelism": 2, "Delay": 1 * S, "Monitor": 1 * S,
                                                          "Order": order}))
            sim.until(lambda s: s.converged(sid, 5))
            sim.update(sid, _set_env("2"))
            sim.run(cut)
            if cut < 4:  # mid-rollout, or (3.5 s) monitoring the last batch
                assert _status(sim, sid)["State"] == "updating", (cut, order)
            if cut < 3:
                assert not _deployed(sim, sid, 5, "2"), (cut, order)
            # the leader is killed: what it proposed last and not yet committed is lost
            reconcile(sim.state, sim.now, sim.new_id)  # proposed, never committed
            successor = sim.leader_change()
            successor.run(0.5)
            successor.until(lambda s: _status(s, sid).get("State") == "completed", 60,
                            check=lambda s: _one_per_slot(s, sid) if order == "stop-first" else None)
            successor.run(1)
            assert _deployed(successor, sid, 5, "2"), (cut, order)
            assert sorted(t["Slot"] for t in successor.running(sid)) == [1, 2, 3, 4, 5], (cut, order)
            live = [t for t in successor.tasks(sid) if t["DesiredState"] in ("ready", "running")]
            assert len(live) == 5, (cut, order, live)


def test_the_new_leader_also_applies_the_old_leaders_late_proposals_harmlessly():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 4, UpdateConfig={"Parallelism": 2, "Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 4))
    sim.update(sid, _set_env("2"))
    sim.run(1)
    stale = reconcile(sim.state, sim.now, sim.new_id)
    successor = sim.leader_change()
    successor.step()  # the new leader proposes the same steps with its own IDs
    for command in stale:  # and then the old leader's proposals are committed after all
        successor.propose(command)
    successor.until(lambda s: _status(s, sid).get("State") == "completed", 60,
                    check=lambda s: _one_per_slot(s, sid))
    successor.run(1)
    assert _deployed(successor, sid, 4, "2")
    assert len([t for t in successor.tasks(sid) if t["DesiredState"] in ("ready", "running")]) == 4


def test_the_updaters_steps_do_not_move_the_service_version():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3, UpdateConfig={"Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 3))
    sim.update(sid, _set_env("2"))
    versions = set()
    sim.until(lambda s: _status(s, sid).get("State") == "completed",
              check=lambda s: versions.add(s.service(sid)["Version"]["Index"]))
    assert len(versions) == 2, "Version moved for more than the start and the end of the update"
    assert sim.refused == [], "a proposal of a converging leader was refused"


def test_global_service_updates_node_by_node():
    sim = Sim(nodes=3)
    sid = sim.create(spec("agent", None, UpdateConfig={"Parallelism": 1, "Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 3))
    sim.update(sid, _set_env("2"))

    def check(s: Sim) -> None:
        assert len(s.running(sid)) >= 2
        assert max(Counter(t["NodeID"] for t in s.running(sid)).values()) == 1
    sim.until(lambda s: _status(s, sid).get("State") == "completed", check=check)
    sim.run(1)
    assert _deployed(sim, sid, 3, "2")
    assert sorted(t["NodeID"] for t in sim.running(sid)) == ["n-node1", "n-node2", "n-node3"]


def test_a_constraint_change_the_nodes_still_meet_replaces_nothing():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 2, UpdateConfig={"Monitor": 1 * S}))
    sim.until(lambda s: s.converged(sid, 2))
    before = {t["ID"]: t["NodeID"] for t in sim.running(sid)}
    sim.update(sid, lambda s: s["TaskTemplate"].update(Placement={"Constraints": ["node.labels.none!=x"]}))
    sim.run(3)
    assert {t["ID"]: t["NodeID"] for t in sim.running(sid)} == before
    assert "UpdateStatus" not in sim.service(sid)
    avoided = sorted(before.values())[0]
    sim.update(sid, lambda s: s["TaskTemplate"].update(Placement={"Constraints": [f"node.id!={avoided}"]}))
    sim.until(lambda s: _status(s, sid).get("State") == "completed")
    sim.run(1)
    assert sim.converged(sid, 2) and avoided not in {t["NodeID"] for t in sim.running(sid)}


def test_late_and_repeated_proposals_never_duplicate_a_slot():
    """A leader's proposals committed late, twice, out of order, amid failures:
    every slot still has at most one live task (stop-first), and all converges."""
    rng = random.Random(7)
    sim = Sim(nodes=3)
    sim.outcome = lambda task: "failed" if rng.random() < 0.15 else "running"
    sid = sim.create(spec("web", 6, UpdateConfig={"Parallelism": 2, "Monitor": 1 * S, "FailureAction": "continue"},
                          RestartPolicy={"Condition": "any", "Delay": 1 * S}))
    backlog: list[dict] = []

    def chaotic_round() -> None:
        commands = reconcile(sim.state, sim.now, sim.new_id)
        backlog.extend(commands)
        rng.shuffle(backlog)
        for command in backlog[: rng.randint(0, len(backlog))]:
            sim.propose(command)
        del backlog[: len(backlog) // 2]  # some are committed again later, some lost
        sim.agents()
        sim.now += 0.25
        live = Counter(t["Slot"] for t in sim.tasks(sid) if t["DesiredState"] in ("ready", "running"))
        assert all(n == 1 for n in live.values()), live

    for _ in range(120):
        chaotic_round()
    sim.update(sid, _set_env("2"))
    for _ in range(240):
        chaotic_round()
    sim.outcome = lambda task: "running"
    sim.until(lambda s: _deployed(s, sid, 6, "2") and _status(s, sid).get("State") == "completed", 120,
              check=lambda s: _one_per_slot(s, sid))
    assert sorted(t["Slot"] for t in sim.running(sid)) == [1, 2, 3, 4, 5, 6]
    refused = Counter(command["op"] for command, _ in sim.refused)
    assert refused["batch"] and refused["task.create"] and refused["task.assign"], refused  # the guards did work


def test_the_killed_leaders_node_goes_down_mid_update_and_its_tasks_move():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 6, UpdateConfig={"Parallelism": 1, "Monitor": 1 * S},
                          RestartPolicy={"Condition": "any", "Delay": 1 * S}))
    sim.until(lambda s: s.converged(sid, 6))
    sim.update(sid, _set_env("2"))
    sim.run(2)
    successor = sim.leader_change()
    successor.node_down("n-node1")  # the old leader's node: its agent is gone with it
    successor.until(lambda s: _status(s, sid).get("State") == "completed", 90,
                    check=lambda s: _one_per_slot(s, sid))
    successor.until(lambda s: _deployed(s, sid, 6, "2"), 30)
    assert "n-node1" not in {t["NodeID"] for t in successor.running(sid)}
    assert sorted(t["Slot"] for t in successor.running(sid)) == [1, 2, 3, 4, 5, 6]
