"""swarmd: the node daemon of refengine swarm, one per node.

refengine stays daemonless for containers; swarm mode needs something that
outlives a command: the Raft member that holds the cluster's desired state,
the leader that reconciles it, and the agent that runs the node's tasks. So
``refengine swarm init|join`` starts this process (:func:`ensure_running`) in
the caller's network namespace with the caller's ``--root``; it lives until the
node leaves the swarm.

What runs where::

    every node     agent        heartbeats to the leader every HEARTBEAT s with the status of
                                its tasks, gets the node's assignment back, converges containers
                   local API    <root>/swarm/swarmd.sock: the CLI's calls (wire.py framing)
    managers       Raft member  the store (state.py) replicated by raft/
                   TCP server   <advertise addr>:2377, mutual TLS (ca.py): raft messages,
                                heartbeats, joins (without a certificate: only ca.root/ca.issue),
                                control calls forwarded by other managers
    the leader     reconcile    orchestrator.reconcile every RECONCILE s and after each change;
                                marks nodes Down after NODE_DOWN_AFTER s without a heartbeat;
                                removes demoted managers from the Raft configuration

Every control call (``node ls``, ``service create`` ...) is executed by the
leader, as in docker: a manager forwards it; a worker refuses it with docker's
message. With no leader (quorum lost) the call fails with docker's "The swarm
does not have a leader" error; the agent keeps its tasks running meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time

from . import networks
from .errors import RpcError, SwarmError
from .nodefiles import NodeConfig, NodeFiles, split_addr

log = logging.getLogger("swarmd")

PORT = 2377
HEARTBEAT = 0.5
NODE_DOWN_AFTER = 5.0
RECONCILE = 0.25
PROPOSE_TIMEOUT = 15.0
#: An inactive daemon (no swarm) exits after this long without a request.
IDLE_EXIT = 60.0
START_TIMEOUT = 15.0

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
               'node to swarm and try again.')
WORKER = ("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please "
          "run this command on a manager node or promote the current node to a manager.")
NO_LEADER = ("The swarm does not have a leader. It's possible that too few managers are online. Make sure more "
             "than half of the managers are online.")
#: What a change gets when no quorum commits it in time (docker's admin guide shows this text).
DEADLINE = "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
#: How long a change waits for a leader to be elected before it gives up.
LEADER_WAIT = 8.0
ALREADY = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one."

CA_CRT, CA_KEY, NODE_CRT, NODE_KEY = "swarm-root-ca.crt", "swarm-root-ca.key", "swarm-node.crt", "swarm-node.key"


class Swarmd:
    def __init__(self, root_path: str):
        from .state import ClusterState

        self.root_path = os.path.abspath(root_path)
        self.files = NodeFiles(self.root_path)
        self.config: NodeConfig | None = self.files.load()
        self.store = ClusterState()
        self.raft = None
        self.raft_storage = None
        self.tcp = None
        self.heartbeats = 0
        self.description: dict | None = None
        self.init_params: dict = {}
        self.agent = None
        self.clients: dict[str, object] = {}
        self.last_seen: dict[str, float] = {}
        #: Raft peers whose last message could not be sent (peer id -> when)
        self.peer_failed: dict[str, float] = {}
        self.leader_since: float | None = None
        self.jobs: set[asyncio.Task] = set()
        self.wake = asyncio.Event()
        self.kick = asyncio.Event()
        self.stopping = asyncio.Event()
        #: held by init, join and leave: they change what this node is, and two joins at
        #: once both passed the "already part of a swarm" check and registered two nodes
        self.joining = asyncio.Lock()
        self.last_request = time.monotonic()
        #: the node's tasks as the last heartbeat reply gave them; None until the first
        #: reply: converging to "no tasks" then would remove every task container that
        #: outlived a restarted swarmd
        self.assignment: list[dict] | None = None
        self.unsent: dict[str, dict] = {}
        self.control = None

    # -- life -----------------------------------------------------------------
    async def run(self) -> None:
        from .wire import RpcServer

        self.files.ensure()
        self.local = RpcServer(self.local_handlers())
        await self.local.listen_unix(str(self.files.socket))
        if self.config is not None:
            await self.start_member()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        # not one of the member's jobs, which leave cancels: a node that left exits once idle
        idle = loop.create_task(self.idle_watch())
        await self.stopping.wait()
        idle.cancel()
        await self.stop_member(remove_tasks=False)
        await self.local.close()

    def spawn(self, coro) -> asyncio.Task:
        job = asyncio.get_running_loop().create_task(coro)
        self.jobs.add(job)
        job.add_done_callback(self._job_done)
        return job

    def _job_done(self, job: asyncio.Task) -> None:
        self.jobs.discard(job)
        if not job.cancelled() and job.exception() is not None:
            log.error("background job failed", exc_info=job.exception())

    async def idle_watch(self) -> None:
        while True:
            await asyncio.sleep(5)
            if self.config is None and time.monotonic() - self.last_request > IDLE_EXIT:
                self.stopping.set()
                return

    async def start_member(self) -> None:
        """Bring up this node's part of the swarm from node.json."""
        from .agent import Agent
        from .control import Control

        config = self.config
        if config.role == "manager":
            await self.start_manager()
        else:
            await self.listen_tcp()  # a worker serves its tasks' logs to managers
        self.agent = Agent(self.root_path, config.node_id, changed=self.kick.set)
        self.control = Control(self)
        self.spawn(self.agent_loop())

    async def start_manager(self) -> None:
        from .raft.core import RaftCore
        from .raft.node import RaftNode
        from .raft.storage import FileStorage

        self.raft_storage = storage = FileStorage(self.files.raft)
        core = RaftCore(self.config.node_id, storage)
        self.raft = RaftNode(core, self.raft_send, self.raft_apply)
        await self.listen_tcp()
        self.raft.start()
        self.spawn(self.leader_loop())

    async def listen_tcp(self) -> None:
        from . import ca
        from .wire import RpcServer

        if self.tcp is not None:
            await self.tcp.close()
        # allow_anonymous: a joining node has no certificate yet; such a peer may call
        # only the join methods (ca.root, ca.issue), everything else needs a node's
        manager = self.config.role == "manager"
        context = ca.server_context(self.files.read_cert(NODE_CRT), self.files.read_cert(NODE_KEY),
                                    self.files.read_cert(CA_CRT), allow_anonymous=manager)
        if manager:
            self.tcp = RpcServer(self.remote_handlers(), cluster_id=self.config.cluster_id,
                                 open_methods=ca.JOIN_METHODS)
        else:
            self.tcp = RpcServer({"logs.read": self.r_logs_read}, cluster_id=self.config.cluster_id)
        host, port = split_addr(self.config.listen_addr)
        await self.tcp.listen_tcp(host, port, context)

    async def stop_member(self, *, remove_tasks: bool) -> None:
        for job in list(self.jobs):
            if job is not asyncio.current_task():
                job.cancel()
        if self.agent is not None:
            if remove_tasks:
                await self.agent.remove_all()
            await self.agent.close()
            self.agent = None
        await self.stop_raft()
        for client in self.clients.values():
            try:
                await client.close()
            except Exception:
                pass
        self.clients.clear()

    async def stop_raft(self) -> None:
        if self.raft is not None:
            await self.raft.close()
            self.raft = None
        if self.raft_storage is not None:
            self.raft_storage.close()
            self.raft_storage = None
        if self.tcp is not None:
            await self.tcp.close()
            self.tcp = None

    # -- raft plumbing -------------------------------------------------------------
    def raft_send(self, peer_id: str, addr: str, message: dict) -> None:
        async def send() -> None:
            try:
                await self.client(addr).notify("raft.message", message)
            except Exception as exc:  # an unreachable peer: Raft retries by itself
                self.peer_failed[peer_id] = time.monotonic()
                log.debug("raft message to %s (%s): %s", peer_id, addr, exc)
            else:
                self.peer_failed.pop(peer_id, None)
        self.spawn(send())

    def raft_apply(self, index: int, command: dict):
        from .state import apply

        try:
            return apply(self.store, command, index)
        finally:
            self.wake.set()

    def client(self, addr: str, server_name: str | None = None):
        """A client of the node at ``addr``: a manager, or with ``server_name`` (a node
        ID: every node's certificate names its ID) any node."""
        from . import ca
        from .wire import MANAGER_OU, RpcClient

        key = f"{server_name or MANAGER_OU}@{addr}"
        client = self.clients.get(key)
        if client is None:
            host, port = split_addr(addr)
            context = ca.client_context(self.files.read_cert(NODE_CRT), self.files.read_cert(NODE_KEY),
                                        self.files.read_cert(CA_CRT))
            client = self.clients[key] = RpcClient.tcp(host, port, context, server_name=server_name or MANAGER_OU)
        return client

    def leader_addr(self) -> str | None:
        if self.raft is None or self.raft.leader_id is None:
            return None
        return self.raft.members.get(self.raft.leader_id)

    async def propose(self, command: dict):
        from .raft.core import NotLeader

        from .raft.errors import ProposalDropped, RaftTimeout

        try:
            return await self.raft.propose(command, PROPOSE_TIMEOUT)
        except (NotLeader, ProposalDropped):
            raise RpcError("NotLeader", NO_LEADER) from None
        except (asyncio.TimeoutError, RaftTimeout):
            raise RpcError("DeadlineExceeded", DEADLINE) from None

    # -- the leader ---------------------------------------------------------------
    async def leader_loop(self) -> None:
        from .ids import new_id
        from .orchestrator import reconcile

        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), RECONCILE)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()
            if self.raft is None or not self.raft.is_leader:
                self.leader_since = None
                continue
            now = time.monotonic()
            if self.leader_since is None:  # a new leader gives every node a heartbeat's grace
                self.leader_since = now
                self.last_seen = {node_id: now for node_id in self.store.nodes}
            try:
                commands = self.liveness(now)
                commands += reconcile(self.store, time.time(), new_id)
                commands += networks.lb_commands(self.store.nodes, self.store.services, self.store.networks)
                # one proposal each: a refused one (a user's update racing the updater's
                # bookkeeping) must not hold back the rest of the round
                results = await asyncio.gather(*(self.propose(c) for c in commands), return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException) and not isinstance(result, (SwarmError, TimeoutError)):
                        raise result
                await self.membership()
            except (SwarmError, TimeoutError) as exc:  # lost leadership, a refused or slow step: next round
                log.info("leader loop: %s", exc)
                await asyncio.sleep(RECONCILE)
            except Exception:
                # A programming error: the daemon stops (and shows in every test) rather
                # than log it every round while the cluster half works.
                log.critical("leader loop failed; swarmd stops", exc_info=True)
                self.stopping.set()
                raise

    def liveness(self, now: float) -> list[dict]:
        """Nodes silent for NODE_DOWN_AFTER seconds are Down."""
        from .state import rfc3339_now

        commands = []
        for node_id, node in self.store.nodes.items():
            if node_id == self.config.node_id:
                self.last_seen[node_id] = now
            seen = self.last_seen.setdefault(node_id, now)
            if node["Status"]["State"] == "ready" and now - seen > NODE_DOWN_AFTER:
                commands.append({"op": "node.status", "id": node_id, "state": "down",
                                 "message": "heartbeat failure", "at": rfc3339_now()})
        return commands

    async def membership(self) -> None:
        """Demoted or removed managers leave the Raft configuration."""
        for member in list(self.raft.members):
            node = self.store.nodes.get(member)
            if node is None or node["Spec"].get("Role") != "manager":
                if len(self.raft.members) > 1:
                    await self.raft.remove_member(member)
                return

    def reachable(self, node_id: str) -> bool:
        """A manager is reachable while the leader's Raft messages get through to it
        (docker's Reachability comes from its Raft transport too)."""
        return node_id not in self.peer_failed

    # -- the agent ------------------------------------------------------------------
    async def agent_loop(self) -> None:
        while True:
            updates = self.agent.converge(self.assignment) if self.assignment is not None else []
            for update in updates:
                self.unsent[update["task_id"]] = update["status"]
            try:
                reply = await self.heartbeat()
            except RpcError as exc:
                log.debug("heartbeat: %s", exc.message)
            else:
                self.unsent.clear()
                self.heartbeats += 1
                self.assignment = reply["tasks"]
                self.agent.overlay.view = reply.get("overlay") or {}
                if reply.get("managers"):
                    self.config.remotes = reply["managers"]
                await self.follow_role(reply.get("role", self.config.role))
            try:  # the next heartbeat, or sooner when a task's status changed
                await asyncio.wait_for(self.kick.wait(), HEARTBEAT)
            except asyncio.TimeoutError:
                pass
            self.kick.clear()

    async def heartbeat(self) -> dict:
        from .control import describe

        if self.description is None:
            self.description = describe(self.config.hostname)
        params = {"updates": [{"task_id": k, "status": v} for k, v in self.unsent.items()],
                  "description": self.description, "addr": split_addr(self.config.advertise_addr)[0]}
        if self.raft is not None and self.raft.is_leader:
            return await self.dispatch(self.config.node_id, params)
        candidates = []
        leader = self.leader_addr()
        if leader:
            candidates.append(leader)
        candidates += [addr for addr in self.config.remotes if addr not in candidates]
        last: RpcError | None = None
        for addr in candidates:
            if addr == self.config.advertise_addr and not (self.raft and self.raft.is_leader):
                continue
            try:
                return await self.client(addr).call("dispatcher.heartbeat", params, timeout=5.0)
            except RpcError as exc:
                last = exc
        raise last or RpcError("Unavailable", "no manager to reach")

    async def follow_role(self, role: str) -> None:
        """Promotion and demotion, as the leader decided: a new certificate, then
        Raft membership on or off."""
        if role == self.config.role:
            return
        from . import ca

        key_pem, csr_pem = ca.make_key_and_csr()
        reply = await self.call_leader("ca.renew", {"csr": csr_pem.decode() if isinstance(csr_pem, bytes)
                                                    else csr_pem})
        if reply["role"] != role:
            return
        self.files.write_cert(NODE_KEY, key_pem, secret=True)
        self.files.write_cert(NODE_CRT, reply["cert"])
        for client in self.clients.values():
            await client.close()
        self.clients.clear()
        self.config.role = role
        self.files.save(self.config)
        if role == "manager":
            await self.start_manager()
            await self.call_leader("raft.join", {"addr": self.config.advertise_addr})
        else:
            await self.stop_raft()
            import shutil

            shutil.rmtree(self.files.raft, ignore_errors=True)
            self.store = type(self.store)()
            await self.listen_tcp()

    async def call_leader(self, method: str, params: dict, timeout: float = 10.0):
        addrs = [a for a in [self.leader_addr(), *self.config.remotes] if a]
        last: RpcError | None = None
        for addr in dict.fromkeys(addrs):
            try:
                return await self.client(addr).call(method, params, timeout=timeout)
            except RpcError as exc:
                last = exc
        raise last or RpcError("Unavailable", NO_LEADER)

    # -- the dispatcher (leader) -------------------------------------------------------
    async def dispatch(self, node_id: str, params: dict) -> dict:
        from .state import rfc3339_now

        if node_id not in self.store.nodes:
            raise RpcError("NotFound", f"node {node_id} not found")
        _check_heartbeat(params)
        self.last_seen[node_id] = time.monotonic()
        node = self.store.nodes[node_id]
        commands = []
        described = params.get("description") or {}
        stale = described.get("Hostname") and node["Description"].get("Hostname") != described["Hostname"]
        if node["Status"]["State"] != "ready" or node["Status"].get("Addr") != params.get("addr") or stale:
            status = {"op": "node.status", "id": node_id, "state": "ready", "addr": params.get("addr", ""),
                      "message": "", "at": rfc3339_now()}
            if stale:
                status["description"] = described
            commands.append(status)
        for update in params.get("updates") or []:
            task = self.store.tasks.get(update.get("task_id"))
            if task is not None and task.get("NodeID") == node_id:
                commands.append({"op": "task.status", "id": task["ID"], "status": update["status"]})
        if commands:
            await self.propose(commands[0] if len(commands) == 1 else {"op": "batch", "commands": commands})
        tasks = []
        for task in self.store.tasks.values():
            if task.get("NodeID") != node_id:
                continue
            service = self.store.services.get(task.get("ServiceID", ""))
            name = service["Spec"]["Name"] if service else task.get("ServiceAnnotations", {}).get("Name", "")
            # in a rotation (a network's DNS names, a virtual IP, a published port): the agent
            # lets every node take the task out of it before stopping its container, as docker's
            # executor does for a task on any network (moby's hasServiceBinding, then a 2 s wait)
            rotation = bool(task.get("NetworksAttachments") or (service and (
                networks.ingress_ports(service) or service["Endpoint"].get("VirtualIPs"))))
            tasks.append({"task": task, "service_name": name, "rotation": rotation})
        managers = [self.raft.members[m] for m in self.raft.members]
        return {"tasks": tasks, "role": self.store.nodes[node_id]["Spec"].get("Role", "worker"),
                "managers": managers, "overlay": networks.node_overlay(
                    self.store.nodes, self.store.services, self.store.tasks, self.store.networks, node_id)}

    # -- handlers -------------------------------------------------------------------
    def local_handlers(self) -> dict:
        handlers = {"info": self.h_info, "swarm.init": self._one_at_a_time(self.h_init),
                    "swarm.join": self._one_at_a_time(self.h_join), "swarm.leave": self._one_at_a_time(self.h_leave),
                    "service.logs": self.h_service_logs}
        for method in CONTROL_METHODS:
            handlers[method] = self._control_handler(method)
        return handlers

    def _one_at_a_time(self, handler):
        async def serialized(params: dict, peer) -> object:
            async with self.joining:
                return await handler(params, peer)
        return serialized

    def _control_handler(self, method: str):
        async def handler(params: dict, peer) -> object:
            self.last_request = time.monotonic()
            return await self.control_call(method, params)
        return handler

    async def control_call(self, method: str, params: dict):
        if self.config is None:
            raise RpcError("FailedPrecondition", NOT_MANAGER)
        if self.config.role != "manager" or self.raft is None:
            raise RpcError("FailedPrecondition", WORKER)
        if params.get("ref") == "self":  # this node, not the leader's
            params = dict(params, ref=self.config.node_id)
        write = method not in READ_METHODS
        # A change waits a while for a leader (an election under way), then fails with
        # docker's "context deadline exceeded"; a read without a leader is answered
        # from this manager's copy of the store (reads go on without a quorum)
        deadline = time.monotonic() + (LEADER_WAIT if write else 0)
        while True:
            if self.raft is None:
                raise RpcError("FailedPrecondition", WORKER)
            if self.raft.is_leader:
                return await self.control.execute(method, params)
            leader = self.leader_addr()
            if leader is not None:
                try:
                    return await self.client(leader).call("control.call", {"method": method, "params": params},
                                                          timeout=PROPOSE_TIMEOUT + 5)
                except RpcError as exc:
                    if exc.code not in ("Unavailable", "NotLeader"):
                        raise
            if time.monotonic() >= deadline:
                if not write and self.store.cluster is not None:
                    return await self.control.execute(method, params)
                raise RpcError("DeadlineExceeded", DEADLINE) if write else RpcError("Unavailable", NO_LEADER)
            await asyncio.sleep(0.2)

    def remote_handlers(self) -> dict:
        from . import ca

        handlers = {"raft.message": self.r_raft_message, "raft.join": self.r_raft_join,
                    "dispatcher.heartbeat": self.r_heartbeat, "control.call": self.r_control,
                    "ca.renew": self.r_ca_renew, "logs.read": self.r_logs_read}
        handlers.update(ca.join_handlers(lambda: self.files.read_cert(CA_CRT), self.role_for_token, self.r_ca_issue))
        return handlers

    def role_for_token(self, token: str) -> str | None:
        from .token import role_for_token

        tokens = (self.store.cluster or {}).get("JoinTokens") or {}
        return role_for_token(token, {"worker": tokens.get("Worker", ""), "manager": tokens.get("Manager", "")})

    def _need_manager(self, peer) -> None:
        if getattr(peer, "role", None) != "manager":
            raise RpcError("PermissionDenied", "only managers may call this")

    def _need_leader(self) -> None:
        if self.raft is None or not self.raft.is_leader:
            raise RpcError("NotLeader", self.leader_addr() or NO_LEADER)

    async def r_raft_message(self, params: dict, peer) -> None:
        self._need_manager(peer)
        if self.raft is not None:
            self.raft.on_message(params)

    async def r_raft_join(self, params: dict, peer) -> dict:
        self._need_manager(peer)
        self._need_leader()
        node = self.store.nodes.get(peer.node_id)
        if node is None or node["Spec"].get("Role") != "manager":
            raise RpcError("PermissionDenied", f"node {peer.node_id} is not a manager")
        if peer.node_id not in self.raft.members:
            await self.raft.add_member(peer.node_id, params["addr"])
        return {}

    async def r_heartbeat(self, params: dict, peer) -> dict:
        if peer.node_id is None:
            raise RpcError("Unauthenticated", "a node certificate is needed")
        self._need_leader()
        return await self.dispatch(peer.node_id, params)

    async def r_control(self, params: dict, peer) -> object:
        self._need_manager(peer)
        self._need_leader()
        return await self.control.execute(params["method"], params.get("params") or {})

    async def r_ca_issue(self, csr_pem: bytes, role: str, peer) -> dict:
        self._need_leader()
        return await self.control.issue(csr_pem, role)

    async def r_ca_renew(self, params: dict, peer) -> dict:
        if peer.node_id is None:
            raise RpcError("Unauthenticated", "a node certificate is needed")
        self._need_leader()
        if not isinstance(params.get("csr"), str):
            raise RpcError("InvalidArgument", "ca.renew needs a csr")
        return await self.control.renew(peer.node_id, params["csr"])

    def r_logs_read(self, params: dict, peer):
        from . import tasklogs

        self._need_manager(peer)
        return tasklogs.read(self.root_path, params)

    async def h_service_logs(self, params: dict, peer):
        """The lines of a service's (or one task's) tasks from the nodes that ran them."""
        from . import tasklogs
        from .state import RANK

        self.last_request = time.monotonic()
        ref = params.get("ref", "")
        try:
            tasks = await self.control_call("task.ls", {"filters": {"service": [ref]}})
        except RpcError as exc:
            if exc.code != "NotFound":
                raise
            tasks = [await self.control_call("task.inspect", {"ref": ref})]
        nodes = {n["ID"]: n for n in await self.control_call("node.ls", {})}
        port = split_addr(self.config.listen_addr)[1]
        by_node: dict[str, list[str]] = {}
        for task in tasks:
            # a task that never got a container has no lines
            if task.get("NodeID") and RANK.get(task["Status"]["State"], 0) >= RANK["starting"]:
                by_node.setdefault(task["NodeID"], []).append(task["ID"])
        service_of = {t["ID"]: t["ServiceID"] for t in tasks}
        request = {k: params.get(k) for k in ("tail", "since", "follow")}

        async def from_node(node_id: str, task_ids: list[str]):
            node = nodes.get(node_id)
            if node is None or not node["Status"].get("Addr"):
                return
            if node_id == self.config.node_id:
                source = tasklogs.read(self.root_path, dict(request, task_ids=task_ids))
            else:
                addr = f"{node['Status']['Addr']}:{port}"
                source = self.client(addr, server_name=node_id).stream("logs.read", dict(request, task_ids=task_ids))
            try:
                async for entry in source:
                    yield dict(entry, node_id=node_id, service_id=service_of.get(entry.get("task_id"), ""))
            except RpcError as exc:  # a node that is down has no lines to give, as in docker
                log.info("logs of node %s: %s", node_id, exc.message)

        sources = [from_node(node_id, ids) for node_id, ids in sorted(by_node.items())]
        async for entry in tasklogs.merge(sources, bool(params.get("follow"))):
            yield entry

    async def h_info(self, params: dict, peer) -> dict:
        self.last_request = time.monotonic()
        if self.config is None:
            return {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                    "Error": "", "RemoteManagers": None}
        info = {"NodeID": self.config.node_id, "NodeAddr": split_addr(self.config.advertise_addr)[0],
                "LocalNodeState": "active", "ControlAvailable": self.config.role == "manager", "Error": "",
                "RemoteManagers": [{"NodeID": "", "Addr": addr} for addr in self.config.remotes]}
        if self.raft is not None:
            info["RemoteManagers"] = [{"NodeID": m, "Addr": a} for m, a in sorted(self.raft.members.items())]
            info["Nodes"] = len(self.store.nodes)
            info["Managers"] = len(self.raft.members)
            if self.store.cluster:
                from .state import public

                cluster = public(self.store.cluster)
                info["Cluster"] = {k: v for k, v in cluster.items() if k != "JoinTokens"}
        return info

    async def h_init(self, params: dict, peer) -> dict:
        self.last_request = time.monotonic()
        if params.get("force_new_cluster") and self.config is not None and self.config.role == "manager":
            return await self.force_new_cluster()
        if self.config is not None:
            raise RpcError("FailedPrecondition", ALREADY)
        from .control import bootstrap

        self.config = await bootstrap(self, params)
        await self.start_member()
        # the first entries: the cluster and this node
        await self.control.initialise(params)
        return {"node_id": self.config.node_id}

    async def force_new_cluster(self) -> dict:
        from .raft.core import RaftCore
        from .raft.storage import FileStorage

        await self.stop_member(remove_tasks=False)
        storage = FileStorage(self.files.raft)
        try:
            RaftCore.force_new_cluster(storage, self.config.node_id, self.config.advertise_addr)
        finally:
            storage.close()
        self.store = type(self.store)()
        await self.start_member()
        return {"node_id": self.config.node_id}

    async def h_join(self, params: dict, peer) -> dict:
        self.last_request = time.monotonic()
        if self.config is not None:
            raise RpcError("FailedPrecondition", ALREADY)
        from .control import join

        self.config = await join(self, params)
        await self.start_member()
        if self.config.role == "manager":
            await self.call_leader("raft.join", {"addr": self.config.advertise_addr})
        # returns once the leader has heard from this node (its hostname and address
        # are in `node ls`), as docker's join returns once the node is registered
        deadline = time.monotonic() + 20
        while self.heartbeats == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return {"role": self.config.role}

    async def h_leave(self, params: dict, peer) -> dict:
        self.last_request = time.monotonic()
        if self.config is None:
            raise RpcError("FailedPrecondition", "This node is not part of a swarm")
        if self.config.role == "manager" and not params.get("force"):
            raise RpcError("FailedPrecondition", self.control.leave_refusal())
        if self.config.role == "manager" and self.raft is not None and len(self.raft.members) > 1:
            try:
                await self.call_leader("control.call", {"method": "node.demote_self",
                                                        "params": {"node_id": self.config.node_id}})
            except RpcError:
                pass
        await self.stop_member(remove_tasks=True)
        self.files.forget()
        self.config = None
        self.store = type(self.store)()
        self.assignment = []
        return {}


