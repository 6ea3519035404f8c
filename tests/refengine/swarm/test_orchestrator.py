"""Replicated and global orchestration, restarts, node availability and the task
reaper, on the simulated cluster (reconcile's commands applied, agents playing)."""

from __future__ import annotations

from collections import Counter

from reference_runtime.swarm.orchestrator import reconcile

from .sim import Sim, spec


def _slots(sim: Sim, sid: str) -> Counter:
    return Counter(t["Slot"] for t in sim.running(sid))


def test_replicas_converge_spread_and_then_nothing_is_proposed():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3))
    sim.until(lambda s: s.converged(sid, 3))
    assert sorted(t["NodeID"] for t in sim.running(sid)) == ["n-node1", "n-node2", "n-node3"]
    assert _slots(sim, sid) == Counter({1: 1, 2: 1, 3: 1})
    assert reconcile(sim.state, sim.now + 60, sim.new_id) == []
    assert "UpdateStatus" not in sim.service(sid)
    assert sim.refused == []


def test_a_proposal_made_twice_changes_nothing_the_second_time():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3))
    for _ in range(40):  # every round proposed twice, as a leader that has not seen its first yet
        commands = reconcile(sim.state, sim.now, sim.new_id)
        again = reconcile(sim.state, sim.now, sim.new_id)
        for command in commands + again:
            sim.propose(command)
        sim.agents()
        sim.now += 0.25
    assert sim.converged(sid, 3) and len(sim.tasks(sid)) == 3


def test_scale_adds_and_removes_slots_without_an_update():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 1))
    sim.until(lambda s: s.converged(sid, 1))
    [first] = sim.running(sid)
    sim.scale(sid, 4)
    sim.until(lambda s: s.converged(sid, 4))
    assert first["ID"] in {t["ID"] for t in sim.running(sid)}
    assert _slots(sim, sid) == Counter({1: 1, 2: 1, 3: 1, 4: 1})
    assert "UpdateStatus" not in sim.service(sid)
    per_node = Counter(t["NodeID"] for t in sim.running(sid))
    crowded = per_node.most_common(1)[0][0]
    sim.scale(sid, 3)
    sim.until(lambda s: s.converged(sid, 3))
    assert sorted(Counter(t["NodeID"] for t in sim.running(sid)).values()) == [1, 1, 1], \
        f"scale down took a task off a node other than the crowded {crowded}"
    assert "UpdateStatus" not in sim.service(sid)
    sim.run(1)
    assert len(sim.tasks(sid)) == 3, "the removed slot's task was reaped once it stopped"


def test_a_failed_task_is_replaced_in_its_slot_after_the_restart_delay():
    sim = Sim(nodes=2)
    sid = sim.create(spec("web", 2))
    sim.until(lambda s: s.converged(sid, 2))
    victim = sim.running(sid)[0]
    sim.report(victim["ID"], "failed")
    sim.step()
    old = sim.state.tasks[victim["ID"]]
    assert (old["Status"]["State"], old["DesiredState"]) == ("failed", "shutdown")
    [replacement] = [t for t in sim.tasks(sid) if t["Slot"] == victim["Slot"] and t["ID"] != victim["ID"]]
    assert replacement["DesiredState"] == "ready"
    waited = sim.until(lambda s: s.converged(sid, 2))
    assert 4.5 <= waited <= 6.0, f"replaced after {waited} s, not the default 5 s delay"
    assert _slots(sim, sid) == Counter({1: 1, 2: 1})


def test_restart_condition_none_and_on_failure():
    sim = Sim(nodes=1)
    none = sim.create(spec("none", 1, RestartPolicy={"Condition": "none"}))
    onfail = sim.create(spec("onfail", 2, RestartPolicy={"Condition": "on-failure", "Delay": 0}))
    sim.until(lambda s: s.converged(none, 1) and s.converged(onfail, 2))
    sim.report(sim.running(none)[0]["ID"], "failed")
    ok, bad = sorted(sim.running(onfail), key=lambda t: t["Slot"])
    sim.report(ok["ID"], "complete")
    sim.report(bad["ID"], "failed")
    sim.run(10)
    assert len(sim.tasks(none)) == 1 and sim.running(none) == [], "condition none restarted a task"
    assert [t["Slot"] for t in sim.running(onfail)] == [bad["Slot"]], "on-failure: failed slot only"
    assert len(sim.tasks(onfail)) == 3


