"""docker's outputs for node ls, service ls, service ps and the swarm texts,
checked against docker CLI v20.10's golden files (cli/command/*/testdata)."""

from __future__ import annotations

import json

from reference_runtime.swarm import render

NOW = 1_800_000_000.0
TWO_HOURS_AGO = "2027-01-15T06:00:00Z"  # NOW - 2h


def _node(node_id: str, hostname: str, *, leader: bool | None = None, engine: str = "", state: str = "ready",
          availability: str = "active") -> dict:
    node = {"ID": node_id, "Spec": {"Role": "worker", "Availability": availability},
            "Description": {"Hostname": hostname, "Engine": {"EngineVersion": engine}}, "Status": {"State": state}}
    if leader is not None:
        node["ManagerStatus"] = {"Leader": leader, "Reachability": "reachable", "Addr": "10.0.0.1:2377"}
    return node


def test_tabwriter_pads_every_cell_but_the_last_like_go():
    assert render.tabwrite([["ID", "NAME", ""], ["a-long-identifier", "x", ""]]) == (
        "ID" + " " * 18 + "NAME" + " " * 6 + "\n"
        "a-long-identifier" + " " * 3 + "x" + " " * 9 + "\n")


def test_node_ls_matches_dockers_golden_sorted_by_hostname():
    nodes = [_node("nodeID1", "node-2-foo", leader=True, engine="."),
             _node("nodeID2", "node-10-foo", leader=False, engine="18.03.0-ce"),
             _node("nodeID3", "node-1-foo", engine="1.13.0")]
    assert render.node_list(nodes, "nodeID1", "table", False) == (
        "ID          HOSTNAME      STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n"
        "nodeID3     node-1-foo    Ready     Active                          1.13.0\n"
        "nodeID1 *   node-2-foo    Ready     Active         Leader           .\n"
        "nodeID2     node-10-foo   Ready     Active         Reachable        18.03.0-ce\n")


def test_node_ls_quiet_and_formats():
    nodes = [_node("nodeID1", "h1", leader=True), _node("nodeID2", "h2", state="down", availability="drain")]
    assert render.node_list(nodes, "nodeID1", "table", True) == "nodeID1\nnodeID2\n"
    assert render.node_list(nodes, "nodeID1", "{{.Hostname}}: {{.ManagerStatus}}", False) == "h1: Leader\nh2: \n"
    first, second = (json.loads(line) for line in render.node_list(nodes, "nodeID1", "{{json .}}", False).splitlines())
    assert first == {"Availability": "Active", "EngineVersion": "", "Hostname": "h1", "ID": "nodeID1",
                     "ManagerStatus": "Leader", "Self": True, "Status": "Ready", "TLSStatus": "Unknown"}
    assert (second["Status"], second["Availability"], second["Self"]) == ("Down", "Drain", False)


def _service(service_id: str, name: str, mode: dict, image: str = "busybox:latest", ports: list | None = None,
             status: dict | None = None) -> dict:
    service = {"ID": service_id, "Spec": {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": image}},
                                          "Mode": mode}}
    if ports is not None:
        service["Endpoint"] = {"Ports": ports}
    if status is not None:
        service["ServiceStatus"] = status
    return service


def test_service_ls_table():
    services = [
        _service("k0pzqyxx1s2qh5u0fvkmb0fd5", "web", {"Replicated": {"Replicas": 3}},
                 "busybox:latest@sha256:" + "a" * 64,
                 [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}],
                 {"RunningTasks": 2, "DesiredTasks": 3, "CompletedTasks": 0}),
        _service("a1b2c3d4e5f6g7h8i9j0k1l2m", "agent", {"Global": {}},
                 status={"RunningTasks": 3, "DesiredTasks": 3, "CompletedTasks": 0}),
    ]
    assert render.service_list(services, "table", False) == (
        "ID             NAME      MODE         REPLICAS   IMAGE            PORTS\n"
        "a1b2c3d4e5f6   agent     global       3/3        busybox:latest   \n"
        "k0pzqyxx1s2q   web       replicated   2/3        busybox:latest   *:8080->80/tcp\n")


def test_service_ls_sorts_names_naturally_and_quiet_prints_ids():
    services = [_service(f"id{n}", f"service-{n}-foo", {"Replicated": {"Replicas": 1}}) for n in (10, 1, 2)]
    assert render.service_list(services, "{{.Name}}", False) == "service-1-foo\nservice-2-foo\nservice-10-foo\n"
    assert render.service_list(services, "table", True) == "id1\nid2\nid10\n"


