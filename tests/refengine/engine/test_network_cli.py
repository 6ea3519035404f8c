"""refengine's network commands and run flags, end to end on a throwaway root:
the happy paths docker users script against, and hostile input refused in one
line with docker's exit status, leaving what exists untouched."""

from __future__ import annotations

import json
import socket
import time

import pytest

from .conftest import BASE, needs_kernel

pytestmark = needs_kernel

IDLE = ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]


def _ok(result):
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_mtu_option_sets_the_containers_interface_and_a_bad_one_fails_the_start(refengine):
    # docker's bridge driver option; refengine's swarm gives its overlays' bridges 1450
    _ok(refengine("network", "create", "--subnet", "10.214.92.0/24", "-o", "com.docker.network.driver.mtu=1400", "m1"))
    assert " mtu 1400 " in _ok(refengine("run", "--rm", "--network", "m1", BASE, "ip", "link", "show", "eth0"))
    _ok(refengine("network", "create", "--subnet", "10.214.93.0/24", "-o", "com.docker.network.driver.mtu=20", "m2"))
    refused = refengine("run", "--rm", "--network", "m2", BASE, "true")  # created as docker does; the kernel refuses
    assert refused.returncode == 125 and "failed to set up the network of the container" in refused.stderr
    _ok(refengine("network", "rm", "m1", "m2"))


def test_create_inspect_connect_disconnect_rm(refengine):
    nid = _ok(refengine("network", "create", "--subnet", "10.214.90.0/24", "--label", "k=v", "front")).strip()
    assert len(nid) == 64
    _ok(refengine("network", "create", "--subnet", "10.214.91.0/24", "back"))
    assert {"bridge", "host", "none", "front", "back"} <= set(_ok(refengine("network", "ls", "--format", "{{.Name}}")).split())
    assert _ok(refengine("network", "ls", "-q", "--filter", "label=k=v")).split() == [nid[:12]]
    _ok(refengine("run", "-d", "--name", "web", "--network", "front", "--ip", "10.214.90.50", BASE, *IDLE))
    doc = json.loads(_ok(refengine("network", "inspect", "front")))[0]
    assert [(c["Name"], c["IPv4Address"]) for c in doc["Containers"].values()] == [("web", "10.214.90.50/24")]
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.214.90.0/24", "Gateway": "10.214.90.1"}]

    _ok(refengine("network", "connect", "--alias", "api", "back", "web"))
    links = _ok(refengine("exec", "web", "ip", "-o", "-4", "addr"))
    assert "eth1" in links and "10.214.91." in links, links
    assert "10.214.91." in _ok(refengine("exec", "web", "cat", "/etc/hosts"))
    again = refengine("network", "connect", "back", "web")
    assert again.returncode == 1 and "already exists in network back" in again.stderr
    _ok(refengine("network", "disconnect", "back", "web"))
    assert "eth1" not in _ok(refengine("exec", "web", "ip", "-o", "-4", "addr"))
    assert "10.214.91." not in _ok(refengine("exec", "web", "cat", "/etc/hosts"))

    busy = refengine("network", "rm", "front")
    assert busy.returncode == 1 and "has active endpoints" in busy.stderr
    _ok(refengine("rm", "-f", "web"))
    assert _ok(refengine("network", "rm", "front", "back")).split() == ["front", "back"]
    gone = refengine("network", "inspect", "front")
    assert gone.returncode == 1 and "No such network: front" in gone.stderr


@pytest.mark.parametrize("args, message", [
    (["bad name"], "invalid name"),
    (["-x"], "unknown"),
    (["--subnet", "10.214.92.7/24", "n1"], "host bits"),
    (["--subnet", "10.214.92.0/24", "--gateway", "10.214.93.1", "n1"], "no matching subnet for gateway"),
    (["--gateway", "10.214.93.1", "n1"], "corresponding subnet"),
    (["-o", "novalue", "n1"], "key/value"),
    # overlay networks belong to the swarm: outside one, docker 20.10 says this
    (["-d", "overlay", "n1"], "This node is not a swarm manager"),
    (["-d", "nosuchdriver", "n1"], 'plugin "nosuchdriver" not found'),
    (["--subnet", "0.0.0.0/0", "n1"], "overlap"),
    (["host"], "already exists"),
    (["--subnet", "224.0.0.0/24", "n1"], "special-purpose range 224.0.0.0/4"),
    (["--subnet", "255.255.255.0/24", "n1"], "special-purpose range 240.0.0.0/4"),
    # a second "default bridge" would be taken for the real one (and never pruned)
    (["-o", "com.docker.network.bridge.default_bridge=true", "n1"], "reserved for the default bridge"),
    # dockerd 20.10's words, checked against it
    (["-o", "com.docker.network.driver.mtu=abc", "n1"],
     'failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing "abc": invalid syntax)'),
])
def test_bad_network_create_is_one_line_and_creates_nothing(refengine, args, message):
    before = _ok(refengine("network", "ls", "-q"))
    result = refengine("network", "create", *args)
    assert result.returncode in (1, 125) and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert _ok(refengine("network", "ls", "-q")) == before


