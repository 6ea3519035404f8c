"""The asyncio driver of one Raft member: it gives a :class:`RaftCore` the
clock and the messages, sends what the core wants sent, applies what
committed, and lets callers wait for their proposals.

Sending is fire-and-forget (``send(peer_id, address, message)``): Raft
retries by itself, so a lost message costs a heartbeat, not correctness. A
peer's address comes from the configuration, or for a node that has not
learned the configuration yet, from the ``addr`` of the messages it got.

``apply(index, command)`` runs on every member for every committed command,
in log order, once per process: after a restart the log is applied again
from the start as it commits, so the state machine is rebuilt from it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

from .core import LEADER, RaftCore
from .errors import NotLeader, ProposalDropped, RaftError, RaftTimeout

log = logging.getLogger(__name__)

Send = Callable[[str, str, dict], None]
Apply = Callable[[int, dict], Any]


@dataclass
class Waiter:
    """A caller waiting for the entry it proposed at ``index`` in ``term``."""

    term: int
    future: asyncio.Future


class RaftNode:
    """One Raft member on the running event loop.

    >>> async def demo(core):
    ...     node = RaftNode(core, send=lambda peer, addr, msg: None, apply=lambda i, cmd: cmd["n"] * 2)
    ...     node.start()
    ...     while not node.is_leader:
    ...         await asyncio.sleep(0.01)
    ...     result = await node.propose({"n": 21}, timeout=1)
    ...     await node.close()
    ...     return result
    >>> from .storage import MemoryStorage
    >>> s = MemoryStorage(); RaftCore.bootstrap(s, "a", "127.0.0.1:1")
    >>> asyncio.run(demo(RaftCore("a", s)))
    42
    """

    def __init__(self, core: RaftCore, send: Send, apply: Apply) -> None:
        self._core = core
        self._send = send
        self._apply = apply
        self._addresses: dict[str, str] = {}
        self._waiters: dict[int, Waiter] = {}
        self._task: asyncio.Task | None = None
        self._closed = False

    @property
    def id(self) -> str:
        return self._core.id

    @property
    def leader_id(self) -> str | None:
        return self._core.leader_id

    @property
    def is_leader(self) -> bool:
        return self._core.role == LEADER

    @property
    def members(self) -> dict[str, str]:
        return self._core.members

    @property
    def term(self) -> int:
        return self._core.term

    @property
    def commit_index(self) -> int:
        return self._core.commit_index

    @property
    def running(self) -> bool:
        """Started, not closed, and not stopped by an error."""
        return self._task is not None and not self._closed

    def start(self) -> None:
        """Start ticking (call on the running loop)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"raft-{self.id}")

    def on_message(self, msg: dict) -> None:
        """A message from a peer (what the ``raft.message`` RPC carries)."""
        if self._closed:
            return
        if isinstance(msg, dict) and isinstance(msg.get("from"), str) and isinstance(msg.get("addr"), str):
            self._addresses[msg["from"]] = msg["addr"]
        try:
            self._core.receive(self._now(), msg)
        except RaftError:
            log.exception("raft %s: message from %r refused", self.id, msg.get("from") if isinstance(msg, dict) else None)
        except Exception:
            self._fail()
            raise
        self._flush()

    async def propose(self, command: dict, timeout: float) -> Any:
        """Commit ``command`` and return what ``apply`` returned for it here (or raise what it raised)."""
        self._check_open()
        return await self._wait(self._core.propose(command), timeout)

    async def add_member(self, node_id: str, addr: str, timeout: float = 10.0) -> None:
        """Add a member (or change its address) and wait until the change commits.

        Idempotent, so a joining node may retry; waits its turn (within
        ``timeout``) while another membership change is in flight.
        """
        deadline = self._now() + timeout
        await self._config_turn(deadline)
        if self._core.members.get(node_id) != addr:
            await self._wait(self._core.add_member(node_id, addr), deadline - self._now())

    async def remove_member(self, node_id: str, timeout: float = 10.0) -> None:
        """Remove a member and wait until the change commits (nothing to do if it is not one)."""
        deadline = self._now() + timeout
        await self._config_turn(deadline)
        if node_id in self._core.members:
            await self._wait(self._core.remove_member(node_id), deadline - self._now())

    async def close(self) -> None:
        """Stop ticking and fail the proposals still waiting; the storage stays open (its owner closes it)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._drop_all("the raft node is closing")

    # -- internals -----------------------------------------------------------

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _config_turn(self, deadline: float) -> None:
        """Return once the core takes a membership change; NotLeader if it never will here."""
        while True:
            self._check_open()
            if not self.is_leader:
                raise NotLeader(self.leader_id)
            if self._core.config_change_ready:
                return
            if self._now() >= deadline:
                raise RaftTimeout("the previous membership change did not commit in time")
            await asyncio.sleep(self._core.heartbeat / 2)

    def _check_open(self) -> None:
        if self._closed:
            raise ProposalDropped("the raft node is closed")

    async def _run(self) -> None:
        interval = self._core.heartbeat / 2
        try:
            while True:
                self._core.tick(self._now())
                self._flush()
                await asyncio.sleep(interval)
        except Exception:
            self._fail()

    def _fail(self) -> None:
        # Storage that cannot be written: this member must stop taking part
        # rather than answer from a state it could not record.
        log.critical("raft %s: stopped", self.id, exc_info=True)
        self._closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._drop_all("the raft node stopped on an error")

    async def _wait(self, index: int, timeout: float) -> Any:
        future = asyncio.get_running_loop().create_future()
        waiter = self._waiters[index] = Waiter(self._core.term, future)
        self._flush()
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise RaftTimeout(f"entry {index} not committed within {timeout:g}s (is a majority of managers up?)") from None
        finally:
            if self._waiters.get(index) is waiter:
                del self._waiters[index]

    def _flush(self) -> None:
        for peer, msg in self._core.take_outbox():
            addr = self._core.members.get(peer) or self._addresses.get(peer)
            if addr is None:
                continue  # nowhere to send: the peer will ask again
            try:
                self._send(peer, addr, msg)
            except Exception:
                log.exception("raft %s: sending to %s failed", self.id, peer)
        for index, command in self._core.take_committed():
            waiter = self._waiters.pop(index, None)
            try:
                result = self._apply(index, command)
            except Exception as exc:
                if waiter is None:
                    log.warning("raft %s: applying entry %d failed: %s", self.id, index, exc)
                self._settle(waiter, index, exception=exc)
            else:
                self._settle(waiter, index, result=result)
        self._settle_rest()

    def _settle(self, waiter: Waiter | None, index: int, *, result: Any = None,
                exception: BaseException | None = None) -> None:
        if waiter is None or waiter.future.done():
            return
        if self._core.term_at(index) != waiter.term:
            waiter.future.set_exception(ProposalDropped(f"entry {index} was replaced by another leader's"))
        elif exception is not None:
            waiter.future.set_exception(exception)
        else:
            waiter.future.set_result(result)

    def _settle_rest(self) -> None:
        """Config entries commit without apply; proposals of a lost term fail."""
        core = self._core
        for index, waiter in list(self._waiters.items()):
            entry_term = core.term_at(index)
            if index <= core.commit_index and entry_term == waiter.term:
                del self._waiters[index]
                self._settle(waiter, index)
            elif entry_term != waiter.term or core.role != LEADER or core.term != waiter.term:
                del self._waiters[index]
                if not waiter.future.done():
                    waiter.future.set_exception(ProposalDropped(f"leadership lost before entry {index} committed"))

    def _drop_all(self, reason: str) -> None:
        for waiter in self._waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(ProposalDropped(reason))
        self._waiters.clear()
