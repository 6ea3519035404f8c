"""The swarm commands' flags and the ServiceSpec they make, against the JSON
docker CLI v20.10 sends (cli/command/service/opts.go ToService, update.go
updateService; Go's omitempty and swarmkit's defaults)."""

from __future__ import annotations

import json

import pytest

from reference_runtime.swarm.svcflags import (SERVICE_CREATE, SERVICE_UPDATE, FlagError, Opt, SpecError, Table,
                                              check_rollback_alone, duration, effective_caps, mount, nano_cpus, parse,
                                              ports, service_spec, update_spec)

S = 1_000_000_000


def create(*argv: str) -> dict:
    return service_spec(parse(SERVICE_CREATE, list(argv)))


def update(spec: dict, *argv: str) -> dict:
    return update_spec(spec, parse(SERVICE_UPDATE, [*argv, "svc"]))


# -- the parser ----------------------------------------------------------------------------


def test_parser_reads_pflag_forms_and_records_what_was_given():
    table = Table((Opt("detach", "d", "bool", default=False), Opt("name", default=""), Opt("env", "e", "list")))
    flags = parse(table, ["--name=web", "-de", "A=1", "--env", "B=2", "--detach=false", "img"])
    assert flags["name"] == "web" and flags["env"] == ["A=1", "B=2"] and flags["detach"] is False
    assert flags.changed == {"name", "env", "detach"}
    assert flags.args == ["img"]


def test_create_stops_at_the_image_so_later_flags_belong_to_the_command():
    flags = parse(SERVICE_CREATE, ["--name", "s", "busybox", "sh", "-c", "--replicas"])
    assert flags.args == ["busybox", "sh", "-c", "--replicas"]
    assert "replicas" not in flags.changed


def test_other_commands_take_flags_after_arguments():
    flags = parse(SERVICE_UPDATE, ["svc", "--replicas", "3"])
    assert flags.args == ["svc"] and flags["replicas"] == 3


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unknown flag: --bogus"),
    (["-x"], "unknown shorthand flag: 'x' in -x"),
    (["--replicas", "two"], 'invalid argument "two" for "--replicas" flag: strconv.ParseUint: parsing "two": '
                            "invalid syntax"),
    (["--replicas", "-1"], 'invalid argument "-1" for "--replicas" flag: strconv.ParseUint: parsing "-1": '
                           "invalid syntax"),
    (["--update-delay", "soon"], 'invalid argument "soon" for "--update-delay" flag: time: invalid duration "soon"'),
    (["--health-interval", "-1s"], 'invalid argument "-1s" for "--health-interval" flag: duration cannot be '
                                   "negative"),
    (["-e", "=x"], 'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x'),
    (["--detach=maybe"], 'invalid argument "maybe" for "-d, --detach" flag: strconv.ParseBool: parsing "maybe": '
                         "invalid syntax"),
    (["--limit-cpu", "0.0000000001"], 'invalid argument "0.0000000001" for "--limit-cpu" flag: value is too precise'),
    (["--mount", "type=bind"], 'invalid argument "type=bind" for "--mount" flag: target is required'),
    (["--publish", "published=80"], 'invalid argument "published=80" for "-p, --publish" flag: missing mandatory '
                                    'field "target"'),
])
def test_flag_errors_carry_pflags_wording(argv, message):
    with pytest.raises(FlagError) as info:
        parse(SERVICE_CREATE, argv + ["img"])
    assert str(info.value) == message


def test_a_flag_without_its_value():
    with pytest.raises(FlagError, match="^flag needs an argument: --name$"):
        parse(SERVICE_CREATE, ["--name"])
    with pytest.raises(FlagError, match="^flag needs an argument: 'e' in -e$"):
        parse(SERVICE_CREATE, ["-e"])


@pytest.mark.parametrize("text, ns", [("1m30s", 90 * S), ("1h", 3600 * S), ("250ms", S // 4), ("1.5s", 3 * S // 2),
                                      ("0", 0), ("10us", 10_000), ("-2s", -2 * S)])
def test_go_durations(text, ns):
    assert duration(text) == ns


def test_nano_cpus_accept_rationals():
    assert nano_cpus("1.5") == 1_500_000_000 and nano_cpus("1/4") == 250_000_000


# -- service create ------------------------------------------------------------------------


def test_minimal_create_sends_what_docker_sends():
    assert create("--name", "web", "busybox") == {
        "Name": "web", "Labels": {},
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Init": False, "DNSConfig": {}},
                         "Resources": {"Limits": {}, "Reservations": {}}, "Placement": {}, "ForceUpdate": 0},
        "Mode": {"Replicated": {}},
        "EndpointSpec": {"Mode": "vip"},
    }


