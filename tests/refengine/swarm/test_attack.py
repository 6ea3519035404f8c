"""What an attacker or a careless user sends the swarm, and what it must not do:
let a malformed request into the Raft log (where it would break the leader at
every replay), answer ``Internal``, or give up the daemon."""

from __future__ import annotations

import copy

import pytest

from reference_runtime.swarm.control import _filters
from reference_runtime.swarm.errors import RpcError
from reference_runtime.swarm.orchestrator import reconcile
from reference_runtime.swarm.state import MAX_REPLICAS, StoreError, apply, service_status, snapshot

from .sim import Sim, spec

AT = "2026-11-28T17:00:00.000000001Z"


def _create(sim: Sim, service_spec) -> None:
    apply(sim.state, {"op": "service.create", "id": "s-bad", "at": AT, "spec": service_spec}, sim.state.index + 1)


def _with(**changes) -> dict:
    out = spec("web")
    for path, value in changes.items():
        target = out
        *parents, last = path.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return out


MALFORMED = [
    "x", [], {"Name": 5}, {"Name": ["x"]},
    _with(Mode="Global"), _with(Mode={"Replicated": 5}), _with(Mode={"Replicated": {"Replicas": "3"}}),
    _with(Mode={"Replicated": {"Replicas": None}}), _with(Mode={"Replicated": {"Replicas": True}}),
    _with(Mode={"Global": "yes"}), _with(TaskTemplate="x"), _with(TaskTemplate__ContainerSpec="x"),
    _with(TaskTemplate__Placement={"Constraints": "node.role==manager"}),
    _with(TaskTemplate__Placement={"Constraints": [5]}), _with(TaskTemplate__Networks="x"),
    _with(TaskTemplate__RestartPolicy="x"), _with(TaskTemplate__RestartPolicy={"Delay": "5s"}),
    _with(TaskTemplate__RestartPolicy={"Condition": "sometimes"}), _with(Labels=[]),
    _with(UpdateConfig="x"), _with(UpdateConfig={"Parallelism": "2"}), _with(RollbackConfig={"Monitor": []}),
    _with(EndpointSpec="x"), _with(EndpointSpec={"Ports": "80:80"}),
]


