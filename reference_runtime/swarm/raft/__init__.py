"""Raft consensus for the swarm managers' replicated store.

Modules, each owning one thing:

- ``core``: the algorithm as a pure state machine (no I/O, no clock);
- ``messages``: the shape of the messages between members, checked on arrival;
- ``storage``: term, vote and log, on a directory or in memory;
- ``node``: the asyncio driver (ticks, sending, applying, waiting for commits);
- ``errors``: :class:`~.errors.RaftError` and its kinds.

Why our own Raft rather than pysyncobj: pysyncobj pickles its messages
(remote code execution for anyone who reaches the port), has its own
plaintext TCP transport and its own addressing for dynamic membership;
wrapping its serializer and transport leaves little of it. A Raft core as a
pure state machine is a few hundred lines that can be tested exhaustively
under simulated time and a hostile network, the approach of etcd/raft and
swarmkit: the core has no I/O and a node loop drives it. Messages are JSON
dicts, carried by the swarm's mutual-TLS RPC (method ``raft.message``).
"""