def test_create_keys_follow_the_go_structs_order():
    spec = create("--name", "web", "--replicas", "2", "--update-delay", "1s", "-e", "A=1", "busybox", "sh")
    assert list(spec) == ["Name", "Labels", "TaskTemplate", "Mode", "UpdateConfig", "EndpointSpec"]
    assert list(spec["TaskTemplate"]["ContainerSpec"]) == ["Image", "Args", "Env", "Init", "DNSConfig"]
    assert json.dumps(spec["Mode"]) == '{"Replicated": {"Replicas": 2}}'


def test_command_arguments_and_entrypoint():
    cspec = create("--entrypoint", "sh -c", "busybox", "echo", "hi")["TaskTemplate"]["ContainerSpec"]
    assert cspec["Command"] == ["sh", "-c"] and cspec["Args"] == ["echo", "hi"]


def test_container_fields():
    cspec = create("-w", "/srv", "-u", "1000:1000", "--hostname", "h", "--stop-signal", "SIGINT",
                   "--stop-grace-period", "30s", "--container-label", "a=b", "--container-label", "flag",
                   "--group", "wheel", "--tty", "--read-only", "--init", "--dns", "10.0.0.2", "--dns-search", "ex.com",
                   "--dns-option", "ndots:2", "--host", "db:10.0.0.9", "--sysctl", "net.core.somaxconn=1024",
                   "--ulimit", "nofile=1024:2048", "busybox")["TaskTemplate"]["ContainerSpec"]
    assert cspec == {
        "Image": "busybox", "Labels": {"a": "b", "flag": ""}, "Hostname": "h", "Dir": "/srv", "User": "1000:1000",
        "Groups": ["wheel"], "Init": True, "StopSignal": "SIGINT", "TTY": True, "ReadOnly": True,
        "StopGracePeriod": 30 * S, "Hosts": ["10.0.0.9 db"],
        "DNSConfig": {"Nameservers": ["10.0.0.2"], "Search": ["ex.com"], "Options": ["ndots:2"]},
        "Sysctls": {"net.core.somaxconn": "1024"}, "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}],
    }


def test_environment_later_key_wins_and_bare_key_reads_the_callers(monkeypatch, tmp_path):
    monkeypatch.setenv("FROM_CALLER", "yes")
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nA=file\nB=kept\n")
    cspec = create("--env-file", str(env_file), "-e", "A=flag", "-e", "FROM_CALLER", "-e", "UNSET_X",
                   "busybox")["TaskTemplate"]["ContainerSpec"]
    assert cspec["Env"] == ["B=kept", "A=flag", "FROM_CALLER=yes", "UNSET_X"]


def test_labels_of_the_service():
    assert create("-l", "tier=web", "--label", "x", "busybox")["Labels"] == {"tier": "web", "x": ""}


def test_global_mode_and_its_refusals():
    assert create("--mode", "global", "busybox")["Mode"] == {"Global": {}}
    with pytest.raises(SpecError, match="^replicas can only be used with replicated or replicated-job mode$"):
        create("--mode", "global", "--replicas", "2", "busybox")
    with pytest.raises(SpecError, match="^Unknown mode: odd, only replicated and global supported$"):
        create("--mode", "odd", "busybox")


def test_jobs():
    assert create("--mode", "replicated-job", "--replicas", "3", "busybox")["Mode"] == \
        {"ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 3}}
    with pytest.raises(SpecError, match="not supported for jobs"):
        create("--mode", "global-job", "--update-delay", "1s", "busybox")


def test_restart_policy_starts_from_swarmkits_defaults():
    task = create("--restart-condition", "on-failure", "busybox")["TaskTemplate"]
    assert task["RestartPolicy"] == {"Condition": "on-failure", "Delay": 5 * S, "MaxAttempts": 0}
    task = create("--restart-max-attempts", "3", "--restart-window", "1m", "--restart-delay", "2s", "busybox")
    assert task["TaskTemplate"]["RestartPolicy"] == {"Condition": "any", "Delay": 2 * S, "MaxAttempts": 3,
                                                     "Window": 60 * S}
    assert "RestartPolicy" not in create("busybox")["TaskTemplate"]


def test_update_and_rollback_configs_start_from_swarmkits_defaults():
    spec = create("--update-parallelism", "2", "--update-delay", "10s", "--update-failure-action", "rollback",
                  "--update-max-failure-ratio", "0.25", "--update-order", "start-first",
                  "--rollback-monitor", "20s", "busybox")
    assert spec["UpdateConfig"] == {"Parallelism": 2, "Delay": 10 * S, "FailureAction": "rollback",
                                    "Monitor": 5 * S, "MaxFailureRatio": 0.25, "Order": "start-first"}
    assert spec["RollbackConfig"] == {"Parallelism": 1, "FailureAction": "pause", "Monitor": 20 * S,
                                      "MaxFailureRatio": 0, "Order": "stop-first"}
    assert create("--update-parallelism", "0", "busybox")["UpdateConfig"]["Parallelism"] == 0


def test_placement_resources_and_log_driver():
    spec = create("--constraint", "node.role==worker", "--placement-pref", "spread=node.labels.dc",
                  "--replicas-max-per-node", "2", "--limit-cpu", "0.5", "--limit-memory", "64m",
                  "--reserve-memory", "1g", "--limit-pids", "100", "--log-driver", "json-file",
                  "--log-opt", "max-size=1m", "busybox")["TaskTemplate"]
    assert spec["Placement"] == {"Constraints": ["node.role==worker"],
                                 "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.dc"}}],
                                 "MaxReplicas": 2}
    assert spec["Resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 << 20, "Pids": 100},
                                 "Reservations": {"MemoryBytes": 1 << 30}}
    assert spec["LogDriver"] == {"Name": "json-file", "Options": {"max-size": "1m"}}