@pytest.mark.parametrize("bad", MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_service_spec_is_refused_by_the_store(bad):
    # Before: {"Mode": "Global"} or {"UpdateConfig": "x"} were applied, and the
    # leader's reconcile (and `service ls`) failed on them for every service, at
    # every replay of the log; {"Mode": {"Replicated": 5}} raised AttributeError.
    sim = Sim(nodes=1)
    sim.create(spec("ok"))
    before = snapshot(sim.state)
    with pytest.raises(StoreError) as refused:
        _create(sim, copy.deepcopy(bad))
    assert refused.value.code == "InvalidArgument"
    assert snapshot(sim.state) == before
    reconcile(sim.state, sim.now, lambda: "t-new")
    service_status(sim.state, "s-ok")


@pytest.mark.parametrize("name", ["a/b", "../../x", "x" * 64, "é", "-web", "web.1", "a b"])
def test_a_service_name_must_be_a_dns_name_as_in_docker(name):
    sim = Sim(nodes=1)
    with pytest.raises(StoreError, match="desc = name must be"):
        _create(sim, spec(name))
    _create(sim, spec("web_1-x" + "y" * 56))  # 63 characters


def test_negative_durations_and_unknown_actions_are_refused():
    for bad in (_with(UpdateConfig={"Delay": -5}), _with(TaskTemplate__RestartPolicy={"MaxAttempts": -1})):
        with pytest.raises(StoreError, match="cannot be negative"):
            _create(Sim(nodes=1), bad)
    with pytest.raises(StoreError, match="desc = unrecognized update failure action explode$"):
        _create(Sim(nodes=1), _with(UpdateConfig={"FailureAction": "explode"}))
    with pytest.raises(StoreError, match="desc = unrecognized update order sideways$"):
        _create(Sim(nodes=1), _with(RollbackConfig={"Order": "sideways"}))
    _create(Sim(nodes=1), _with(UpdateConfig={"Delay": 0, "FailureAction": "rollback", "Order": "start-first",
                                              "MaxFailureRatio": 0.5}))


def test_replicas_past_the_limit_are_refused_so_one_command_cannot_stall_the_leader():
    sim = Sim(nodes=1)
    with pytest.raises(StoreError, match=f"desc = Number of replicas must be at most {MAX_REPLICAS}$"):
        _create(sim, spec("big", 100_000))
    sid = sim.create(spec("web", MAX_REPLICAS))
    service = sim.state.services[sid]
    scaled = copy.deepcopy(service["Spec"])
    scaled["Mode"]["Replicated"]["Replicas"] = 10 ** 18
    with pytest.raises(StoreError, match="at most"):
        apply(sim.state, {"op": "service.update", "id": sid, "version": service["Version"]["Index"], "at": AT,
                          "spec": scaled}, sim.state.index + 1)


def test_a_malformed_swarm_spec_or_node_spec_is_refused():
    sim = Sim(nodes=1)
    version = sim.state.cluster["Version"]["Index"]
    for bad in ("x", [], {"Orchestration": "x"}, {"Orchestration": {"TaskHistoryRetentionLimit": "5"}},
                {"Orchestration": None}, {"Raft": 3}):
        with pytest.raises(StoreError, match="InvalidArgument"):
            apply(sim.state, {"op": "cluster.update", "version": version, "at": AT, "spec": bad}, sim.state.index + 1)
    node = next(iter(sim.state.nodes.values()))
    for bad in ({"Role": "manager", "Availability": "active", "Labels": "x"},
                {"Role": "manager", "Availability": "active", "Name": 5}, "x"):
        with pytest.raises(StoreError, match="InvalidArgument"):
            apply(sim.state, {"op": "node.update", "id": node["ID"], "version": node["Version"]["Index"], "at": AT,
                              "spec": bad}, sim.state.index + 1)
    reconcile(sim.state, sim.now, lambda: "t-new")


@pytest.mark.parametrize("params", [{"filters": "x"}, {"filters": {"id": "abc"}},
                                    {"filters": {"service": 5}}, {"filters": {"name": [5]}}])
def test_list_filters_of_the_wrong_shape_are_an_invalid_argument(params):
    with pytest.raises(RpcError) as refused:
        _filters(params)
    assert refused.value.code == "InvalidArgument" and "filters must map names to lists of strings" in str(refused.value)
    assert _filters({"filters": {"name": ["web"]}}) == {"name": ["web"]} and _filters({"filters": None}) == {}


def test_a_listen_address_in_use_is_refused_before_anything_is_saved():
    # Before: `swarm join --listen-addr <taken>` saved the certificate and node.json,
    # registered the node, then failed to listen with an "Internal" traceback text;
    # every later join answered "already part of a swarm".
    import socket

    from reference_runtime.swarm.control import _check_listen

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = "127.0.0.1:%d" % taken.getsockname()[1]
        with pytest.raises(RpcError) as refused:
            _check_listen({"listen_addr": addr})
    assert refused.value.code == "InvalidArgument"
    assert refused.value.message == f"failed to listen on remote API address: listen tcp {addr}: bind: " \
                                    "address already in use"
    _check_listen({"listen_addr": addr})  # free again
    with pytest.raises(RpcError, match="failed to listen"):
        _check_listen({"listen_addr": "192.0.2.77:2377"})  # an address this machine does not have


def test_a_task_no_container_can_be_made_of_is_rejected_not_left_preparing(tmp_path):
    # Before: create_argv's KeyError('Image') ended the agent's job unreported, so the
    # task stayed "preparing" for ever and the agent retried it at every heartbeat.
    import asyncio

    from reference_runtime.swarm.agent import Agent

    agent = Agent(str(tmp_path), "n1")

    async def start() -> None:
        await agent._start({"task": {"ID": "t1", "ServiceID": "s1", "Slot": 1, "NodeID": "n1",
                                     "Spec": {"ContainerSpec": {}}}, "service_name": "web"})

    asyncio.run(start())
    status = agent.pending["t1"]
    assert status["State"] == "rejected" and status["Err"].startswith("invalid container spec: KeyError")


def test_an_anonymous_peer_that_sends_half_a_frame_is_cut_off(monkeypatch):
    # Before: an anonymous peer (no certificate needed to connect) could hold any number
    # of connections open with half a frame sent, until the daemon ran out of descriptors.
    import asyncio
    import struct

    from reference_runtime.swarm import ca, wire

    from .test_ca import listening, member_server, node

    monkeypatch.setattr(wire, "ANONYMOUS_IDLE_TIMEOUT", 0.3)
    root = ca.RootCA.create()

    async def main():
        server, context, _ = member_server(root, node(root, "manager"))
        async with listening(server, context) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ca.bootstrap_client_context())
            writer.write(struct.pack(">I", 1000) + b"{")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            writer.close()
            client = wire.RpcClient.tcp("127.0.0.1", port, ca.bootstrap_client_context())
            assert "ca" in await client.call("ca.root", {})  # a joining node's calls still work
            await client.close()
            member = node(root, "worker")  # a member's connection has no such limit
            client = wire.RpcClient.tcp("127.0.0.1", port, ca.client_context(member[0], member[1], root.cert_pem))
            await client.call("whoami", {})
            await asyncio.sleep(0.6)
            assert (await client.call("whoami", {}))["role"] == "worker"
            await client.close()

    asyncio.run(asyncio.wait_for(main(), 20))