def test_a_label_without_a_name_is_a_flag_error_125_as_dockers(refengine):
    result = refengine("network", "create", "--label", "=x", "n1")
    assert result.returncode == 125, f"exited {result.returncode}; docker's CLI refuses the flag with 125"
    assert result.stderr.strip().endswith('invalid argument "=x" for "--label" flag: invalid label \'=x\': empty name'), \
        result.stderr
    assert "n1" not in _ok(refengine("network", "ls", "--format", "{{.Name}}")).split()


@pytest.mark.parametrize("args, message", [
    (["--network", "nowhere"], "network nowhere not found"),
    (["--network-alias", "a"], "user defined networks"),
    (["-p", "99999:80"], "invalid hostPort"),
    (["-p", "80/icmp"], "invalid proto"),
    (["--link", "nobody:alias"], "could not get container for nobody"),
    (["--link", "x:a\nb"], "invalid link"),
    (["--dns", "not-an-ip"], "not-an-ip is not an ip address"),
    (["-p", "18080-"], "invalid containerPort"),
    (["-p", "\u0668\u0660"], "invalid containerPort"),
])
def test_bad_run_network_flags_exit_125(refengine, args, message):
    result = refengine("run", "-d", *args, BASE, "true")
    assert result.returncode == 125 and message in result.stderr, result.stderr
    assert _ok(refengine("ps", "-a", "-q")) == ""


@pytest.mark.parametrize("args, message", [
    (["--ip", "junk", "n1"], "invalid IPv4 address: junk"),
    (["--ip", "10.214.94.9", "bridge"], "user defined networks only"),
    (["--alias", "a", "bridge"], "only for containers in user defined networks"),
])
def test_bad_connect_of_a_stopped_container_is_refused_and_stores_nothing(refengine, args, message):
    # Stored, the value would fail every later start of the container; docker checks it at connect.
    _ok(refengine("network", "create", "n1"))  # subnets from the pools: the cases run in parallel
    _ok(refengine("network", "create", "n2"))
    _ok(refengine("create", "--name", "c1", "--network", "n2", BASE, "true"))
    result = refengine("network", "connect", *args, "c1")
    assert result.returncode == 1 and message in result.stderr, f"exited {result.returncode}: {result.stderr}"
    assert result.stderr.count("\n") == 1, result.stderr
    assert list(json.loads(_ok(refengine("inspect", "c1")))[0]["NetworkSettings"]["Networks"]) == ["n2"]
    assert refengine("start", "-a", "c1").returncode == 0


def test_a_taken_host_port_fails_the_start_with_125_and_the_port_named(refengine):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = refengine("run", "-d", "-p", f"{port}:80", BASE, "sleep", "60")
    assert result.returncode == 125, result.stderr
    assert f"0.0.0.0:{port}" in result.stderr and "address already in use" in result.stderr, result.stderr


def test_published_port_answers_on_loopback_and_ps_shows_it(refengine):
    _ok(refengine("run", "-d", "--name", "srv", "-p", "127.0.0.1::8080", BASE, "sh", "-c",
                  "mkdir -p /w && echo hello > /w/index.html && exec httpd -f -p 8080 -h /w"))
    line = _ok(refengine("port", "srv", "8080")).strip()
    host, port = line.rsplit(":", 1)
    assert host == "127.0.0.1"
    assert _ok(refengine("ps", "--format", "{{.Ports}}")).strip() == f"127.0.0.1:{port}->8080/tcp"
    for _ in range(50):
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=2) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                reply = conn.recv(4096)
            if b"hello" in reply or b"200" in reply:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        pytest.fail(f"127.0.0.1:{port} never answered")


def test_a_link_to_a_stopped_container_fails_the_start(refengine):
    _ok(refengine("create", "--name", "db", BASE, "true"))
    result = refengine("run", "--rm", "--link", "db:store", BASE, "true")
    assert result.returncode == 125 and "Cannot link to a non running container: /db" in result.stderr, result.stderr