def test_healthcheck_flags():
    cspec = create("--health-cmd", "true", "--health-interval", "5s", "--health-retries", "2",
                   "busybox")["TaskTemplate"]["ContainerSpec"]
    assert cspec["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5 * S, "Retries": 2}
    assert create("--no-healthcheck", "busybox")["TaskTemplate"]["ContainerSpec"]["Healthcheck"] == {"Test": ["NONE"]}
    with pytest.raises(SpecError, match="^--no-healthcheck conflicts with --health-\\* options$"):
        create("--no-healthcheck", "--health-cmd", "true", "busybox")


def test_endpoint_ports_and_networks():
    spec = create("-p", "8080:80", "--publish", "published=53,target=53,protocol=udp,mode=host",
                  "--endpoint-mode", "DNSRR", "--network", "net2", "--network", "name=net1,alias=web", "busybox")
    assert spec["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
        {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "host"}]}
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "net1", "Aliases": ["web"]}, {"Target": "net2"}]


@pytest.mark.parametrize("text, expected", [
    ("80", [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"}]),
    ("8080-8081:80-81/udp", [{"Protocol": "udp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                             {"Protocol": "udp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "ingress"}]),
])
def test_short_port_syntax(text, expected):
    assert ports(text) == expected


def test_mounts():
    assert mount("type=volume,source=data,target=/data,volume-driver=local,volume-label=a=b") == {
        "Type": "volume", "Source": "data", "Target": "/data",
        "VolumeOptions": {"Labels": {"a": "b"}, "DriverConfig": {"Name": "local"}}}
    assert mount("type=tmpfs,dst=/t,tmpfs-size=1m") == {"Type": "tmpfs", "Target": "/t",
                                                         "TmpfsOptions": {"SizeBytes": 1 << 20}}
    with pytest.raises(ValueError, match="cannot mix 'bind-\\*' options with mount type 'volume'"):
        mount("target=/x,bind-propagation=rshared")


def test_capabilities_are_normalized_add_winning():
    assert effective_caps(["ALL", "net_admin"], ["chown"]) == (["ALL"], ["CAP_CHOWN"])
    cspec = create("--cap-add", "net_admin", "--cap-drop", "CAP_NET_ADMIN", "busybox")["TaskTemplate"]["ContainerSpec"]
    assert cspec["CapabilityAdd"] == ["CAP_NET_ADMIN"] and "CapabilityDrop" not in cspec


# -- service update ------------------------------------------------------------------------


def _inspected() -> dict:
    """A spec as the daemon returns it (defaults filled in)."""
    return {
        "Name": "svc", "Labels": {"keep": "1", "drop": "2"},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox:latest", "Args": ["sleep", "1d"], "Env": ["A=1", "B=2"],
                              "Init": False, "StopGracePeriod": 10 * S, "DNSConfig": {}, "Isolation": "default"},
            "Resources": {"Limits": {}, "Reservations": {}},
            "RestartPolicy": {"Condition": "any", "Delay": 5 * S, "MaxAttempts": 0},
            "Placement": {"Constraints": ["node.role==manager"]}, "ForceUpdate": 0, "Runtime": "container"},
        "Mode": {"Replicated": {"Replicas": 2}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * S, "MaxFailureRatio": 0,
                         "Order": "stop-first"},
        "EndpointSpec": {"Mode": "vip"},
    }


def test_update_without_flags_changes_nothing():
    assert update(_inspected()) == _inspected()


def test_update_leaves_the_given_spec_alone():
    spec = _inspected()
    update(spec, "--env-add", "C=3", "--label-rm", "drop")
    assert spec == _inspected()


def test_env_add_replaces_in_place_and_appends_env_rm_removes_by_key():
    cspec = update(_inspected(), "--env-add", "B=20", "--env-add", "C=3", "--env-rm", "A")["TaskTemplate"]
    assert cspec["ContainerSpec"]["Env"] == ["B=20", "C=3"]