@pytest.mark.parametrize("params", [{"updates": "x"}, {"updates": [5]}, {"updates": [{"task_id": "t", "status": 5}]},
                                    {"description": "x"}, {"description": {"Hostname": 5}}, {"addr": 5}])
def test_a_malformed_heartbeat_of_a_member_is_an_invalid_argument(params):
    # Before: Internal errors, and {"addr": 5} was stored as the node's address.
    from reference_runtime.swarm.swarmd import _check_heartbeat

    with pytest.raises(RpcError) as refused:
        _check_heartbeat(params)
    assert refused.value.code == "InvalidArgument"
    _check_heartbeat({})


def test_two_joins_at_once_on_one_node_make_one_member(tmp_path, monkeypatch):
    # Before: both passed the "already part of a swarm" check while the first one was
    # fetching its certificate: two nodes were registered and two agents started.
    import asyncio

    from reference_runtime.swarm import control
    from reference_runtime.swarm.nodefiles import NodeConfig
    from reference_runtime.swarm.swarmd import ALREADY, Swarmd

    joined = []

    async def slow_join(daemon, params):
        joined.append(params)
        await asyncio.sleep(0.1)
        return NodeConfig("n1", "c1", "worker", "127.0.0.1:1", "127.0.0.1:1", "h", [])

    async def nothing(self):
        pass

    monkeypatch.setattr(control, "join", slow_join)
    monkeypatch.setattr(Swarmd, "start_member", nothing)

    async def main():
        daemon = Swarmd(str(tmp_path))
        daemon.heartbeats = 1
        join = daemon.local_handlers()["swarm.join"]
        return await asyncio.gather(join({}, None), join({}, None), return_exceptions=True)

    first, second = asyncio.run(main())
    assert first == {"role": "worker"} and len(joined) == 1
    assert isinstance(second, RpcError) and second.message == ALREADY


