"""The Raft consensus algorithm as a pure state machine: no I/O, no clock.

The driver (``node.py``) passes time and messages in (:meth:`RaftCore.tick`,
:meth:`RaftCore.receive`, :meth:`RaftCore.propose`) and takes out what to
send (:meth:`RaftCore.take_outbox`) and what committed
(:meth:`RaftCore.take_committed`). Only the storage is touched, synchronously
and durably, before anything that depends on it reaches the outbox.

What it implements, with the rule each part follows:

- Leader election with randomized timeouts (Raft §5.2) behind a pre-vote
  (thesis §9.6): a node whose election timer fires first asks whether it
  could win, without raising its term; only then does it campaign. A node
  cut off from the others therefore never inflates its term, and when it
  comes back it cannot depose a healthy leader.
- Leader stickiness (thesis §4.2.3, etcd's ``inLease``): a node that heard
  from a leader less than the minimum election timeout ago ignores (pre-)vote
  requests for a higher term.
- Check-quorum: a leader that has not heard from a majority within the
  minimum election timeout steps down, so a manager cut off from the others
  stops taking writes.
- Log replication (§5.3) with the conflict-term hint: a follower that rejects
  an append says which term conflicts and where that term starts in its log,
  so the leader skips a whole term per round trip. Replication to a peer is
  probing (one append at a time, until the logs match) or pipelined.
- Commit by counting only for entries of the leader's term (§5.4.2); a new
  leader appends a no-op so earlier entries commit without waiting for a
  client.
- Membership in the log (thesis §4.1): a ``config`` entry holds the whole new
  configuration, one server added or removed at a time, effective as soon as
  it is appended (and undone if it is cut from the log). A leader accepts a
  change only when the previous one committed and it has committed an entry
  of its own term (the fix to single-server changes, Ongaro 2015). A node
  that is not in its configuration never campaigns; a leader that removed
  itself steps down once that removal commits.

Not implemented: log compaction and snapshots (the whole log is replayed on
restart), leadership transfer, read-index.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from ...jsondepth import MAX_JSON_DEPTH, json_depth
from . import messages
from .errors import ConfigChangeRefused, NotLeader, RaftError
from .storage import Entry, RaftStorage

FOLLOWER, CANDIDATE, LEADER = "follower", "candidate", "leader"
MAX_BATCH = 64  # entries per append message: bounds a message while a peer catches up
MAX_BATCH_BYTES = 4 << 20  # and its size, well under the RPC frame limit (16 MiB)
MAX_COMMAND_BYTES = 1 << 20  # a bigger command could never travel in one append
MAX_COMMAND_DEPTH = MAX_JSON_DEPTH - 8  # room for the message around it on the wire


@dataclass
class Progress:
    """What the leader knows of one peer's log."""

    next_index: int  # the next entry to send
    match_index: int = 0  # the highest entry known to be in the peer's log
    probing: bool = True  # one append in flight at a time until the logs match
    probe_sent: bool = False  # entries sent while probing and no answer since: heartbeats go empty
    last_heard: float = 0.0  # for check-quorum


def members_of(storage: RaftStorage) -> dict[str, str]:
    """The configuration in effect: the last config entry of the log, or none."""
    for index in range(storage.last_index(), 0, -1):
        entry = storage.entry(index)
        if entry.kind == "config":
            return dict(entry.data["members"])
    return {}