def test_labels_constraints_and_replicas():
    spec = update(_inspected(), "--label-add", "new=x", "--label-rm", "drop", "--constraint-add", "node.labels.a==b",
                  "--constraint-rm", "node.role==manager", "--replicas", "5")
    assert spec["Labels"] == {"keep": "1", "new": "x"}
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.a==b"]
    assert spec["Mode"] == {"Replicated": {"Replicas": 5}}


def test_replicas_of_a_global_service_is_refused():
    spec = _inspected()
    spec["Mode"] = {"Global": {}}
    with pytest.raises(SpecError, match="^replicas can only be used with replicated mode$"):
        update(spec, "--replicas", "2")


def test_image_args_force_and_update_config():
    spec = update(_inspected(), "--image", "busybox:1.36", "--args", "sleep 2d", "--force", "--update-delay", "2s",
                  "--update-parallelism", "3")
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == "busybox:1.36"
    assert spec["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "2d"]
    assert spec["TaskTemplate"]["ForceUpdate"] == 1
    assert spec["UpdateConfig"] == {"Parallelism": 3, "Delay": 2 * S, "FailureAction": "pause", "Monitor": 5 * S,
                                    "MaxFailureRatio": 0, "Order": "stop-first"}


def test_rollback_config_appears_with_defaults_when_first_set():
    assert update(_inspected(), "--rollback-order", "start-first")["RollbackConfig"] == {
        "Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * S, "MaxFailureRatio": 0, "Order": "start-first"}


def test_restart_and_stop_grace_period():
    spec = update(_inspected(), "--restart-condition", "none", "--stop-grace-period", "1s")
    assert spec["TaskTemplate"]["RestartPolicy"] == {"Condition": "none", "Delay": 5 * S, "MaxAttempts": 0}
    assert spec["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] == S


def test_publish_add_and_rm():
    spec = update(_inspected(), "--publish-add", "8080:80", "--publish-add", "9090:90")
    assert [p["TargetPort"] for p in spec["EndpointSpec"]["Ports"]] == [80, 90]
    spec = update(spec, "--publish-rm", "80")
    assert spec["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "ingress"}]


def test_mount_add_replaces_by_target_and_rm_removes():
    spec = update(_inspected(), "--mount-add", "type=volume,src=a,dst=/a", "--mount-add", "type=tmpfs,dst=/t")
    assert [m["Target"] for m in spec["TaskTemplate"]["ContainerSpec"]["Mounts"]] == ["/t", "/a"]
    spec = update(spec, "--mount-rm", "/t")
    assert [m["Target"] for m in spec["TaskTemplate"]["ContainerSpec"]["Mounts"]] == ["/a"]


def test_dns_and_hosts():
    spec = update(_inspected(), "--dns-add", "10.0.0.3", "--dns-add", "10.0.0.2", "--host-add", "db:10.0.0.9")
    cspec = spec["TaskTemplate"]["ContainerSpec"]
    assert cspec["DNSConfig"] == {"Nameservers": ["10.0.0.2", "10.0.0.3"]}
    assert cspec["Hosts"] == ["10.0.0.9 db"]
    assert "Hosts" not in update(spec, "--host-rm", "db")["TaskTemplate"]["ContainerSpec"]


def test_healthcheck_update():
    cspec = update(_inspected(), "--health-cmd", "true", "--health-retries", "4")["TaskTemplate"]["ContainerSpec"]
    assert cspec["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Retries": 4}


def test_capabilities_update_is_a_tristate():
    spec = update(_inspected(), "--cap-drop", "chown")
    assert spec["TaskTemplate"]["ContainerSpec"]["CapabilityDrop"] == ["CAP_CHOWN"]
    spec = update(spec, "--cap-add", "chown")
    assert "CapabilityDrop" not in spec["TaskTemplate"]["ContainerSpec"]
    assert "CapabilityAdd" not in spec["TaskTemplate"]["ContainerSpec"]


def test_rollback_takes_no_other_flags():
    check_rollback_alone(parse(SERVICE_UPDATE, ["--rollback", "-d", "svc"]))
    with pytest.raises(SpecError, match="^other flags may not be combined with --rollback$"):
        check_rollback_alone(parse(SERVICE_UPDATE, ["--rollback", "--image", "x", "svc"]))


def test_network_add_and_rm():
    spec = update(_inspected(), "--network-add", "b", "--network-add", "a")
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "a"}, {"Target": "b"}]
    assert update(spec, "--network-rm", "a")["TaskTemplate"]["Networks"] == [{"Target": "b"}]
    with pytest.raises(SpecError, match="already attached to network b"):
        update(spec, "--network-add", "b")
