"""The Raft layer's error types: :class:`RaftError` and the kinds callers tell apart."""

from __future__ import annotations

from ..errors import SwarmError


class RaftError(SwarmError):
    """A Raft operation failed; the message is fit for the user."""


class NotLeader(RaftError):
    """Only the leader takes proposals; ``leader_id`` is the one this node knows, or None."""

    def __init__(self, leader_id: str | None) -> None:
        known = f"the leader is {leader_id}" if leader_id else "no leader is known"
        super().__init__(f"this manager is not the Raft leader ({known})")
        self.leader_id = leader_id

    def __reduce__(self):
        return type(self), (self.leader_id,)


class ProposalDropped(RaftError):
    """Leadership was lost (or the node closed) before the entry committed.

    The outcome is unknown: a later leader may still commit the entry, as in
    swarmkit (``ErrLostLeadership``); callers re-read before retrying.
    """


class RaftTimeout(RaftError, TimeoutError):
    """No commit in time (no quorum, or one too slow); also a ``TimeoutError``."""


class ConfigChangeRefused(RaftError):
    """A membership change that is not allowed now (another is uncommitted, or it changes nothing)."""


class StorageCorrupt(RaftError):
    """The Raft directory holds damage that is not a torn tail: refuse to start rather than lose entries."""