def test_service_replicas_column_variants():
    spec = {"Mode": {"Replicated": {"Replicas": 4}}, "TaskTemplate": {"Placement": {"MaxReplicas": 2}}}
    status = {"RunningTasks": 1, "DesiredTasks": 4, "CompletedTasks": 0}
    assert render.service_replicas({"Spec": spec, "ServiceStatus": status}) == "1/4 (max 2 per node)"
    job = {"Spec": {"Mode": {"ReplicatedJob": {"TotalCompletions": 5}}},
           "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 2, "CompletedTasks": 3}}
    assert render.service_replicas(job) == "1/2 (3/5 completed)"


def test_service_status_counts_running_tasks_on_live_nodes():
    services = [_service("s1", "web", {"Replicated": {"Replicas": 3}}), _service("s2", "agent", {"Global": {}})]
    tasks = [
        {"ServiceID": "s1", "NodeID": "n1", "DesiredState": "running", "Status": {"State": "running"}},
        {"ServiceID": "s1", "NodeID": "n2", "DesiredState": "running", "Status": {"State": "running"}},
        {"ServiceID": "s1", "NodeID": "n1", "DesiredState": "shutdown", "Status": {"State": "failed"}},
        {"ServiceID": "s2", "NodeID": "n1", "DesiredState": "running", "Status": {"State": "running"}},
        {"ServiceID": "s2", "NodeID": "n2", "DesiredState": "running", "Status": {"State": "running"}},
    ]
    nodes = [{"ID": "n1", "Status": {"State": "ready"}}, {"ID": "n2", "Status": {"State": "down"}}]
    web, agent = render.service_status(services, tasks, nodes)
    assert web["ServiceStatus"] == {"RunningTasks": 1, "DesiredTasks": 3, "CompletedTasks": 0}
    assert agent["ServiceStatus"] == {"RunningTasks": 1, "DesiredTasks": 2, "CompletedTasks": 0}


def test_ports_group_consecutive_ranges_and_skip_host_mode():
    def port(published, target, mode="ingress", protocol="tcp"):
        return {"Protocol": protocol, "TargetPort": target, "PublishedPort": published, "PublishMode": mode}
    assert render.service_ports([port(80, 80), port(81, 80), port(82, 82), port(53, 53, protocol="udp"),
                                 port(9000, 9000, "host")]) == "*:80-81->80/tcp, *:82->82/tcp, *:53->53/udp"


def _task(task_id: str, service_id: str, *, slot: int = 1, node: str = "id-node", created: str = "",
          state: str = "failed", desired: str = "ready", error: str = "") -> dict:
    task = {"ID": task_id, "ServiceID": service_id, "Slot": slot, "NodeID": node, "DesiredState": desired,
            "Spec": {"ContainerSpec": {"Image": "myimage:mytag"}},
            "Status": {"Timestamp": TWO_HOURS_AGO, "State": state}}
    if created:
        task["CreatedAt"] = created
    if error:
        task["Status"]["Err"] = error
    return task


def test_service_ps_matches_dockers_sorted_golden():
    tasks = [_task("id-foo", "service-id-ten"), _task("id-bar", "service-id-one")]
    names = {"service-id-one": "service-name-1", "service-id-ten": "service-name-10"}
    assert render.task_list(tasks, names, {}, source="table", quiet=False, trunc=True, now=NOW) == (
        "ID        NAME                IMAGE           NODE      DESIRED STATE   CURRENT STATE        ERROR     PORTS\n"
        "id-bar    service-name-1.1    myimage:mytag   id-node   Ready           Failed 2 hours ago             \n"
        "id-foo    service-name-10.1   myimage:mytag   id-node   Ready           Failed 2 hours ago             \n")


def test_service_ps_indents_the_history_of_a_slot():
    tasks = [_task("id-foo", "service-id-foo"), _task("id-bar", "service-id-foo")]
    out = render.task_list(tasks, {"service-id-foo": "service-name-foo"}, {"id-node": "node-name-bar"},
                           source="table", quiet=False, trunc=True, now=NOW)
    assert out == (
        "ID        NAME                     IMAGE           NODE            DESIRED STATE   CURRENT STATE        "
        "ERROR     PORTS\n"
        "id-foo    service-name-foo.1       myimage:mytag   node-name-bar   Ready           Failed 2 hours ago   "
        "          \n"
        "id-bar     \\_ service-name-foo.1   myimage:mytag   node-name-bar   Ready           Failed 2 hours ago   "
        "          \n")


def test_service_ps_newest_task_of_a_slot_first():
    tasks = [_task("old", "s", created="2027-01-15T06:00:00Z"), _task("new", "s", created="2027-01-15T07:00:00Z")]
    out = render.task_list(tasks, {"s": "web"}, {}, source="{{.ID}} {{.Name}}", quiet=False, trunc=True, now=NOW)
    assert out == "new web.1\nold web.1\n"  # no indentation outside a table


def test_global_task_names_carry_the_node_id_and_quiet_prints_ids():
    tasks = [_task("t" * 25, "service-id-foo", slot=0, node="node-id-bar")]
    assert render.task_list(tasks, {}, {}, source="{{.Name}}", quiet=False, trunc=True, now=NOW) == \
        "service-id-foo.node-id-bar\n"
    assert render.task_list(tasks, {}, {}, source="table", quiet=True, trunc=False, now=NOW) == "t" * 25 + "\n"
    assert render.task_list(tasks, {}, {}, source="table", quiet=True, trunc=True, now=NOW) == "t" * 12 + "\n"


def test_task_error_is_quoted_and_truncated_to_30():
    task = _task("x", "s", error="starting container failed: no such image here")
    row = render.task_row(task, "s.1", "n", trunc=True, now=NOW)
    assert row["Error"] == '"starting container failed: no…"'
    assert render.task_row(task, "s.1", "n", trunc=False, now=NOW)["Error"] == \
        '"starting container failed: no such image here"'
    assert render.task_row(_task("x", "s", state="running"), "s.1", "n", trunc=True, now=NOW)["CurrentState"] == \
        "Running 2 hours ago"


def test_familiar_images():
    digest = "sha256:" + "b" * 64
    assert render.familiar_image(f"docker.io/library/nginx:1.25@{digest}") == "nginx:1.25"
    assert render.familiar_image(f"localhost:5000/app:v1@{digest}") == "localhost:5000/app:v1"
    assert render.familiar_image("localhost:5000/app") == "localhost:5000/app"


def test_init_and_join_token_texts():
    assert render.init_message("nodeID", "worker-join-token", "127.0.0.1") == (
        "Swarm initialized: current node (nodeID) is now a manager.\n\n"
        "To add a worker to this swarm, run the following command:\n\n"
        "    docker swarm join --token worker-join-token 127.0.0.1\n\n"
        "To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions.\n\n")
    assert render.join_instructions("manager", "manager-join-token", "127.0.0.1") == (
        "To add a manager to this swarm, run the following command:\n\n"
        "    docker swarm join --token manager-join-token 127.0.0.1\n\n")


def test_log_prefixes():
    task = {"ID": "abcdefghijklmnopqrstuvwxy", "Slot": 3}
    assert render.log_prefix("web", task, "node1", no_trunc=False, no_task_ids=False, padding=2) == \
        "web.3.abcdefghijkl@node1     | "
    assert render.log_prefix("web", task, "node1", no_trunc=True, no_task_ids=False, padding=1) == \
        "web.3.abcdefghijklmnopqrstuvwxy@node1    | "
    assert render.log_prefix("web", task, "node1", no_trunc=False, no_task_ids=True, padding=1) == \
        "web.3@node1    | "


def test_convergence():
    service = {"Spec": {"Mode": {"Replicated": {"Replicas": 2}}}}
    running = {"NodeID": "n1", "DesiredState": "running", "Status": {"State": "running"}}
    starting = {"NodeID": "n1", "DesiredState": "running", "Status": {"State": "starting"}}
    old = {"NodeID": "n1", "DesiredState": "shutdown", "Status": {"State": "failed"}}
    assert render.converged(service, [running, running, old], {"n1"}) == (True, 2, 2)
    assert render.converged(service, [running, starting], {"n1"}) == (False, 1, 2)
    assert render.converged({"Spec": {"Mode": {"Global": {}}}}, [running, running], {"n1"}) == (True, 2, 2)


def test_node_pretty_matches_dockers_golden():
    node = {"ID": "nodeID", "CreatedAt": "2009-11-10T23:00:00Z",
            "Spec": {"Name": "defaultNodeName", "Availability": "active", "Role": "manager"},
            "Description": {"Hostname": "defaultNodeHostname", "Platform": {"OS": "linux", "Architecture": "x86_64"},
                            "Resources": {"MemoryBytes": 20 << 20},
                            "Engine": {"EngineVersion": "1.13.0", "Labels": {"engine": "label"},
                                       "Plugins": [{"Type": "Network", "Name": "bridge"},
                                                   {"Type": "Network", "Name": "overlay"},
                                                   {"Type": "Volume", "Name": "local"}]}},
            "Status": {"State": "ready", "Addr": "127.0.0.1"},
            "ManagerStatus": {"Leader": True, "Reachability": "reachable", "Addr": "127.0.0.1"}}
    assert render.node_pretty(node) == (
        "ID:\t\t\tnodeID\nName:\t\t\tdefaultNodeName\nHostname:              \tdefaultNodeHostname\n"
        "Joined at:             \t2009-11-10 23:00:00 +0000 utc\nStatus:\n State:\t\t\tReady\n"
        " Availability:         \tActive\n Address:\t\t127.0.0.1\nManager Status:\n Address:\t\t127.0.0.1\n"
        " Raft Status:\t\tReachable\n Leader:\t\tYes\nPlatform:\n Operating System:\tlinux\n"
        " Architecture:\t\tx86_64\nResources:\n CPUs:\t\t\t0\n Memory:\t\t20MiB\nPlugins:\n"
        " Network:\t\tbridge, overlay\n Volume:\t\tlocal\nEngine Version:\t\t1.13.0\nEngine Labels:\n"
        " - engine=label\n")


def test_service_pretty_matches_dockers_golden():
    service = {
        "ID": "de179gar9d0o7ltdybungplod",
        "Spec": {"Name": "my_service", "Labels": {"com.label": "foo"},
                 "TaskTemplate": {
                     "LogDriver": {"Name": "driver", "Options": {"max-file": "5"}},
                     "ContainerSpec": {
                         "Image": "foo/bar@sha256:this_is_a_test",
                         "Configs": [{"ConfigID": "c", "ConfigName": "configtest.conf",
                                      "File": {"Name": "/configtest.conf"}}],
                         "Secrets": [{"SecretID": "s", "SecretName": "secrettest.conf",
                                      "File": {"Name": "/secrettest.conf"}}],
                         "Healthcheck": {"Test": ["CMD-SHELL", "curl"], "Interval": 4, "Retries": 3,
                                         "StartPeriod": 2, "Timeout": 1}},
                     "Resources": {"Limits": {"NanoCPUs": 100_000_000_000, "MemoryBytes": 10_490_000, "Pids": 20}},
                     "Networks": [{"Target": "5vpyomhb6ievnk0i0o60gcnei", "Aliases": ["web"]}]},
                 "Mode": {"Replicated": {"Replicas": 2}},
                 "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 5000}]}},
        "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 5000, "PublishedPort": 30000}]},
    }
    assert render.service_pretty(service, NOW, {"5vpyomhb6ievnk0i0o60gcnei": "mynetwork"}) == (
        "\nID:\t\tde179gar9d0o7ltdybungplod\nName:\t\tmy_service\nLabels:\n com.label=foo\n"
        "Service Mode:\tReplicated\n Replicas:\t2\nPlacement:\nContainerSpec:\n"
        " Image:\t\tfoo/bar@sha256:this_is_a_test\nConfigs:\n Target:\t/configtest.conf\n"
        "  Source:\tconfigtest.conf\nSecrets:\n Target:\t/secrettest.conf\n  Source:\tsecrettest.conf\n"
        "Log Driver:\n Name:\t\tdriver\n LogOpts:\n  max-file:       5\n\nResources:\n Limits:\n"
        "  CPU:\t\t100\n  Memory:\t10MiB\n  PIDs:\t\t20\nNetworks: mynetwork \nEndpoint Mode:\tvip\nPorts:\n"
        " PublishedPort = 30000\n  Protocol = tcp\n  TargetPort = 5000\n  PublishMode =  \n Healthcheck:\n"
        "  Interval = 4ns\n  Retries = 3\n  StartPeriod =\t2ns\n  Timeout =\t1ns\n  Tests:\n"
        "\t Test = CMD-SHELL\n\t Test = curl \n\n")


def test_service_pretty_shows_update_config_with_go_durations():
    service = {"ID": "x", "Spec": {"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Init": False}},
                                   "Mode": {"Global": {}},
                                   "UpdateConfig": {"Parallelism": 1, "Delay": 90 * 10**9, "FailureAction": "pause",
                                                    "Monitor": 5 * 10**9, "MaxFailureRatio": 0.25,
                                                    "Order": "stop-first"}}}
    out = render.service_pretty(service, NOW)
    assert "Service Mode:\tGlobal\n" in out
    assert ("UpdateConfig:\n Parallelism:\t1\n Delay:\t\t1m30s\n On failure:\tpause\n Monitoring Period: 5s\n"
            " Max failure ratio: 0.25\n Update order:      stop-first\n") in out
    assert " Init:\t\tfalse" in out