def test_a_restarted_swarmd_keeps_its_task_containers_until_it_knows_its_assignment(tmp_path, monkeypatch):
    # Before: the agent converged to an empty assignment before its first heartbeat
    # reply, so a swarmd restarted after SIGKILL removed every task container of its
    # node (the tasks then failed "No such container" and were replaced).
    import asyncio
    import types

    from reference_runtime.swarm import swarmd

    monkeypatch.setattr(swarmd, "HEARTBEAT", 0.05)
    daemon = swarmd.Swarmd(str(tmp_path))
    converged = []
    daemon.agent = types.SimpleNamespace(converge=lambda assignment: converged.append(list(assignment)) or [],
                                         overlay=types.SimpleNamespace(view={}))
    daemon.config = types.SimpleNamespace(role="worker", remotes=[])
    replies = [RpcError("Unavailable", "no manager to reach")] * 3 + [{"tasks": [{"task": {"ID": "t1"}}],
                                                                        "role": "worker"}]

    async def heartbeat():
        reply = replies.pop(0) if replies else {"tasks": [], "role": "worker"}
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def follow_role(role):
        pass

    daemon.heartbeat, daemon.follow_role = heartbeat, follow_role

    async def main():
        loop = asyncio.create_task(daemon.agent_loop())
        while len(converged) < 2:
            await asyncio.sleep(0.01)
        loop.cancel()

    asyncio.run(asyncio.wait_for(main(), 10))
    assert converged[0] == [{"task": {"ID": "t1"}}]  # nothing before the first reply


def test_service_logs_skip_damaged_records_of_a_json_file_log(tmp_path):
    # Before: {"log": 5, "time": 5} made `service logs` fail with "'<' not supported
    # between instances of 'int' and 'str'", {"log": ["x"]} crashed the CLI with a
    # traceback, and a record without "time" failed `--since` with "'time'".
    import asyncio

    from reference_runtime.engine.state import Root
    from reference_runtime.swarm import tasklogs

    root = Root(str(tmp_path))
    cid = "c" * 64
    directory = tmp_path / "containers" / cid
    directory.mkdir(parents=True)
    (directory / "config.json").write_text('{"Config": {"Labels": {"com.docker.swarm.task.id": "t1"}}}')
    (directory / "state.json").write_text('{"Running": false, "Status": "exited"}')
    assert tasklogs.containers_of(root, {"t1"}) == {"t1": cid}, "the test's container layout is refengine's"
    good = b'{"log":"%s\\n","stream":"stdout","time":"2026-11-28T17:57:0%d.000000000Z"}\n'
    (directory / f"{cid}-json.log").write_bytes(
        good % (b"first", 1) + b"\xff\xfe garbage\n" + b'{"log": 5, "time": 5}\n' + b'{"log": "no time\\n"}\n'
        + b'{"log": ["x"], "stream": 7, "time": "2026-11-28T17:57:00.000000000Z"}\n' + b"[1,2]\n"
        + b'{"log": "x"' + b"a" * 100_000 + b"\n" + good % (b"last", 2))

    async def lines(**params):
        return [e["line"] async for e in tasklogs.read(str(tmp_path), {"task_ids": ["t1"], **params})]

    assert asyncio.run(lines()) == ["first\n", "last\n"]
    assert asyncio.run(lines(since="2026-11-28T17:57:02Z")) == ["last\n"]
    assert asyncio.run(lines(tail="1")) == ["last\n"]


def test_the_empty_token_admits_nobody_while_a_leader_has_no_tokens_yet():
    # Before: a leader whose store was not replayed yet has no JoinTokens, and
    # swarmd.role_for_token compared the caller's token with "" for both roles: an
    # anonymous ca.issue with token "" got a manager's certificate.
    from reference_runtime.swarm.token import role_for_token

    assert role_for_token("", {"worker": "", "manager": ""}) is None
    assert role_for_token("", {"worker": "SWMTKN-1-w", "manager": ""}) is None
    assert role_for_token("SWMTKN-1-w", {"worker": "SWMTKN-1-w", "manager": ""}) == "worker"


@pytest.mark.parametrize("addr", ["bogus", "0.0.0.0", "bogus:2377", "::", "eth0"])
def test_an_advertise_address_that_is_no_ip_address_is_refused_before_joining(addr):
    # Before: `swarm join --advertise-addr bogus` joined, and the node's address was "bogus".
    from reference_runtime.swarm.control import _check_advertise

    with pytest.raises(RpcError, match="advertise address must be a non-zero IP address"):
        _check_advertise({"advertise_addr": addr})
    for good in ("127.0.0.1", "10.0.0.2:2377", "fd00::1", "[fd00::1]:2377"):
        _check_advertise({"advertise_addr": good})
