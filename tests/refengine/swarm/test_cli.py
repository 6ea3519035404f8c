"""``refengine swarm|node|service``: what the command line sends to this node's
swarmd and prints, against an in-memory daemon (the local API's methods and
result shapes), with docker's texts and exit statuses."""

from __future__ import annotations

import io
import json

import pytest

from reference_runtime.engine import cli as engine_cli
from reference_runtime.swarm import cli
from reference_runtime.swarm.errors import RpcError

NODE1, NODE2 = "node1id0000000000000000aa", "node2id0000000000000000bb"
SVC = "svc1id00000000000000000cc"
TOKENS = {"worker": "SWMTKN-1-abc-worker", "manager": "SWMTKN-1-abc-manager"}


class FakeSwarmd:
    """The local API of a manager node with two nodes; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.in_swarm = True
        self.nodes = {
            NODE1: {"ID": NODE1, "Version": {"Index": 10}, "Spec": {"Role": "manager", "Availability": "active",
                                                                   "Labels": {}},
                    "Description": {"Hostname": "n1", "Engine": {"EngineVersion": "20.10.24"}},
                    "Status": {"State": "ready"}, "ManagerStatus": {"Leader": True, "Reachability": "reachable",
                                                                   "Addr": "10.0.0.1:2377"}},
            NODE2: {"ID": NODE2, "Version": {"Index": 11}, "Spec": {"Role": "worker", "Availability": "active",
                                                                   "Labels": {}},
                    "Description": {"Hostname": "n2", "Engine": {"EngineVersion": "20.10.24"}},
                    "Status": {"State": "ready"}},
        }
        self.services: dict[str, dict] = {}
        self.tasks: list[dict] = []

    # the wire
    def call(self, method: str, params: dict | None = None, **_: object):
        params = params or {}
        self.calls.append((method, json.loads(json.dumps(params))))
        handler = getattr(self, "m_" + method.replace(".", "_"))
        return handler(params)

    def sent(self, method: str) -> list[dict]:
        return [p for m, p in self.calls if m == method]

    def m_info(self, _):
        return {"NodeID": NODE1, "NodeAddr": "10.0.0.1", "LocalNodeState": "active", "ControlAvailable": True,
                "Error": "", "RemoteManagers": []}

    def m_swarm_init(self, _):
        return {"node_id": NODE1}

    def m_swarm_join(self, params):
        if params["token"] != TOKENS["worker"]:
            raise RpcError("InvalidArgument", "invalid join token")
        return {}

    def m_swarm_leave(self, _):
        return {}

    def m_swarm_join_token(self, params):
        if params["rotate"]:
            TOKENS[params["role"]] += "x"
        return {"token": TOKENS[params["role"]], "addr": "10.0.0.1:2377"}

    def m_swarm_inspect(self, _):
        return {"ID": "cluster", "Version": {"Index": 3}, "Spec": {"Orchestration": {"TaskHistoryRetentionLimit": 5}}}

    def m_swarm_update(self, _):
        return {}

    def m_node_ls(self, _):
        return list(self.nodes.values())

    def _node(self, ref):
        for node in self.nodes.values():
            if ref in (node["ID"], node["Description"]["Hostname"]) or node["ID"].startswith(ref):
                return node
        raise RpcError("NotFound", f"node {ref} not found")

    def m_node_inspect(self, params):
        return json.loads(json.dumps(self._node(params["ref"])))

    def m_node_update(self, params):
        node = self._node(params["ref"])
        node["Spec"] = params["spec"]
        return {}

    def m_node_rm(self, params):
        node = self._node(params["ref"])
        if node["Status"]["State"] != "down" and not params["force"]:
            raise RpcError("FailedPrecondition", f"node {node['ID']} is not down and can't be removed")
        del self.nodes[node["ID"]]
        return {}

    def _service(self, ref):
        for service in self.services.values():
            if ref in (service["ID"], service["Spec"]["Name"]):
                return service
        raise RpcError("NotFound", f"service {ref} not found")

    def m_service_create(self, params):
        self.services[SVC] = {"ID": SVC, "Version": {"Index": 20}, "Spec": params["spec"]}
        return {"ID": SVC, "Warnings": None}

    def m_service_ls(self, _):
        return [dict(s, ServiceStatus={"RunningTasks": 1, "DesiredTasks": 2, "CompletedTasks": 0})
                for s in self.services.values()]

    def m_service_inspect(self, params):
        return json.loads(json.dumps(self._service(params["ref"])))

    def m_service_update(self, params):
        service = self._service(params["ref"])
        service["Spec"] = params["spec"]
        service["Version"]["Index"] += 1
        return {"Warnings": None}

    def m_service_rm(self, params):
        del self.services[self._service(params["ref"])["ID"]]
        return {}

    def m_task_ls(self, params):
        wanted = params["filters"].get("service")
        return [t for t in self.tasks if wanted is None or t["ServiceID"] in wanted]

    def m_task_inspect(self, params):
        for task in self.tasks:
            if task["ID"] == params["ref"]:
                return task
        raise RpcError("NotFound", f"task {params['ref']} not found")


@pytest.fixture
def swarmd(monkeypatch) -> FakeSwarmd:
    fake = FakeSwarmd()
    monkeypatch.setattr(cli.Daemon, "present", lambda self: fake.in_swarm)
    monkeypatch.setattr(cli.Daemon, "call", lambda self, method, params=None, **kw: fake.call(method, params))
    monkeypatch.setattr(cli.Daemon, "start", lambda self: setattr(fake, "in_swarm", True))
    monkeypatch.setattr(cli.Daemon, "stream", lambda self, method, params: iter(fake.log_entries))
    monkeypatch.setattr(cli.time, "sleep", lambda s: None)
    return fake


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(list(argv), "/nonexistent-root", out=out, err=err)
    return status, out.getvalue(), err.getvalue()


# -- not in a swarm ------------------------------------------------------------------------


def test_without_a_daemon_commands_say_what_docker_says(tmp_path):
    status, out, err = run("service", "ls")
    assert (status, out) == (1, "")
    assert err == ("Error response from daemon: This node is not a swarm manager. Use \"docker swarm init\" or "
                   "\"docker swarm join\" to connect this node to swarm and try again.\n")
    assert run("swarm", "leave")[2] == "Error response from daemon: This node is not part of a swarm\n"


def test_refengine_dispatches_the_swarm_groups_and_reports_inactive_info(tmp_path, capsys):
    assert engine_cli.run(["--root", str(tmp_path), "node", "ls"]) == 1
    assert "not a swarm manager" in capsys.readouterr().err
    assert cli.info_section(str(tmp_path))["LocalNodeState"] == "inactive"
    assert cli.swarm_document(str(tmp_path), "task", "x") is None


def test_flag_errors_exit_125_with_the_help_hint():
    status, out, err = run("service", "create", "--replicas", "x", "busybox")
    assert status == 125
    assert err == ('invalid argument "x" for "--replicas" flag: strconv.ParseUint: parsing "x": invalid syntax\n'
                   "See 'refengine service create --help'.\n")


def test_missing_arguments_exit_1_with_usage():
    status, _, err = run("service", "scale")
    assert status == 1 and err.startswith('"refengine service scale" requires at least 1 argument.\n')


# -- swarm ---------------------------------------------------------------------------------


def test_swarm_init_prints_the_join_command(swarmd):
    swarmd.in_swarm = False
    status, out, _ = run("swarm", "init", "--advertise-addr", "10.0.0.1")
    assert status == 0
    assert out == (f"Swarm initialized: current node ({NODE1}) is now a manager.\n\n"
                   "To add a worker to this swarm, run the following command:\n\n"
                   f"    docker swarm join --token {TOKENS['worker']} 10.0.0.1:2377\n\n"
                   "To add a manager to this swarm, run 'docker swarm join-token manager' and follow the "
                   "instructions.\n\n")
    assert swarmd.sent("swarm.init") == [{"advertise_addr": "10.0.0.1", "listen_addr": "0.0.0.0:2377",
                                          "force_new_cluster": False, "availability": "active"}]


def test_swarm_init_refuses_an_unknown_availability(swarmd):
    status, _, err = run("swarm", "init", "--availability", "sleepy")
    assert status == 1
    assert err == 'invalid availability "sleepy", only active, pause and drain are supported\n'


def test_swarm_join_and_a_refused_token(swarmd):
    assert run("swarm", "join", "--token", TOKENS["worker"], "10.0.0.1:2377")[1] == \
        "This node joined a swarm as a manager.\n"  # the fake node has control
    status, _, err = run("swarm", "join", "--token", "bad", "10.0.0.1:2377")
    assert (status, err) == (1, "Error response from daemon: invalid join token\n")


def test_join_token_quiet_rotate_and_unknown_role(swarmd):
    old = TOKENS["worker"]
    status, out, _ = run("swarm", "join-token", "--rotate", "-q", "worker")
    assert status == 0 and out == old + "x\n"
    out = run("swarm", "join-token", "--rotate", "manager")[1]
    assert out.startswith("Successfully rotated manager join token.\n\nTo add a manager to this swarm")
    assert run("swarm", "join-token", "boss")[2] == "unknown role boss\n"


def test_swarm_update_and_leave(swarmd):
    assert run("swarm", "update", "--task-history-limit", "2")[1] == "Swarm updated.\n"
    assert swarmd.sent("swarm.update")[0]["spec"] == {"Orchestration": {"TaskHistoryRetentionLimit": 2}}
    assert run("swarm", "leave", "--force")[1] == "Node left the swarm.\n"
    assert swarmd.sent("swarm.leave") == [{"force": True}]


# -- node ----------------------------------------------------------------------------------


def test_node_ls_marks_this_node(swarmd):
    out = run("node", "ls")[1].splitlines()
    assert out[0].split() == ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER", "STATUS", "ENGINE", "VERSION"]
    assert out[1].startswith(f"{NODE1} *   n1") and "Leader" in out[1]
    assert out[2].startswith(f"{NODE2}     n2")
    assert run("node", "ls", "-q")[1] == f"{NODE1}\n{NODE2}\n"
    assert json.loads(run("node", "ls", "--format", "{{json .}}")[1].splitlines()[0])["Self"] is True


def test_node_ls_filters_go_to_the_daemon(swarmd):
    run("node", "ls", "--filter", "role=manager", "-f", "name=n1")
    assert swarmd.sent("node.ls")[0] == {"filters": {"role": ["manager"], "name": ["n1"]}}
    assert run("node", "ls", "--filter", "oops")[0] == 125


def test_node_update_availability_and_labels(swarmd):
    status, out, _ = run("node", "update", "--availability", "drain", "--label-add", "dc=1", "n2")
    assert (status, out) == (0, "n2\n")
    sent = swarmd.sent("node.update")[0]
    assert sent == {"ref": NODE2, "version": 11, "spec": {"Role": "worker", "Availability": "drain",
                                                          "Labels": {"dc": "1"}}}
    status, _, err = run("node", "update", "--label-rm", "nope", "n2")
    assert (status, err) == (1, "key nope doesn't exist in node's labels\n")


def test_promote_and_demote_messages(swarmd):
    assert run("node", "promote", "n2")[1] == "Node n2 promoted to a manager in the swarm.\n"
    assert run("node", "promote", "n2")[1] == f"Node {NODE2} is already a manager.\n"
    assert run("node", "demote", "n2")[1] == "Manager n2 demoted in the swarm.\n"


def test_node_rm_of_a_ready_node_is_refused(swarmd):
    status, out, err = run("node", "rm", "n2")
    assert (status, out) == (1, "")
    assert err == f"Error response from daemon: node {NODE2} is not down and can't be removed\n"
    assert run("node", "rm", "--force", "n2") == (0, "n2\n", "")


def test_node_inspect_and_missing_nodes(swarmd):
    status, out, err = run("node", "inspect", "self", "ghost")
    assert status == 1
    assert [n["ID"] for n in json.loads(out)] == [NODE1]
    assert err == "Error: No such node: ghost\n"
    assert run("node", "inspect", "--format", "{{.Description.Hostname}}", "n2")[1] == "n2\n"


# -- service -------------------------------------------------------------------------------


def test_service_create_detached_prints_the_id(swarmd):
    status, out, _ = run("service", "create", "--detach", "--name", "web", "--replicas", "2", "busybox", "top")
    assert (status, out) == (0, SVC + "\n")
    spec = swarmd.sent("service.create")[0]["spec"]
    assert spec["Name"] == "web" and spec["Mode"] == {"Replicated": {"Replicas": 2}}
    assert spec["TaskTemplate"]["ContainerSpec"]["Args"] == ["top"]


def test_service_create_waits_for_convergence_unless_detached(swarmd, monkeypatch):
    clock = iter(range(0, 1000))
    monkeypatch.setattr(cli.time, "time", lambda: float(next(clock)))
    swarmd.tasks = [{"ID": f"t{i}", "ServiceID": SVC, "NodeID": NODE1, "Slot": i, "DesiredState": "running",
                     "Status": {"State": "running"}} for i in (1, 2)]
    status, out, _ = run("service", "create", "--name", "web", "--replicas", "2", "busybox")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == SVC
    assert "overall progress: 2 out of 2 tasks" in lines
    assert lines[-1] == "verify: Service converged"
    assert run("service", "create", "-q", "--name", "w2", "--replicas", "2", "busybox")[1] == SVC + "\n"


def test_service_create_spec_errors_exit_1(swarmd):
    status, _, err = run("service", "create", "--mode", "global", "--replicas", "2", "busybox")
    assert (status, err) == (1, "replicas can only be used with replicated or replicated-job mode\n")
    assert swarmd.sent("service.create") == []


def _created(swarmd: FakeSwarmd, *flags: str) -> dict:
    run("service", "create", "-d", "--name", "web", *flags, "busybox")
    return swarmd.services[SVC]


def test_scale_changes_only_the_replicas(swarmd):
    before = json.loads(json.dumps(_created(swarmd, "--replicas", "1")["Spec"]))
    status, out, _ = run("service", "scale", "-d", "web=4")
    assert (status, out) == (0, "web scaled to 4\n")
    [sent] = swarmd.sent("service.update")
    before["Mode"]["Replicated"]["Replicas"] = 4
    assert sent == {"ref": SVC, "version": 20, "spec": before, "rollback": None}


def test_scale_of_a_global_service_is_refused(swarmd):
    _created(swarmd, "--mode", "global")
    status, out, err = run("service", "scale", "--detach", "web=5")
    assert (status, out) == (1, "")
    assert err == "web: scale can only be used with replicated or replicated-job mode\n"
    assert swarmd.sent("service.update") == []


def test_scale_reports_each_bad_service(swarmd):
    _created(swarmd)
    status, out, err = run("service", "scale", "-d", "web=x", "ghost=1", "web=2")
    assert status == 1 and out == "web scaled to 2\n"
    assert err == ('web: invalid replicas value x: strconv.ParseUint: parsing "x": invalid syntax\n'
                   "ghost: Error response from daemon: service ghost not found\n")
    assert run("service", "scale", "web")[2].startswith("Invalid scale specifier 'web'.")


def test_service_update_applies_flags_to_the_current_spec(swarmd):
    _created(swarmd, "-e", "A=1")
    status, out, _ = run("service", "update", "--detach", "--env-add", "CFT_UPDATED=1", "web")
    assert (status, out) == (0, "web\n")
    [sent] = swarmd.sent("service.update")
    assert sent["spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1", "CFT_UPDATED=1"]
    assert (sent["version"], sent["rollback"]) == (20, None)


def test_service_update_rollback_and_service_rollback(swarmd):
    spec = json.loads(json.dumps(_created(swarmd)["Spec"]))
    assert run("service", "update", "-d", "--rollback", "web")[0] == 0
    assert run("service", "rollback", "-d", "web")[1] == "web\n"
    assert [(p["spec"], p["rollback"]) for p in swarmd.sent("service.update")] == [(spec, "previous")] * 2
    status, _, err = run("service", "update", "-d", "--rollback", "--image", "x", "web")
    assert (status, err) == (1, "other flags may not be combined with --rollback\n")


def test_service_ls_uses_the_daemons_status(swarmd):
    _created(swarmd, "--replicas", "2")
    lines = run("service", "ls")[1].splitlines()
    assert lines[0].split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
    assert lines[1].split() == [SVC[:12], "web", "replicated", "1/2", "busybox"]
    assert run("service", "ls", "--format", "{{.Name}}\t{{.Mode}}\t{{.Replicas}}")[1] == "web\treplicated\t1/2\n"
    assert run("service", "ls", "-q")[1] == SVC[:12] + "\n"  # docker truncates here too


def test_service_ps_resolves_names_and_reports_unknown_services(swarmd):
    _created(swarmd)
    swarmd.tasks = [{"ID": "task1id000000000000000000", "ServiceID": SVC, "NodeID": NODE2, "Slot": 1,
                     "DesiredState": "running", "CreatedAt": "2026-01-01T00:00:00Z",
                     "Spec": {"ContainerSpec": {"Image": "busybox:latest"}},
                     "Status": {"State": "running", "Timestamp": "2026-01-01T00:00:00Z"}}]
    status, out, err = run("service", "ps", "--format", "{{.Name}} {{.Node}} {{.DesiredState}}", "web")
    assert (status, out) == (0, "web.1 n2 Running\n")
    assert run("service", "ps", "-q", "web")[1] == "task1id000000000000000000\n"
    status, out, err = run("service", "ps", "-q", "web", "ghost")
    assert (status, out, err) == (1, "task1id000000000000000000\n", "no such service: ghost\n")
    assert run("service", "ps", "ghost")[2] == "no such service: ghost\n"
    assert swarmd.sent("task.ls")[0] == {"filters": {"service": [SVC]}}


def test_service_inspect_and_rm(swarmd):
    _created(swarmd)
    assert run("service", "inspect", "--format", "{{.Spec.Name}}", "web")[1] == "web\n"
    status, out, err = run("service", "inspect", "ghost")
    assert (status, out, err) == (1, "[]\n", "Error: no such service: ghost\n")
    assert run("service", "rm", "web", "ghost") == (1, "web\n", "Error response from daemon: service ghost not "
                                                                 "found\n")


def test_service_logs_prefixes_each_line_with_the_task(swarmd):
    _created(swarmd, "--replicas", "2")
    swarmd.tasks = [{"ID": "task1id000000000000000000", "ServiceID": SVC, "NodeID": NODE2, "Slot": 1}]
    swarmd.log_entries = [
        {"task_id": "task1id000000000000000000", "node_id": NODE2, "service_id": SVC, "stream": "stdout",
         "line": "hello", "time": "2026-01-01T00:00:00.000000001Z"},
        {"task_id": "task1id000000000000000000", "node_id": NODE2, "service_id": SVC, "stream": "stderr",
         "line": "oops\n", "time": "2026-01-01T00:00:00.000000002Z"},
    ]
    status, out, err = run("service", "logs", "web")
    assert (status, out, err) == (0, "web.1.task1id00000@n2    | hello\n", "web.1.task1id00000@n2    | oops\n")
    assert run("service", "logs", "--raw", "-t", "web")[1] == "2026-01-01T00:00:00.000000001Z hello\n"
    assert run("service", "logs", "--no-task-ids", "web")[1] == "web.1@n2    | hello\n"
    status, _, err = run("service", "logs", "ghost")
    assert (status, err) == (1, "no such task or service: ghost\n")


def test_refengine_info_and_inspect_know_the_swarm_objects(tmp_path, capsys, monkeypatch):
    assert engine_cli.run(["--root", str(tmp_path), "info", "--format", "{{.Swarm.LocalNodeState}} "
                           "{{.Swarm.ControlAvailable}} {{json .Swarm.NodeID}}"]) == 0
    assert capsys.readouterr().out == 'inactive false ""\n'
    assert engine_cli.run(["--root", str(tmp_path), "inspect", "--type", "service", "web"]) == 1
    assert capsys.readouterr().err == "Error: No such service: web\n"
    task = {"ID": "t1", "Status": {"State": "running"}}
    monkeypatch.setattr(cli, "swarm_document", lambda root, kind, ref: task if kind == "task" else None)
    assert engine_cli.run(["--root", str(tmp_path), "inspect", "--type", "task", "--format", "{{.Status.State}}",
                           "t1"]) == 0
    assert capsys.readouterr().out == "running\n"