def test_max_attempts_stops_restarting():
    sim = Sim(nodes=1)
    sim.outcome = lambda task: "failed"
    sid = sim.create(spec("web", 1, RestartPolicy={"Condition": "any", "Delay": 0, "MaxAttempts": 2}))
    sim.run(10)
    states = sorted(t["Status"]["State"] for t in sim.tasks(sid))
    assert states == ["failed"] * 3, "one start and two restarts"
    assert reconcile(sim.state, sim.now, sim.new_id) == []


def test_max_attempts_within_a_window():
    sim = Sim(nodes=1)
    sim.outcome = lambda task: "failed"
    policy = {"Condition": "any", "Delay": 4 * 10**9, "MaxAttempts": 1, "Window": 3 * 10**9}
    sid = sim.create(spec("web", 1, RestartPolicy=policy))
    sim.run(20)
    assert _created(sim, sid) >= 4, "restarts further apart than the window keep going"
    assert len(sim.tasks(sid)) == 2, "history: one more task than MaxAttempts, as swarmkit keeps"
    within = sim.create(spec("within", 1, RestartPolicy={**policy, "Delay": 2 * 10**9}))
    sim.run(20)
    assert _created(sim, within) == 2, "a second restart within the window"


def _created(sim: Sim, sid: str) -> int:
    """Tasks ever created for the service (the reaper forgets old ones)."""
    return len({c["id"] for c, _ in sim.log if c["op"] == "task.create" and c["service"] == sid} |
               {s["id"] for c, _ in sim.log if c["op"] == "batch" for s in c["commands"]
                if s["op"] == "task.create" and s["service"] == sid})


def test_global_service_one_task_per_node_including_a_joining_node():
    sim = Sim(nodes=2)
    sid = sim.create(spec("agent", None))
    sim.until(lambda s: s.converged(sid, 2))
    assert sorted(t["NodeID"] for t in sim.running(sid)) == ["n-node1", "n-node2"]
    assert all("Slot" not in t for t in sim.tasks(sid))
    new = sim.add_node("node3")
    sim.until(lambda s: s.converged(sid, 3))
    assert new in {t["NodeID"] for t in sim.running(sid)}
    sim.set_node(new, Availability="drain")
    sim.until(lambda s: s.converged(sid, 2))
    assert new not in {t["NodeID"] for t in sim.running(sid)}
    sim.set_node(new, Availability="active")
    sim.until(lambda s: s.converged(sid, 3))


def test_global_respects_constraints_and_pause():
    sim = Sim(nodes=3)
    sim.set_node("n-node3", Availability="pause")
    sid = sim.create(spec("agent", None, Placement={"Constraints": ["node.role!=manager"]}))
    sim.until(lambda s: s.converged(sid, 1))
    assert [t["NodeID"] for t in sim.running(sid)] == ["n-node2"]
    sim.set_node("n-node3", Availability="active")
    sim.until(lambda s: s.converged(sid, 2))
    sim.set_node("n-node3", Availability="pause")
    sim.run(2)
    assert sim.converged(sid, 2), "pause keeps the running task"