class RaftCore:
    """One Raft member. ``election_timeout`` is the (min, max) of the
    randomized timeout in seconds, ``heartbeat`` the leader's append interval.

    >>> from .storage import MemoryStorage
    >>> s = MemoryStorage(); RaftCore.bootstrap(s, "a", "10.0.0.1:4242")
    >>> core = RaftCore("a", s); core.tick(0.0); core.role, core.term
    ('leader', 2)
    >>> core.propose({"op": "x"}), core.take_committed()
    (3, [(3, {'op': 'x'})])
    """

    def __init__(self, node_id: str, storage: RaftStorage, *, election_timeout: tuple[float, float] = (1.0, 2.0),
                 heartbeat: float = 0.1, rng: random.Random | None = None) -> None:
        low, high = election_timeout
        if not 0 < heartbeat < low <= high:
            raise ValueError("need 0 < heartbeat < election_timeout[0] <= election_timeout[1]")
        self.id = node_id
        self.heartbeat = heartbeat
        self.election_timeout = (low, high)
        self._storage = storage
        self._rng = rng or random.Random()
        self._role = FOLLOWER
        self._leader_id: str | None = None
        self._commit = 0
        self._handed_out = 0  # last index take_committed has passed on
        self._outbox: list[tuple[str, dict]] = []
        self._now = 0.0
        self._election_deadline: float | None = None  # set at the first tick: no clock before
        self._leader_contact: float | None = None
        self._pre_votes: set[str] | None = None  # not None while pre-voting
        self._votes: set[str] = set()
        self._progress: dict[str, Progress] = {}
        self._removing: dict[str, int] = {}  # peer -> config index that removed it (leader only)
        self._heartbeat_due = 0.0
        self._config_indices = [i for i in range(1, storage.last_index() + 1) if storage.entry(i).kind == "config"]
        self._members: dict[str, str] = {}
        self._own_addr: str | None = None
        self._reload_members()

    # -- preparing storage ---------------------------------------------------

    @staticmethod
    def bootstrap(storage: RaftStorage, node_id: str, addr: str) -> None:
        """Make ``storage`` the start of a one-member cluster (``swarm init``)."""
        if storage.last_index() or storage.term:
            raise RaftError("raft storage is not empty: cannot bootstrap a new cluster on it")
        storage.save_hard_state(1, None)
        storage.append([Entry(1, "config", {"members": {node_id: addr}})])

    @staticmethod
    def force_new_cluster(storage: RaftStorage, node_id: str, addr: str | None = None) -> None:
        """Keep the log but make the configuration {``node_id``} (``swarm init
        --force-new-cluster``), in a term above any this node has seen, so the
        lone survivor elects itself and commits what its log holds."""
        addr = addr or members_of(storage).get(node_id)
        if not addr:
            raise RaftError(f"no address known for {node_id}: give one to force a new cluster")
        term = max(storage.term, storage.term_at(storage.last_index())) + 1
        storage.save_hard_state(term, None)
        storage.append([Entry(term, "config", {"members": {node_id: addr}})])

    # -- what the driver reads -----------------------------------------------

    @property
    def role(self) -> str:
        return self._role

    @property
    def term(self) -> int:
        return self._storage.term

    @property
    def leader_id(self) -> str | None:
        return self._leader_id

    @property
    def members(self) -> dict[str, str]:
        return dict(self._members)

    @property
    def commit_index(self) -> int:
        return self._commit

    @property
    def last_index(self) -> int:
        return self._storage.last_index()

    @property
    def config_change_ready(self) -> bool:
        """Whether this member, as leader, would take a membership change now."""
        return (self._role == LEADER and not (self._config_indices and self._config_indices[-1] > self._commit)
                and self._storage.term_at(self._commit) == self.term)

    def term_at(self, index: int) -> int | None:
        """The term of entry ``index``, None past the end of the log (0 for index 0)."""
        return self._storage.term_at(index) if index <= self._storage.last_index() else None

    def take_outbox(self) -> list[tuple[str, dict]]:
        out, self._outbox = self._outbox, []
        return out

    def take_committed(self) -> list[tuple[int, dict]]:
        """Newly committed commands, in log order, each once (config and no-op entries are left out)."""
        start, self._handed_out = self._handed_out + 1, self._commit
        entries = self._storage.entries(start, self._commit + 1)
        return [(i, e.data) for i, e in enumerate(entries, start) if e.kind == "command"]

    # -- inputs --------------------------------------------------------------

    def tick(self, now: float) -> None:
        self._now = now
        if self._role == LEADER:
            if not self._quorum_active():
                self._step_down()
                return
            if now >= self._heartbeat_due:
                self._broadcast_append(heartbeat=True)
            return
        if self._election_deadline is None:
            self._reset_election_timer()
        if self._members.keys() == {self.id}:
            self._campaign()  # alone in the configuration: nobody to wait for
        elif now >= self._election_deadline:
            self._pre_campaign()

    def receive(self, now: float, msg: dict) -> None:
        """Handle a message from a peer; malformed ones are dropped."""
        self._now = now
        if not messages.is_valid(msg) or msg["from"] == self.id:
            return
        kind, term, sender = msg["type"], msg["term"], msg["from"]
        if term > self.term:
            if kind in ("pre_vote", "vote") and self._in_lease():
                return  # a leader we heard from recently is alive: no election
            if kind == "pre_vote" or (kind == "pre_vote_resp" and msg["granted"]):
                pass  # a pre-vote's term is a hypothetical one
            else:
                self._become_follower(term, sender if kind == "append" else None)
        elif term < self.term:
            # Tell a stale leader or pre-candidate our term so that it catches up;
            # everything else from an old term is just late.
            if kind == "append":
                self._send(sender, "append_resp", success=False, match_index=0, reject_index=msg["prev_index"],
                           conflict_index=0, conflict_term=None)
            elif kind == "pre_vote":
                self._send(sender, "pre_vote_resp", granted=False)
            return
        handler = getattr(self, f"_on_{kind}")
        handler(msg)

    def propose(self, command: dict) -> int:
        """Append a command to the leader's log; its index. Raises NotLeader elsewhere."""
        if self._role != LEADER:
            raise NotLeader(self._leader_id)
        # A copy through JSON: refuses what the log cannot store, and the caller
        # cannot change the entry afterwards.
        encoded = json.dumps(command)
        data = json.loads(encoded)
        if not isinstance(data, dict):
            raise TypeError("a command is a JSON object")
        if len(encoded) > MAX_COMMAND_BYTES or json_depth(data) > MAX_COMMAND_DEPTH:
            raise RaftError("the command is too big or nests too deep to replicate")
        return self._leader_append(Entry(self.term, "command", data))

    def add_member(self, node_id: str, addr: str) -> int:
        """Add a member (or change its address); the config entry's index."""
        self._check_config_change()
        if self._members.get(node_id) == addr:
            raise ConfigChangeRefused(f"{node_id} is already a member at {addr}")
        return self._leader_append(Entry(self.term, "config", {"members": {**self._members, node_id: addr}}))

    def remove_member(self, node_id: str) -> int:
        """Remove a member; the config entry's index."""
        self._check_config_change()
        if node_id not in self._members:
            raise ConfigChangeRefused(f"{node_id} is not a member")
        if len(self._members) == 1:
            raise ConfigChangeRefused("cannot remove the last member")
        members = {k: v for k, v in self._members.items() if k != node_id}
        return self._leader_append(Entry(self.term, "config", {"members": members}))

    # -- roles ---------------------------------------------------------------

    def _reset_election_timer(self) -> None:
        self._election_deadline = self._now + self._rng.uniform(*self.election_timeout)

    def _in_lease(self) -> bool:
        if self._role == LEADER:
            return True  # it steps down itself by check-quorum when cut off
        return (self._leader_id is not None and self._leader_contact is not None
                and self._now - self._leader_contact < self.election_timeout[0])

    def _become_follower(self, term: int, leader_id: str | None) -> None:
        if term != self.term:
            self._storage.save_hard_state(term, None)
        self._role = FOLLOWER
        self._leader_id = leader_id
        self._leader_contact = self._now if leader_id else None
        self._pre_votes = None
        self._votes = set()
        self._progress.clear()
        self._removing.clear()
        self._reset_election_timer()

    def _step_down(self) -> None:
        self._become_follower(self.term, None)

    def _pre_campaign(self) -> None:
        self._reset_election_timer()
        if self.id not in self._members:
            return  # not a voter (joining, or removed): wait to hear from a leader
        self._role = FOLLOWER  # a candidate whose election stalled starts over with a pre-vote
        self._leader_id = None
        self._votes = set()
        self._pre_votes = {self.id}
        for peer in self._members:
            if peer != self.id:
                self._send(peer, "pre_vote", term=self.term + 1, **self._log_position())

    def _campaign(self) -> None:
        self._storage.save_hard_state(self.term + 1, self.id)
        self._role = CANDIDATE
        self._leader_id = None
        self._pre_votes = None
        self._votes = {self.id}
        self._reset_election_timer()
        if self._has_quorum(self._votes):
            self._become_leader()
            return
        for peer in self._members:
            if peer != self.id:
                self._send(peer, "vote", **self._log_position())

    def _become_leader(self) -> None:
        self._role = LEADER
        self._leader_id = self.id
        self._votes = set()
        last = self._storage.last_index()
        self._progress = {p: Progress(next_index=last + 1, last_heard=self._now) for p in self._members if p != self.id}
        self._leader_append(Entry(self.term, "noop"))
        self._heartbeat_due = self._now + self.heartbeat

    def _log_position(self) -> dict[str, int]:
        last = self._storage.last_index()
        return {"last_index": last, "last_term": self._storage.term_at(last)}

    def _has_quorum(self, voters: set[str]) -> bool:
        return len(voters & self._members.keys()) * 2 > len(self._members)

    def _quorum_active(self) -> bool:
        horizon = self._now - self.election_timeout[0]
        active = {p for p, pr in self._progress.items() if pr.last_heard >= horizon} | {self.id}
        return self._has_quorum(active)

    # -- elections -----------------------------------------------------------

    def _can_vote_for(self, msg: dict) -> bool:
        mine = self._log_position()
        up_to_date = (msg["last_term"], msg["last_index"]) >= (mine["last_term"], mine["last_index"])
        sender, voted = msg["from"], self._storage.voted_for
        free = voted == sender or (voted is None and self._leader_id is None)
        if msg["type"] == "pre_vote" and msg["term"] > self.term:
            free = True  # a pre-vote binds nothing
        return free and up_to_date

    def _on_pre_vote(self, msg: dict) -> None:
        granted = self._can_vote_for(msg)
        self._send(msg["from"], "pre_vote_resp", term=msg["term"] if granted else self.term, granted=granted)

    def _on_vote(self, msg: dict) -> None:
        granted = self._can_vote_for(msg)
        if granted:
            self._storage.save_hard_state(self.term, msg["from"])  # durable before the answer leaves
            self._reset_election_timer()
        self._send(msg["from"], "vote_resp", granted=granted)

    def _on_pre_vote_resp(self, msg: dict) -> None:
        if self._pre_votes is None or not msg["granted"] or msg["term"] != self.term + 1:
            return
        self._pre_votes.add(msg["from"])
        if self._has_quorum(self._pre_votes):
            self._campaign()

    def _on_vote_resp(self, msg: dict) -> None:
        if self._role != CANDIDATE or not msg["granted"]:
            return
        self._votes.add(msg["from"])
        if self._has_quorum(self._votes):
            self._become_leader()

    # -- replication: follower -----------------------------------------------

    def _on_append(self, msg: dict) -> None:
        if self._role == LEADER:
            return  # two leaders in one term cannot happen; never act on it
        self._role = FOLLOWER
        self._pre_votes = None
        self._votes = set()
        self._leader_id = msg["from"]
        self._leader_contact = self._now
        self._reset_election_timer()
        prev, last = msg["prev_index"], self._storage.last_index()
        if prev > last:
            self._reject(msg, conflict_index=last + 1, conflict_term=None)
            return
        if prev and self._storage.term_at(prev) != msg["prev_term"]:
            conflict_term = self._storage.term_at(prev)
            start = prev
            while start > self._commit + 1 and self._storage.term_at(start - 1) == conflict_term:
                start -= 1
            self._reject(msg, conflict_index=start, conflict_term=conflict_term)
            return
        entries = [Entry.from_dict(raw) for raw in msg["entries"]]
        for offset, entry in enumerate(entries):
            index = prev + 1 + offset
            if index <= last and self._storage.term_at(index) == entry.term:
                continue  # already there (a duplicate or a resent append)
            if index <= last:
                if index <= self._commit:
                    raise RaftError(f"leader {msg['from']} would overwrite committed entry {index}")
                self._truncate_from(index)
            self._append_local(entries[offset:])
            break
        match = prev + len(entries)
        new_commit = min(msg["commit"], match)
        if new_commit > self._commit:
            self._commit = new_commit
        self._send(msg["from"], "append_resp", success=True, match_index=match, reject_index=0,
                   conflict_index=0, conflict_term=None)

    def _reject(self, msg: dict, *, conflict_index: int, conflict_term: int | None) -> None:
        self._send(msg["from"], "append_resp", success=False, match_index=0, reject_index=msg["prev_index"],
                   conflict_index=conflict_index, conflict_term=conflict_term)

    # -- replication: leader -------------------------------------------------

    def _check_config_change(self) -> None:
        if self._role != LEADER:
            raise NotLeader(self._leader_id)
        if not self.config_change_ready:
            raise ConfigChangeRefused("a membership change is still in progress (or the leader is new): try again")

    def _leader_append(self, entry: Entry) -> int:
        index = self._append_local([entry])
        for peer, pr in self._progress.items():
            if not pr.probing:
                self._send_append(peer)
        self._maybe_commit()
        return index

    def _broadcast_append(self, *, heartbeat: bool) -> None:
        for peer, pr in self._progress.items():
            if heartbeat or not pr.probing:
                self._send_append(peer, heartbeat=heartbeat)
        if heartbeat:
            self._heartbeat_due = self._now + self.heartbeat

    def _send_append(self, peer: str, *, heartbeat: bool = False) -> None:
        pr = self._progress[peer]
        prev = pr.next_index - 1
        if pr.probing and pr.probe_sent and heartbeat:
            # A probe is unanswered (lost, or the peer is down or slow): keep
            # leadership known with an empty append; its answer restarts the probe.
            entries = []
        else:
            entries = self._batch(pr.next_index)
            pr.probe_sent = pr.probing and bool(entries)
        self._send(peer, "append", prev_index=prev, prev_term=self._storage.term_at(prev), commit=self._commit,
                   entries=[e.to_dict() for e in entries])
        if not pr.probing:
            pr.next_index = prev + len(entries) + 1  # pipelined: assume it arrives

    def _batch(self, start: int) -> list[Entry]:
        entries = self._storage.entries(start, min(self._storage.last_index(), start - 1 + MAX_BATCH) + 1)
        size = 0
        for count, entry in enumerate(entries):
            size += len(json.dumps(entry.data))
            if size > MAX_BATCH_BYTES and count:
                return entries[:count]
        return entries

    def _on_append_resp(self, msg: dict) -> None:
        pr = self._progress.get(msg["from"]) if self._role == LEADER else None
        if pr is None:
            return
        last = self._storage.last_index()
        if msg["match_index"] > last or msg["reject_index"] > last:
            return  # not an answer to anything this leader sent
        pr.last_heard = self._now
        pr.probe_sent = False
        if msg["success"]:
            if msg["match_index"] > pr.match_index:
                pr.match_index = msg["match_index"]
            pr.next_index = max(pr.next_index, pr.match_index + 1)
            pr.probing = False
            self._maybe_commit()
            if pr.next_index <= self._storage.last_index():
                self._send_append(msg["from"])
            return
        rejected = msg["reject_index"]
        if rejected <= pr.match_index or (pr.probing and rejected != pr.next_index - 1):
            return  # an answer to an append that a later one overtook
        pr.next_index = max(pr.match_index + 1, min(self._next_after_conflict(msg), rejected, last + 1))
        pr.probing = True
        self._send_append(msg["from"])

    def _next_after_conflict(self, msg: dict) -> int:
        conflict_term = msg["conflict_term"]
        if conflict_term is None:
            return msg["conflict_index"]
        # The leader's last entry of the conflicting term, if it has that term:
        # the logs agree up to there at best.
        index = min(msg["reject_index"], self._storage.last_index())
        while index > 0 and self._storage.term_at(index) > conflict_term:
            index -= 1
        if index > 0 and self._storage.term_at(index) == conflict_term:
            return index + 1
        return msg["conflict_index"]

    def _maybe_commit(self) -> None:
        if self._role != LEADER:
            return
        last = self._storage.last_index()
        matches = sorted((last if m == self.id else self._progress[m].match_index for m in self._members),
                         reverse=True)
        candidate = matches[len(matches) // 2]
        if candidate <= self._commit or self._storage.term_at(candidate) != self.term:
            return
        self._commit = candidate
        for peer, removed_at in list(self._removing.items()):
            if removed_at <= self._commit:
                del self._removing[peer]
                self._progress.pop(peer, None)
        self._broadcast_append(heartbeat=False)  # followers learn the commit now, not at the next beat
        if self.id not in self._members and self._config_indices[-1] <= self._commit:
            self._step_down()  # removed ourselves, and the removal is safe

    # -- the local log and the configuration ---------------------------------

    def _append_local(self, entries: list[Entry]) -> int:
        first = self._storage.last_index() + 1
        self._storage.append(entries)
        configs = [first + i for i, e in enumerate(entries) if e.kind == "config"]
        if configs:
            self._config_indices.extend(configs)
            self._reload_members()
        return self._storage.last_index()

    def _truncate_from(self, index: int) -> None:
        self._storage.truncate_from(index)
        if self._config_indices and self._config_indices[-1] >= index:
            self._config_indices = [i for i in self._config_indices if i < index]
            self._reload_members()

    def _reload_members(self) -> None:
        old = self._members
        if self._config_indices:
            self._members = dict(self._storage.entry(self._config_indices[-1]).data["members"])
        else:
            self._members = {}
        self._own_addr = self._members.get(self.id, self._own_addr)
        if self._role != LEADER:
            return
        for peer in self._members.keys() - old.keys() - {self.id}:
            self._removing.pop(peer, None)
            self._progress[peer] = Progress(next_index=self._storage.last_index() + 1, last_heard=self._now)
        for peer in old.keys() - self._members.keys() - {self.id}:
            # Keep sending to a removed peer until its removal commits, so it learns of it.
            self._removing[peer] = self._config_indices[-1]

    def _send(self, peer: str, kind: str, *, term: int | None = None, **fields: Any) -> None:
        msg: dict[str, Any] = {"type": kind, "term": self.term if term is None else term, "from": self.id, **fields}
        if self._own_addr:
            msg["addr"] = self._own_addr
        self._outbox.append((peer, msg))
