"""RaftCore under simulated time and network (``raftsim``): elections,
replication, failures, partitions, membership, and a property check of
Raft's safety under random faults."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_runtime.swarm.raft.core import CANDIDATE, FOLLOWER, LEADER, RaftCore
from reference_runtime.swarm.raft.errors import ConfigChangeRefused, NotLeader, RaftError
from reference_runtime.swarm.raft.storage import Entry, MemoryStorage

from .raftsim import SimCluster, addr

ABC = ["a", "b", "c"]


def test_three_members_elect_one_leader_and_all_follow_it():
    sim = SimCluster(ABC, seed=1)
    leader = sim.stable_leader(timeout=5)
    sim.run(1)
    assert sim.leaders_among(ABC) == [leader]
    term = sim.cores[leader].term
    for node_id in ABC:
        assert sim.cores[node_id].leader_id == leader
        assert sim.cores[node_id].term == term
    # A pre-vote round does not raise terms: the first election is term 2 (the config's is 1).
    assert term == 2


def test_a_proposal_commits_on_every_member_in_order():
    sim = SimCluster(ABC, seed=2)
    indexes = [sim.propose({"n": n}) for n in range(20)]
    assert indexes == sorted(indexes)
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 20 for i in ABC), 5)
    for node_id in ABC:
        assert sim.applied_commands(node_id) == [{"n": n} for n in range(20)]
        assert [i for i, _ in sim.applied[node_id]] == indexes


def test_propose_on_a_follower_names_the_leader():
    sim = SimCluster(ABC, seed=3)
    leader = sim.stable_leader()
    sim.run(0.5)
    follower = next(i for i in ABC if i != leader)
    with pytest.raises(NotLeader) as caught:
        sim.cores[follower].propose({"n": 1})
    assert caught.value.leader_id == leader


def test_killed_leader_is_replaced_and_nothing_committed_is_lost():
    sim = SimCluster(ABC, seed=4)
    for n in range(5):
        sim.propose({"n": n})
    old = sim.stable_leader()
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 5 for i in ABC), 5)
    sim.kill(old)
    new = sim.stable_leader(timeout=10)
    assert new != old
    sim.propose({"n": 5})
    survivors = [i for i in ABC if i != old]
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 6 for i in survivors), 5)
    sim.start(old)  # restarts on its storage and catches up
    assert sim.run_until(lambda: len(sim.applied[old]) == 6, 10)
    assert sim.applied_commands(old) == [{"n": n} for n in range(6)]
    assert sim.leader() == new  # the restarted member did not disrupt the leader


def test_uncommitted_entries_of_a_deposed_leader_are_replaced():
    sim = SimCluster(ABC, seed=5)
    sim.propose({"n": 0})
    old = sim.stable_leader()
    sim.run(0.5)
    others = {i for i in ABC if i != old}
    sim.partition({old}, others)
    lost = sim.cores[old].propose({"lost": True})  # cannot reach a majority
    sim.run(0.5)
    assert sim.cores[old].commit_index < lost
    assert sim.run_until(lambda: sim.leaders_among(others), 10)
    assert sim.run_until(lambda: sim.leader() in others, 2)  # the old one stepped down
    sim.propose({"n": 1})
    sim.heal()
    assert sim.run_until(lambda: len(sim.applied[old]) == 2, 10)
    assert sim.applied_commands(old) == [{"n": 0}, {"n": 1}]


def test_minority_leader_steps_down_by_check_quorum_and_refuses_writes():
    sim = SimCluster(["a", "b", "c", "d", "e"], seed=6)
    leader = sim.stable_leader()
    sim.run(0.5)
    minority = {leader, next(i for i in sim.cores if i != leader)}
    majority = set(sim.cores) - minority
    sim.partition(minority, majority)
    assert sim.run_until(lambda: sim.cores[leader].role != LEADER, 2.1)  # within an election timeout or so
    with pytest.raises(NotLeader):
        sim.cores[leader].propose({"n": 1})
    new = sim.stable_leader(timeout=10)
    assert new in majority
    sim.propose({"n": 2})
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 1 for i in majority), 5)
    sim.run(5)  # the minority never elects anyone
    assert not sim.leaders_among(minority)


def test_rejoining_member_does_not_depose_a_healthy_leader():
    sim = SimCluster(ABC, seed=7)
    leader = sim.stable_leader()
    sim.run(0.5)
    loner = next(i for i in ABC if i != leader)
    sim.partition({loner}, set(ABC) - {loner})
    term = sim.cores[leader].term
    sim.run(10)  # many election timeouts alone: pre-votes fail, the term stays
    assert sim.cores[loner].term == term
    assert sim.cores[loner].role == FOLLOWER
    sim.heal()
    sim.run(3)
    assert sim.leader() == leader
    assert sim.cores[leader].term == term


def test_without_any_message_no_term_is_raised():
    sim = SimCluster(ABC, seed=8)
    sim.partition({"a"}, {"b"}, {"c"})
    sim.run(10)
    assert all(core.term == 1 and core.role != CANDIDATE for core in sim.cores.values())


def test_bootstrap_then_grow_to_three_then_shrink():
    sim = SimCluster(["a"], seed=9)
    sim.propose({"n": 0})
    for new in ("b", "c"):
        sim.add_node(new)
        leader = sim.cores[sim.stable_leader()]
        assert sim.run_until(lambda: _can_change(leader), 5)
        index = leader.add_member(new, addr(new))
        assert sim.run_until(lambda: leader.commit_index >= index, 5)
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 1 for i in "abc"), 5)
    for node_id in "abc":
        assert sim.cores[node_id].members == {i: addr(i) for i in "abc"}
    # Three members now: losing one keeps a quorum.
    sim.kill("a")
    sim.propose({"n": 1})
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 2 for i in "bc"), 10)
    leader = sim.cores[sim.stable_leader()]
    assert sim.run_until(lambda: _can_change(leader), 5)
    index = leader.remove_member("a")
    assert sim.run_until(lambda: leader.commit_index >= index, 5)
    assert set(leader.members) == {"b", "c"}
    sim.propose({"n": 2})
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 3 for i in "bc"), 5)


def _can_change(core: RaftCore) -> bool:
    return core.role == LEADER and core.term_at(core.commit_index) == core.term


def test_one_membership_change_at_a_time():
    sim = SimCluster(ABC + ["d", "e"], seed=10, joiners=("d", "e"))
    leader = sim.cores[sim.stable_leader()]
    assert sim.run_until(lambda: _can_change(leader), 5)
    leader.add_member("d", addr("d"))
    with pytest.raises(ConfigChangeRefused):
        leader.add_member("e", addr("e"))
    with pytest.raises(ConfigChangeRefused):
        leader.remove_member("zz")
    assert sim.run_until(lambda: _can_change(leader) and leader.commit_index >= leader.last_index, 5)
    with pytest.raises(ConfigChangeRefused):
        leader.add_member("d", addr("d"))  # changes nothing
    leader.add_member("e", addr("e"))
    sim.collect(leader.id)
    assert sim.run_until(lambda: all(len(sim.cores[i].members) == 5 for i in sim.cores), 5)
    follower = next(c for c in sim.cores.values() if c.role == FOLLOWER)
    with pytest.raises(NotLeader):
        follower.add_member("f", addr("f"))


def test_a_new_member_learns_the_log_and_the_configuration_from_the_leader():
    sim = SimCluster(ABC + ["d"], seed=11, joiners=("d",))
    for n in range(100):  # more than one append's batch
        sim.propose({"n": n})
    sim.run(10)
    joiner = sim.cores["d"]
    assert joiner.members == {} and joiner.term == 0 and joiner.role == FOLLOWER  # waits, never campaigns
    leader = sim.cores[sim.stable_leader()]
    leader.add_member("d", addr("d"))
    sim.collect(leader.id)
    assert sim.run_until(lambda: len(sim.applied["d"]) == 100, 10)
    assert joiner.members == {i: addr(i) for i in "abcd"}
    # Four members: the quorum is three, so the leader survives losing one of them.
    sim.kill(next(i for i in ABC if i != leader.id))
    sim.propose({"n": 100})
    assert sim.run_until(lambda: len(sim.applied["d"]) == 101, 10)


def test_removed_member_stops_participating():
    sim = SimCluster(ABC, seed=12)
    leader = sim.cores[sim.stable_leader()]
    assert sim.run_until(lambda: _can_change(leader), 5)
    gone = next(i for i in ABC if i != leader.id)
    index = leader.remove_member(gone)
    sim.collect(leader.id)
    assert sim.run_until(lambda: leader.commit_index >= index, 5)
    assert sim.run_until(lambda: gone not in sim.cores[gone].members, 5)  # it learned of its removal
    term = leader.term
    sim.run(10)  # not a member: it never campaigns, and nobody replicates to it
    assert sim.cores[gone].term == term and sim.cores[gone].role == FOLLOWER
    assert sim.leader() == leader.id


def test_leader_that_removes_itself_steps_down_after_commit():
    sim = SimCluster(ABC, seed=13)
    leader = sim.cores[sim.stable_leader()]
    assert sim.run_until(lambda: _can_change(leader), 5)
    index = leader.remove_member(leader.id)
    assert leader.role == LEADER  # until the removal commits, it still leads
    sim.collect(leader.id)
    assert sim.run_until(lambda: leader.role != LEADER, 5)
    assert leader.commit_index >= index
    new = sim.stable_leader(timeout=10)
    assert new != leader.id
    sim.propose({"n": 1})
    rest = [i for i in ABC if i != leader.id]
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 1 for i in rest), 5)
    sim.run(5)
    assert leader.role == FOLLOWER


def test_force_new_cluster_makes_a_lone_survivor_leader_with_its_log():
    sim = SimCluster(ABC, seed=14)
    for n in range(3):
        sim.propose({"n": n})
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 3 for i in ABC), 5)
    survivor = next(i for i in ABC if sim.cores[i].role != LEADER)
    for node_id in ABC:
        sim.kill(node_id)
    storage = sim.storages[survivor]
    old_term = storage.term
    RaftCore.force_new_cluster(storage, survivor)
    assert storage.term > old_term
    core = sim.start(survivor)
    assert sim.run_until(lambda: core.role == LEADER, 1)
    assert core.members == {survivor: addr(survivor)}
    core.propose({"n": 3})
    sim.collect(survivor)
    assert sim.applied_commands(survivor) == [{"n": n} for n in range(4)]


def test_force_new_cluster_needs_an_address():
    with pytest.raises(RaftError):
        RaftCore.force_new_cluster(MemoryStorage(), "a")


def test_bootstrap_refuses_storage_in_use():
    storage = MemoryStorage()
    RaftCore.bootstrap(storage, "a", "x:1")
    with pytest.raises(RaftError):
        RaftCore.bootstrap(storage, "a", "x:1")


def test_single_member_commits_at_once():
    storage = MemoryStorage()
    RaftCore.bootstrap(storage, "a", "x:1")
    core = RaftCore("a", storage)
    core.tick(0.0)
    assert core.role == LEADER and core.take_outbox() == []
    assert core.propose({"k": "v"}) == core.commit_index
    assert core.take_committed() == [(3, {"k": "v"})]
    assert core.take_committed() == []


def test_a_vote_is_given_once_per_term_and_survives_a_restart():
    storage = MemoryStorage()
    storage.save_hard_state(1, None)
    storage.append([Entry(1, "config", {"members": {i: addr(i) for i in ABC}})])
    core = RaftCore("a", storage)
    ask = {"type": "vote", "term": 5, "last_index": 1, "last_term": 1}
    core.receive(0.0, {**ask, "from": "b"})
    assert core.take_outbox()[0][1]["granted"] is True
    restarted = RaftCore("a", storage)
    restarted.receive(0.0, {**ask, "from": "c"})
    assert restarted.take_outbox()[0][1]["granted"] is False
    restarted.receive(0.0, {**ask, "from": "b"})  # the same candidate asking again
    assert restarted.take_outbox()[0][1]["granted"] is True


def test_no_vote_for_a_candidate_with_a_shorter_log():
    storage = MemoryStorage()
    storage.save_hard_state(2, None)
    storage.append([Entry(1, "config", {"members": {i: addr(i) for i in ABC}}), Entry(2, "noop")])
    core = RaftCore("a", storage)
    core.receive(0.0, {"type": "vote", "term": 3, "from": "b", "last_index": 1, "last_term": 1})
    assert core.take_outbox()[0][1]["granted"] is False
    core.receive(0.0, {"type": "pre_vote", "term": 4, "from": "b", "last_index": 5, "last_term": 1})
    assert core.take_outbox()[0][1]["granted"] is False


@pytest.mark.parametrize("msg", [
    None, [], {"type": "vote"}, {"type": "nope", "term": 1, "from": "b"},
    {"type": "vote", "term": True, "from": "b", "last_index": 1, "last_term": 1},
    {"type": "vote", "term": -1, "from": "b", "last_index": 1, "last_term": 1},
    {"type": "append", "term": 9, "from": "b", "prev_index": 0, "prev_term": 0, "commit": 5,
     "entries": [{"term": 10, "kind": "noop", "data": {}}]},
    {"type": "append", "term": 9, "from": "b", "prev_index": 0, "prev_term": 0, "commit": 5,
     "entries": [{"term": 9, "kind": "config", "data": {"members": []}}]},
    {"type": "append_resp", "term": 9, "from": "b", "success": True, "match_index": 1, "reject_index": 0,
     "conflict_index": 0, "conflict_term": "x"},
    {"type": "append_resp", "term": 9, "from": "b", "success": False, "match_index": 1, "reject_index": 0,
     "conflict_index": 0},
    {"type": "append", "term": 9, "from": "b", "prev_index": 0, "prev_term": 0, "commit": 5, "entries": ["x"]},
    {"type": "vote_resp", "term": 9, "from": "", "granted": True},
    {"type": "vote_resp", "term": 9, "from": "b", "granted": True, "addr": 5},
])
def test_malformed_messages_are_dropped_whole(msg):
    storage = MemoryStorage()
    RaftCore.bootstrap(storage, "a", "x:1")
    core = RaftCore("a", storage)
    core.receive(0.0, msg)
    assert core.term == 1 and core.last_index == 1 and core.take_outbox() == []


def test_follower_log_conflicts_are_repaired_a_term_at_a_time():
    # b has a long suffix of a term nobody else kept; the leader fixes it quickly.
    sim = SimCluster(ABC, seed=15)
    leader = sim.stable_leader()
    for n in range(5):
        sim.propose({"n": n})
    assert sim.run_until(lambda: all(len(sim.applied[i]) == 5 for i in ABC), 5)
    sim.partition({leader}, set(ABC) - {leader})
    for n in range(50):
        sim.cores[leader].propose({"stale": n})
    sim.collect(leader)
    assert sim.run_until(lambda: sim.leader() not in (None, leader), 10)
    for n in range(5, 8):
        sim.propose({"n": n})
    sim.run(0.5)
    before = sim.rejected_appends
    sim.heal()
    assert sim.run_until(lambda: len(sim.applied[leader]) == 8, 5)
    assert sim.rejected_appends - before <= 3  # not one per stale entry
    assert sim.applied_commands(leader) == [{"n": n} for n in range(8)]


# -- the property: safety under random faults ---------------------------------

IDS = ["a", "b", "c", "d", "e"]


def run_chaos(sim: SimCluster, rng: random.Random, seconds: float, rates: dict[str, float]) -> None:
    """Random faults and proposals, each step with the given probabilities."""
    proposed = 0
    while sim.now < seconds:
        sim.step()
        r = rng.random()
        for action, rate in rates.items():
            if r >= rate:
                r -= rate
                continue
            if action == "propose" and (leader := sim.leader()):
                sim.cores[leader].propose({"p": proposed})
                sim.collect(leader)
                proposed += 1
            elif action == "kill":
                sim.kill(rng.choice(IDS))
            elif action == "kill_leader" and (leader := sim.leader()):
                sim.kill(leader)
            elif action == "restart" and sim.down:
                sim.start(sorted(sim.down)[0])
            elif action == "crash":  # and restart at once, on its storage
                sim.start(rng.choice(IDS))
            elif action == "partition":
                side = set(rng.sample(IDS, rng.randint(1, 2)))
                sim.partition(side, set(IDS) - side)
            elif action == "heal":
                sim.heal()
            elif action == "change" and (leader := sim.leader()) and sim.cores[leader].config_change_ready:
                core = sim.cores[leader]
                outside = [i for i in IDS if i not in core.members]
                if outside and (len(core.members) < 4 or rng.random() < 0.5):
                    joiner = rng.choice(outside)
                    core.add_member(joiner, addr(joiner))
                else:
                    core.remove_member(rng.choice(sorted(core.members)))  # the leader too, sometimes
                sim.collect(leader)
            break


def converge(sim: SimCluster) -> None:
    """Once the faults end (the network stays lossy), a leader is elected and
    what it commits reaches every member, the same everywhere."""
    sim.heal()
    for node_id in list(sim.down):
        sim.start(node_id)

    def all_applied_final() -> bool:
        members = sim.cores[sim.leader() or "a"].members
        return bool(members) and all(sim.applied[i] and sim.applied[i][-1][1] == {"final": True} for i in members)

    for _ in range(3):  # a leader may still change once, dropping the proposal
        leader = sim.stable_leader(timeout=30)
        sim.cores[leader].propose({"final": True})
        sim.collect(leader)
        if sim.run_until(all_applied_final, 10):
            break
    assert all_applied_final()
    members = sorted(sim.cores[sim.leader()].members)
    assert all(sim.applied[i] == sim.applied[members[0]] for i in members)


@pytest.mark.parametrize("seed", range(40))
def test_safety_under_random_faults(seed):
    """At most one leader per term and one command per index (checked at every
    step by SimCluster) under crashes, restarts, partitions, and messages
    lost, duplicated and reordered."""
    rng = random.Random(seed)
    sim = SimCluster(IDS, seed=seed, drop=rng.choice([0.0, 0.05, 0.2]), duplicate=rng.choice([0.0, 0.1]),
                     delay=(0.001, rng.choice([0.01, 0.1, 0.3])))
    run_chaos(sim, rng, 20.0, {"propose": 0.05, "kill": 0.003, "kill_leader": 0.004, "restart": 0.01,
                                   "crash": 0.002, "partition": 0.003, "heal": 0.003})
    assert len(sim.leaders) >= 2  # the run did go through a change of leader
    converge(sim)


@pytest.mark.parametrize("seed", range(20))
def test_safety_with_membership_changes_under_random_faults(seed):
    """The same, while members are added and removed (the leader included),
    starting from three members and two nodes waiting to join."""
    rng = random.Random(seed)
    sim = SimCluster(IDS, seed=seed, drop=rng.choice([0.0, 0.05, 0.2]), duplicate=rng.choice([0.0, 0.1]),
                     delay=(0.001, rng.choice([0.01, 0.1])), joiners=("d", "e"))
    run_chaos(sim, rng, 20.0, {"propose": 0.05, "change": 0.02, "kill": 0.002, "kill_leader": 0.002,
                               "restart": 0.01, "crash": 0.001, "partition": 0.002, "heal": 0.003})
    assert len(sim.leaders) >= 2
    converge(sim)
    leader = sim.cores[sim.leader()]
    changes = [i for i in range(1, leader.last_index + 1) if sim.storages[leader.id].entry(i).kind == "config"]
    assert len(changes) >= 3  # the initial configuration and at least two changes


FAULT = st.tuples(st.floats(0.0, 10.0), st.sampled_from(["kill", "restart", "partition", "heal"]),
                  st.integers(0, 4), st.integers(1, 2))


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), drop=st.sampled_from([0.0, 0.2]), max_delay=st.sampled_from([0.01, 0.3]),
       faults=st.lists(FAULT, min_size=3, max_size=20))
def test_safety_under_planned_faults(seed, drop, max_delay, faults):
    """The same property with the faults as a plan hypothesis can shrink to a
    minimal failing sequence; proposals arrive steadily at whoever leads."""
    sim = SimCluster(IDS, seed=seed, drop=drop, duplicate=0.05, delay=(0.001, max_delay))
    proposed = 0
    for at, action, who, size in sorted(faults):
        while sim.now < at:
            sim.run(0.1)
            if leader := sim.leader():
                sim.cores[leader].propose({"p": proposed})
                sim.collect(leader)
                proposed += 1
        if action == "kill":
            sim.kill(IDS[who])
        elif action == "restart":
            sim.start(IDS[who])
        elif action == "partition":
            side = set(IDS[who:who + size])
            sim.partition(side, set(IDS) - side)
        else:
            sim.heal()
    converge(sim)


def test_entries_of_an_earlier_term_commit_only_with_one_of_the_current_term():
    """Raft §5.4.2 (the paper's figure 8): a majority holding an old-term entry
    does not commit it; an entry of the leader's own term on a majority does."""
    storage = MemoryStorage()
    storage.save_hard_state(3, None)
    storage.append([Entry(1, "config", {"members": {i: addr(i) for i in ABC}}), Entry(2, "command", {"n": 1})])
    core = RaftCore("a", storage, rng=random.Random(0))
    core.tick(0.0)
    core.tick(5.0)  # the election timer fires: a pre-vote for term 4
    assert {m["type"] for _, m in core.take_outbox()} == {"pre_vote"}
    core.receive(5.0, {"type": "pre_vote_resp", "term": 4, "from": "b", "granted": True})
    assert core.role == CANDIDATE and core.term == 4
    core.receive(5.0, {"type": "vote_resp", "term": 4, "from": "b", "granted": True})
    assert core.role == LEADER and core.last_index == 3  # its no-op
    ok = {"type": "append_resp", "term": 4, "from": "b", "success": True, "reject_index": 0,
          "conflict_index": 0, "conflict_term": None}
    core.receive(5.1, {**ok, "match_index": 2})
    assert core.commit_index == 0  # a and b hold entry 2, but it is of term 2
    core.receive(5.2, {**ok, "match_index": 3})
    assert core.commit_index == 3
    assert core.take_committed() == [(2, {"n": 1})]


def test_commands_that_could_not_travel_are_refused_at_propose():
    storage = MemoryStorage()
    RaftCore.bootstrap(storage, "a", "x:1")
    core = RaftCore("a", storage)
    core.tick(0.0)
    deep: dict = {}
    for _ in range(200):
        deep = {"d": deep}
    for command in ({"blob": "x" * (2 << 20)}, deep):
        with pytest.raises(RaftError):
            core.propose(command)
    with pytest.raises(TypeError):
        core.propose({"not json": object()})
    assert core.last_index == 2  # the config and the leader's no-op only


def test_a_lagging_follower_catches_up_in_bounded_messages():
    sim = SimCluster(ABC, seed=16)
    leader = sim.stable_leader()
    lagging = next(i for i in ABC if i != leader)
    sim.kill(lagging)
    for n in range(12):
        sim.cores[leader].propose({"n": n, "pad": "x" * 500_000})
        sim.collect(leader)
        sim.run(0.05)
    before = sim.bytes_to.get(lagging, 0)
    sim.run(5)  # 50 heartbeats to a dead member: not 50 full batches
    assert sim.bytes_to[lagging] - before < 100_000
    sim.start(lagging)
    assert sim.run_until(lambda: len(sim.applied[lagging]) == 12, 10)
    assert 2 << 20 < sim.largest_message < 5 << 20  # several entries per append, but bounded


SCALARS = st.none() | st.booleans() | st.integers(-2, 12) | st.sampled_from(["a", "b", "", "x"])
SMALL = st.integers(0, 4)
ENTRY = st.fixed_dictionaries({"term": st.integers(1, 4), "kind": st.sampled_from(["command", "config", "noop"]),
                               "data": st.sampled_from([{}, {"members": {"b": "b:1", "c": "c:1"}}, {"n": 1}])})
COMMON = {"term": st.integers(0, 4), "from": st.sampled_from(["b", "c", "z"])}
PLAUSIBLE = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["pre_vote", "vote"]), **COMMON, "last_index": SMALL,
                           "last_term": SMALL}),
    st.fixed_dictionaries({"type": st.sampled_from(["pre_vote_resp", "vote_resp"]), **COMMON,
                           "granted": st.booleans()}),
    st.fixed_dictionaries({"type": st.just("append"), **COMMON, "prev_index": SMALL, "prev_term": SMALL,
                           "commit": SMALL, "entries": st.lists(ENTRY, max_size=4).map(
                               lambda es: sorted(es, key=lambda e: e["term"]))}),
    st.fixed_dictionaries({"type": st.just("append_resp"), **COMMON, "success": st.booleans(),
                           "match_index": SMALL, "reject_index": SMALL, "conflict_index": SMALL,
                           "conflict_term": st.none() | SMALL}),
)
GARBLED = st.builds(lambda msg, key, value: {**msg, key: value}, PLAUSIBLE,
                    st.sampled_from(["term", "from", "entries", "commit", "granted", "addr", "type"]), SCALARS)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.booleans(), st.lists(PLAUSIBLE | GARBLED, max_size=15))
def test_any_message_sequence_leaves_the_core_consistent(lead, msgs):
    """Forged, garbled or out-of-place messages are handled or dropped; at
    worst a refused overwrite of a committed entry (RaftError, which the node
    logs). Commands come out once each, in order."""
    storage = MemoryStorage()
    storage.save_hard_state(1, None)
    storage.append([Entry(1, "config", {"members": {i: addr(i) for i in ABC}})])
    core = RaftCore("a", storage, rng=random.Random(0))
    if lead:  # a leader of term 2, to reach the leader's side too
        core.tick(0.0)
        core.tick(5.0)
        core.receive(5.0, {"type": "pre_vote_resp", "term": 2, "from": "b", "granted": True})
        core.receive(5.0, {"type": "vote_resp", "term": 2, "from": "b", "granted": True})
        assert core.role == LEADER
    handed_out = 0
    for now, msg in enumerate(msgs):
        core.tick(5.0 + now * 0.2)
        try:
            core.receive(5.0 + now * 0.2, msg)
        except RaftError:
            pass
        core.take_outbox()
        assert core.commit_index <= core.last_index
        for index, _ in core.take_committed():
            assert index > handed_out
            handed_out = index