def test_drain_moves_replicated_tasks_and_pause_places_nothing_new():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3))
    sim.until(lambda s: s.converged(sid, 3))
    sim.set_node("n-node3", Availability="drain")
    sim.until(lambda s: s.converged(sid, 3) and "n-node3" not in {t["NodeID"] for t in s.running(sid)})
    assert _slots(sim, sid) == Counter({1: 1, 2: 1, 3: 1})
    sim.set_node("n-node3", Availability="active")
    sim.set_node("n-node2", Availability="pause")
    sim.run(1)
    assert "n-node2" in {t["NodeID"] for t in sim.running(sid)}, "pause stopped a task"
    sim.scale(sid, 5)
    sim.until(lambda s: s.converged(sid, 5))
    assert Counter(t["NodeID"] for t in sim.running(sid))["n-node2"] == 1, "a task was placed on a paused node"


def test_a_node_that_goes_down_loses_its_tasks_to_the_others():
    sim = Sim(nodes=3)
    sid = sim.create(spec("web", 3))
    sim.until(lambda s: s.converged(sid, 3))
    sim.node_down("n-node2")
    sim.until(lambda s: len([t for t in s.running(sid) if t["NodeID"] != "n-node2"]) == 3)
    assert _slots(sim, sid) == Counter({1: 1, 2: 1, 3: 1})


def test_task_history_is_kept_to_the_retention_limit():
    sim = Sim(nodes=1)
    sim.outcome = lambda task: "failed"
    sid = sim.create(spec("web", 1, RestartPolicy={"Condition": "any", "Delay": 0}))
    sim.run(10)
    tasks = sim.tasks(sid)
    assert len(tasks) == 5, f"{len(tasks)} tasks kept in the slot"
    assert sum(t["DesiredState"] != "shutdown" for t in tasks) == 1


def test_a_removed_service_leaves_no_task_once_they_stopped():
    sim = Sim(nodes=2)
    sid = sim.create(spec("web", 3))
    sim.until(lambda s: s.converged(sid, 3))
    sim.propose({"op": "service.remove", "id": sid, "at": sim.at})
    assert {t["DesiredState"] for t in sim.tasks(sid)} == {"remove"}
    sim.until(lambda s: not s.tasks(sid), 5)


def test_a_node_that_no_longer_meets_the_constraints_loses_its_task():
    sim = Sim(nodes=3)
    sim.set_node("n-node2", Labels={"tier": "web"})
    sim.set_node("n-node3", Labels={"tier": "web"})
    sid = sim.create(spec("web", 2, Placement={"Constraints": ["node.labels.tier==web"]},
                          RestartPolicy={"Condition": "any", "Delay": 0}))
    sim.until(lambda s: s.converged(sid, 2))
    sim.set_node("n-node3", Labels={})
    sim.run(1)
    [rejected] = [t for t in sim.tasks(sid) if t["Status"]["State"] == "rejected"]
    assert rejected["Status"]["Err"] == "assigned node no longer meets constraints"
    assert rejected["Status"]["Message"] == "task rejected by constraint enforcer"
    sim.until(lambda s: s.converged(sid, 2))
    assert {t["NodeID"] for t in sim.running(sid)} == {"n-node2"}


def test_one_rounds_commands_never_conflict_with_each_other():
    """A daemon may propose a round as one batch: then one refused command would
    hold back all of them, so a round must hold no conflicting pair."""
    sim = Sim(nodes=3)
    sim.batched = True
    flaky = iter([True, False] * 200)
    sim.outcome = lambda task: "failed" if next(flaky) else "running"
    web = sim.create(spec("web", 4, UpdateConfig={"Parallelism": 2, "Monitor": 1 * 10**9, "FailureAction": "continue",
                                                  "Order": "start-first"},
                          RestartPolicy={"Condition": "any", "Delay": 10**9}))
    agent = sim.create(spec("agent", None, RestartPolicy={"Condition": "any", "Delay": 0}))
    sim.run(15)
    sim.update(web, lambda s: s["TaskTemplate"]["ContainerSpec"].update(Env=["V=2"]))
    sim.set_node("n-node3", Availability="drain")
    sim.scale(web, 6)
    sim.run(30)
    sim.outcome = lambda task: "running"
    sim.until(lambda s: s.converged(web, 6) and s.converged(agent, 2))
    assert sim.refused == []