def _check_heartbeat(params: dict) -> None:
    """A heartbeat's params have the shapes the dispatcher stores (a node's certificate
    does not make what it sends well formed): InvalidArgument otherwise.

    >>> _check_heartbeat({"updates": [{"task_id": "t", "status": {"State": "running"}}], "addr": "10.0.0.2",
    ...                   "description": {"Hostname": "h"}})
    >>> _check_heartbeat({"addr": 5})
    Traceback (most recent call last):
    ...
    reference_runtime.swarm.errors.RpcError: a heartbeat needs updates [{task_id, status}], a description and an addr
    """
    updates, described = params.get("updates") or [], params.get("description") or {}
    if not (isinstance(updates, list) and all(isinstance(u, dict) and isinstance(u.get("task_id"), str)
                                              and isinstance(u.get("status"), dict) for u in updates)
            and isinstance(described, dict) and isinstance(described.get("Hostname", ""), str)
            and isinstance(params.get("addr", ""), str)):
        raise RpcError("InvalidArgument", "a heartbeat needs updates [{task_id, status}], a description and an addr")


#: Calls that change nothing: they fail at once without a leader.
READ_METHODS = frozenset({"swarm.inspect", "swarm.join_token", "node.ls", "node.inspect", "service.ls",
                          "service.inspect", "task.ls", "task.inspect", "network.ls", "network.inspect"})
