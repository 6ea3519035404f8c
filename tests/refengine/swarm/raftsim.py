"""A simulated cluster of :class:`RaftCore` members for the Raft tests: one
clock, a network that can delay, reorder, drop and duplicate messages and be
partitioned, members that crash and restart on their storage. Deterministic
for a given seed.

Every step checks Raft's safety properties as it goes: at most one leader
per term (Election Safety), every new leader holding every committed command
(Leader Completeness) and every member applying the same command at the same
index (State Machine Safety).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from typing import Callable

from reference_runtime.swarm.raft.core import LEADER, RaftCore
from reference_runtime.swarm.raft.storage import Entry, MemoryStorage

ELECTION = (1.0, 2.0)
HEARTBEAT = 0.1


def addr(node_id: str) -> str:
    return f"{node_id}.test:4242"


class SimCluster:
    """Members with the same initial configuration, or none for those in ``joiners``."""

    def __init__(self, ids: list[str], *, seed: int = 0, drop: float = 0.0, duplicate: float = 0.0,
                 delay: tuple[float, float] = (0.001, 0.01), joiners: tuple[str, ...] = ()) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.drop, self.duplicate, self.delay = drop, duplicate, delay
        self.storages: dict[str, MemoryStorage] = {}
        self.cores: dict[str, RaftCore] = {}
        self.down: set[str] = set()
        self.blocked: set[frozenset[str]] = set()
        self.queue: list[tuple[float, int, str, dict]] = []
        self.seq = itertools.count()
        self.applied: dict[str, list[tuple[int, dict]]] = {}
        self.history: dict[int, dict] = {}  # index -> the command every member must apply there
        self.leaders: dict[int, set[str]] = {}  # term -> members that led in it
        self.rejected_appends = 0
        self.largest_message = 0  # bytes on the wire
        self.bytes_to: dict[str, int] = {}  # bytes sent to each member
        config = Entry(1, "config", {"members": {i: addr(i) for i in ids if i not in joiners}})
        for node_id in ids:
            storage = MemoryStorage()
            if node_id not in joiners:
                storage.save_hard_state(1, None)
                storage.append([config])
            self.storages[node_id] = storage
            self.start(node_id)

    # -- members ----------------------------------------------------------

    def start(self, node_id: str) -> RaftCore:
        """(Re)start a member on its storage, as a new process would."""
        self.down.discard(node_id)
        core = RaftCore(node_id, self.storages[node_id], election_timeout=ELECTION, heartbeat=HEARTBEAT,
                        rng=random.Random(self.rng.random()))
        self.cores[node_id] = core
        self.applied[node_id] = []  # a new process applies the log again from the start
        return core

    def add_node(self, node_id: str) -> RaftCore:
        self.storages[node_id] = MemoryStorage()
        return self.start(node_id)

    def kill(self, node_id: str) -> None:
        self.down.add(node_id)

    def up(self) -> list[str]:
        return [i for i in self.cores if i not in self.down]

    def partition(self, *groups: set[str]) -> None:
        """Cut every link between members of different groups."""
        self.blocked = {frozenset((a, b)) for g, h in itertools.combinations(groups, 2) for a in g for b in h}

    def heal(self) -> None:
        self.blocked = set()

    # -- time -------------------------------------------------------------

    def step(self, dt: float = 0.01) -> None:
        self.now += dt
        while self.queue and self.queue[0][0] <= self.now:
            _, _, to, msg = heapq.heappop(self.queue)
            if to in self.cores and to not in self.down and frozenset((to, msg["from"])) not in self.blocked:
                self.cores[to].receive(self.now, msg)
                self.collect(to)
        for node_id in self.up():
            self.cores[node_id].tick(self.now)
            self.collect(node_id)

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.step()

    def run_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        end = self.now + timeout
        while self.now < end:
            if predicate():
                return True
            self.step()
        return predicate()

    def collect(self, node_id: str) -> None:
        """Take what a member sends and applies, and check safety."""
        core = self.cores[node_id]
        for peer, msg in core.take_outbox():
            self.rejected_appends += msg["type"] == "append_resp" and not msg["success"]
            wire = json.dumps(msg)  # what crosses the network is JSON, never a shared object
            self.largest_message = max(self.largest_message, len(wire))
            self.bytes_to[peer] = self.bytes_to.get(peer, 0) + len(wire)
            if self.rng.random() < self.drop:
                continue
            for _ in range(2 if self.rng.random() < self.duplicate else 1):
                at = self.now + self.rng.uniform(*self.delay)
                heapq.heappush(self.queue, (at, next(self.seq), peer, json.loads(wire)))
        for index, command in core.take_committed():
            applied = self.applied[node_id]
            assert not applied or index > applied[-1][0], f"{node_id} applied {index} out of order"
            applied.append((index, command))
            expected = self.history.setdefault(index, command)
            assert expected == command, f"{node_id} applied {command} at {index}, another member {expected}"
        if core.role == LEADER and node_id not in self.leaders.get(core.term, ()):
            leaders = self.leaders.setdefault(core.term, set())
            leaders.add(node_id)
            assert len(leaders) == 1, f"two leaders in term {core.term}: {sorted(leaders)}"
            # Leader Completeness: a new leader's log holds every command committed so far.
            storage = self.storages[node_id]
            for index, command in self.history.items():
                assert index <= storage.last_index() and storage.entry(index).data == command, \
                    f"leader {node_id} of term {core.term} lacks committed entry {index}"

    # -- questions --------------------------------------------------------

    def leader(self) -> str | None:
        """The live leader of the highest term, if any."""
        live = [(self.cores[i].term, i) for i in self.up() if self.cores[i].role == LEADER]
        return max(live)[1] if live else None

    def leaders_among(self, ids) -> list[str]:
        return [i for i in ids if i not in self.down and self.cores[i].role == LEADER]

    def stable_leader(self, timeout: float = 30.0) -> str:
        assert self.run_until(lambda: self.leader() is not None, timeout), "no leader elected"
        return self.leader()

    def propose(self, command: dict) -> int:
        leader = self.stable_leader()
        index = self.cores[leader].propose(command)
        self.collect(leader)
        return index

    def applied_commands(self, node_id: str) -> list[dict]:
        return [command for _, command in self.applied[node_id]]
