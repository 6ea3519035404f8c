"""RaftNode: members on one asyncio loop with an in-process network, on real
(short) timeouts."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any, Callable

import pytest

from reference_runtime.swarm.raft.core import RaftCore
from reference_runtime.swarm.raft.errors import NotLeader, ProposalDropped, RaftTimeout
from reference_runtime.swarm.raft.node import RaftNode
from reference_runtime.swarm.raft.storage import FileStorage, MemoryStorage

ELECTION = (0.5, 1.0)  # long enough for a loaded machine: no spurious elections
HEARTBEAT = 0.05


class Refused(Exception):
    pass


class Cluster:
    """Nodes that deliver to each other through the loop, as JSON."""

    def __init__(self) -> None:
        self.nodes: dict[str, RaftNode] = {}
        self.applied: dict[str, list[tuple[int, dict]]] = {}
        self.cut: set[str] = set()  # nodes whose messages, both ways, are lost
        self.storages: dict[str, Any] = {}

    def add(self, node_id: str, storage, seed: int = 0) -> RaftNode:
        core = RaftCore(node_id, storage, election_timeout=ELECTION, heartbeat=HEARTBEAT, rng=random.Random(seed))
        self.storages[node_id] = storage
        self.applied[node_id] = []
        node = RaftNode(core, send=self.send_from(node_id), apply=self.apply_on(node_id))
        self.nodes[node_id] = node
        node.start()
        return node

    def send_from(self, sender: str) -> Callable[[str, str, dict], None]:
        def send(peer: str, addr: str, msg: dict) -> None:
            assert addr == f"{peer}:4242"
            if sender in self.cut or peer in self.cut or peer not in self.nodes:
                return
            asyncio.get_running_loop().call_soon(self.nodes[peer].on_message, json.loads(json.dumps(msg)))
        return send

    def apply_on(self, node_id: str) -> Callable[[int, dict], Any]:
        def apply(index: int, command: dict) -> Any:
            self.applied[node_id].append((index, command))
            if command.get("refuse"):
                raise Refused(command["refuse"])
            return {"applied_at": index, "by": node_id}
        return apply

    def leader(self) -> RaftNode | None:
        leaders = [n for i, n in self.nodes.items() if n.is_leader and i not in self.cut]
        return leaders[0] if len(leaders) == 1 else None

    async def stop(self, node_id: str) -> None:
        await self.nodes.pop(node_id).close()

    async def close(self) -> None:
        for node in self.nodes.values():
            await node.close()


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    async def poll():
        while not (value := predicate()):
            await asyncio.sleep(0.01)
        return value
    return await asyncio.wait_for(poll(), timeout)


async def three(cluster: Cluster, storages: dict | None = None) -> RaftNode:
    """Three members, as swarm makes them: ``a`` bootstraps (and leads at
    once), ``b`` and ``c`` join empty. On storages that hold a cluster
    already, the three restart and elect a leader. Returns the leader."""
    storages = storages or {i: MemoryStorage() for i in "abc"}
    if storages["a"].last_index():
        for seed, node_id in enumerate("abc"):
            cluster.add(node_id, storages[node_id], seed)
        return await until(cluster.leader)
    RaftCore.bootstrap(storages["a"], "a", "a:4242")
    a = cluster.add("a", storages["a"])
    await until(lambda: a.is_leader)
    for seed, node_id in enumerate("bc", start=1):
        cluster.add(node_id, storages[node_id], seed)
        await a.add_member(node_id, f"{node_id}:4242", timeout=2)
    return a


def run(test: Callable[[Cluster], Any]) -> None:
    async def main():
        cluster = Cluster()
        try:
            await asyncio.wait_for(test(cluster), 20)
        finally:
            await cluster.close()
    asyncio.run(main())


def test_propose_returns_what_apply_returned_and_every_member_applies_it():
    async def scenario(cluster: Cluster):
        leader = await three(cluster)
        results = [await leader.propose({"n": n}, timeout=2) for n in range(10)]
        assert [r["by"] for r in results] == [leader.id] * 10
        indexes = [r["applied_at"] for r in results]
        await until(lambda: all(len(cluster.applied[i]) == 10 for i in "abc"))
        for node_id in "abc":
            assert cluster.applied[node_id] == [(i, {"n": n}) for i, n in zip(indexes, range(10))]
    run(scenario)


def test_concurrent_proposals_each_get_their_own_result():
    async def scenario(cluster: Cluster):
        leader = await three(cluster)
        results = await asyncio.gather(*(leader.propose({"n": n}, timeout=2) for n in range(30)))
        assert len({r["applied_at"] for r in results}) == 30
        applied = dict(cluster.applied[leader.id])
        assert [applied[r["applied_at"]] for r in results] == [{"n": n} for n in range(30)]
    run(scenario)


def test_propose_on_a_follower_raises_not_leader_with_the_leader():
    async def scenario(cluster: Cluster):
        leader = await three(cluster)
        follower = next(n for n in cluster.nodes.values() if n is not leader)
        await until(lambda: follower.leader_id == leader.id)
        with pytest.raises(NotLeader) as caught:
            await follower.propose({"n": 1}, timeout=2)
        assert caught.value.leader_id == leader.id
    run(scenario)


def test_apply_errors_reach_the_proposer():
    async def scenario(cluster: Cluster):
        leader = await three(cluster)
        with pytest.raises(Refused, match="no such service"):
            await leader.propose({"refuse": "no such service"}, timeout=2)
        assert (await leader.propose({"n": 2}, timeout=2))["by"] == leader.id
        await until(lambda: all(len(cluster.applied[i]) == 2 for i in "abc"))
    run(scenario)


def test_leader_stop_elects_another_that_has_everything():
    async def scenario(cluster: Cluster):
        old = await three(cluster)
        await old.propose({"n": 0}, timeout=2)
        await cluster.stop(old.id)
        new = await until(cluster.leader)
        assert new.id != old.id
        result = await new.propose({"n": 1}, timeout=2)
        rest = [i for i in "abc" if i != old.id]
        await until(lambda: all(len(cluster.applied[i]) == 2 for i in rest))
        assert [c for _, c in cluster.applied[new.id]] == [{"n": 0}, {"n": 1}]
        assert result["applied_at"] > cluster.applied[new.id][0][0]
    run(scenario)


def test_a_cut_off_leader_drops_its_proposal_and_steps_down():
    async def scenario(cluster: Cluster):
        leader = await three(cluster)
        await leader.propose({"n": 0}, timeout=2)
        cluster.cut.add(leader.id)
        with pytest.raises(RaftTimeout):
            await leader.propose({"n": 1}, timeout=0.05)
        with pytest.raises(ProposalDropped):
            await leader.propose({"n": 2}, timeout=5)  # check-quorum ends it well before
        assert not leader.is_leader
        with pytest.raises(NotLeader):
            await leader.propose({"n": 3}, timeout=1)
        new = await until(cluster.leader)
        assert new.id != leader.id
        cluster.cut.clear()
        await new.propose({"n": 4}, timeout=2)
        await until(lambda: [c for _, c in cluster.applied[leader.id]] == [{"n": 0}, {"n": 4}])
    run(scenario)


def test_members_join_and_leave():
    async def scenario(cluster: Cluster):
        storage = MemoryStorage()
        RaftCore.bootstrap(storage, "a", "a:4242")
        a = cluster.add("a", storage)
        await until(lambda: a.is_leader)
        await a.propose({"n": 0}, timeout=2)
        for seed, node_id in enumerate("bc", start=1):
            cluster.add(node_id, MemoryStorage(), seed)  # empty: waits for the leader
        # Two joins at once: the second waits for the first to commit.
        await asyncio.gather(a.add_member("b", "b:4242", timeout=3), a.add_member("c", "c:4242", timeout=3))
        assert a.members == {i: f"{i}:4242" for i in "abc"}
        last = a.commit_index
        await a.add_member("b", "b:4242", timeout=1)  # a join retried: nothing to change
        await a.remove_member("zz", timeout=1)
        assert a.commit_index == last
        await until(lambda: all(cluster.applied[i] == cluster.applied["a"] for i in "bc"))
        await until(lambda: all(n.members == a.members for n in cluster.nodes.values()))
        await a.remove_member("a", timeout=2)  # the leader leaves: it steps down
        assert not a.is_leader
        new = await until(cluster.leader)
        assert new.id in "bc" and set(new.members) == {"b", "c"}
        await new.propose({"n": 1}, timeout=2)
        await until(lambda: all(len(cluster.applied[i]) == 2 for i in "bc"))
    run(scenario)


def test_restart_on_files_applies_the_log_again(tmp_path: Path):
    async def scenario(cluster: Cluster):
        storages = {i: FileStorage(tmp_path / i) for i in "abc"}
        leader = await three(cluster, storages)
        for n in range(5):
            await leader.propose({"n": n}, timeout=2)
        await until(lambda: all(len(cluster.applied[i]) == 5 for i in "abc"))
        for node_id in "abc":
            await cluster.stop(node_id)
            storages[node_id].close()
        storages = {i: FileStorage(tmp_path / i) for i in "abc"}
        try:
            leader = await three(cluster, storages)
            await leader.propose({"n": 5}, timeout=2)
            await until(lambda: all(len(cluster.applied[i]) == 6 for i in "abc"))
            assert [c for _, c in cluster.applied["a"]] == [{"n": n} for n in range(6)]
        finally:
            await cluster.close()
            for storage in storages.values():
                storage.close()
    run(scenario)


def test_close_fails_waiting_proposals():
    async def scenario(cluster: Cluster):
        leader = await three(cluster)
        cluster.cut.add(leader.id)  # nothing can commit now
        waiting = asyncio.ensure_future(leader.propose({"n": 1}, timeout=5))
        await asyncio.sleep(0)
        await leader.close()
        with pytest.raises(ProposalDropped):
            await waiting
    run(scenario)