#: The control API (control.py): executed by the leader, forwarded by other managers.
CONTROL_METHODS = ("swarm.inspect", "swarm.update", "swarm.join_token", "node.ls", "node.inspect", "node.update",
                   "node.rm", "service.create", "service.ls", "service.inspect", "service.update", "service.rm",
                   "task.ls", "task.inspect", "node.demote_self", "network.create", "network.ls", "network.inspect",
                   "network.rm")


# -- starting the daemon -----------------------------------------------------------


def ensure_running(root_path: str) -> str:
    """Start this root's swarmd unless one answers; returns its socket path."""
    from .framing import call_unix

    files = NodeFiles(root_path)
    try:
        call_unix(str(files.socket), "info", {}, timeout=5.0)
        return str(files.socket)
    except (RpcError, OSError):
        pass
    files.ensure()
    with open(files.log, "ab") as logfile:
        subprocess.Popen([sys.executable, "-m", "reference_runtime.swarm.swarmd", "--root", os.path.abspath(root_path)],
                         stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True,
                         close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            call_unix(str(files.socket), "info", {}, timeout=2.0)
            return str(files.socket)
        except (RpcError, OSError):
            time.sleep(0.05)
    raise SwarmError(f"swarmd did not start within {START_TIMEOUT:.0f}s (see {files.log})")


def _single_instance(files: NodeFiles) -> int | None:
    """An flock on swarmd.pid: a second daemon for the same root exits."""
    fd = os.open(files.pidfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swarmd")
    parser.add_argument("--root", required=True)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    files = NodeFiles(args.root)
    files.ensure()
    lock = _single_instance(files)
    if lock is None:
        return 0
    socket.setdefaulttimeout(None)
    try:
        asyncio.run(Swarmd(args.root).run())
    finally:
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
