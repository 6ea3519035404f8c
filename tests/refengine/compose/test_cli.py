"""``refengine compose`` end to end on a throwaway root: up, up again, recreate,
ps, logs, exec, run, scale, down (needs root and the kernel's namespaces)."""

from __future__ import annotations

import json
import time

from .conftest import BASE, needs_kernel

IDLE = """["sh", "-c", "echo started-$$ROLE; trap 'exit 0' TERM; sleep 600 & wait"]"""


def project(role: str = "one") -> str:
    return f"""\
services:
  web:
    image: {BASE}
    command: {IDLE}
    environment: {{ROLE: {role}}}
    stop_grace_period: 1s
    depends_on: [db]
    networks: [default, back]
  db:
    image: {BASE}
    command: {IDLE}
    environment: {{ROLE: db}}
    stop_grace_period: 1s
    volumes: [data:/data]
    networks: {{back: {{aliases: [database]}}}}
networks: {{back: {{}}}}
volumes: {{data: {{}}}}
"""


def inspect(compose, name: str) -> dict:
    return json.loads(compose.engine("inspect", name))[0]


@needs_kernel
def test_up_is_idempotent_and_recreates_on_change(compose):
    compose.write(project())
    compose("up", "-d")
    first = {n: inspect(compose, f"demo-{n}-1")["Id"] for n in ("web", "db")}
    labels = inspect(compose, "demo-web-1")["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == "demo" and labels["com.docker.compose.oneoff"] == "False"
    assert sorted(inspect(compose, "demo-web-1")["NetworkSettings"]["Networks"]) == ["demo_back", "demo_default"]
    again = compose("up", "-d")
    assert " Container demo-web-1  Running" in again.stderr
    assert {n: inspect(compose, f"demo-{n}-1")["Id"] for n in ("web", "db")} == first
    compose.write(project("two"))
    compose("up", "-d")
    assert inspect(compose, "demo-web-1")["Id"] != first["web"] and inspect(compose, "demo-db-1")["Id"] == first["db"]


@needs_kernel
def test_ps_logs_exec_run_scale_and_down(compose):
    compose.write(project())
    compose("up", "-d", "--scale", "web=2")
    assert compose("ps", "--services").stdout.split() == ["db", "web"]
    assert len(compose("ps", "-q").stdout.split()) == 3
    logs = compose("logs", "web").stdout.splitlines()
    assert sorted(logs) == ["web-1  | started-one", "web-2  | started-one"]
    assert compose("exec", "-T", "web", "sh", "-c", "exit 7", check=False).returncode == 7
    address = inspect(compose, "demo-db-1")["NetworkSettings"]["Networks"]["demo_back"]["IPAddress"]
    deadline = time.monotonic() + 10  # as suites/compose waits for a service name: bounded
    while address not in (resolved := compose("exec", "-T", "web", "nslookup", "database", check=False).stdout):
        assert time.monotonic() < deadline, f"the alias 'database' of db ({address}) did not resolve: {resolved}"
        time.sleep(0.5)
    run = compose("run", "--rm", "-T", "--no-deps", "web", "sh", "-c", "echo once; exit 5", check=False)
    assert run.returncode == 5 and "once" in run.stdout.splitlines()
    compose("up", "-d", "--scale", "web=1")
    assert sorted(compose.engine("ps", "-a", "--format", "{{.Names}}").split()) == ["demo-db-1", "demo-web-1"]
    compose("down", "-t", "1")
    assert compose.engine("ps", "-a", "-q") == ""
    assert "demo_" not in compose.engine("network", "ls", "--format", "{{.Name}}")
    assert compose.engine("volume", "ls", "-q").split() == ["demo_data"]
    (compose.directory / "compose.yaml").unlink()
    compose("down", "-v")  # no file needed with -p: the labels name the project's objects
    assert compose.engine("volume", "ls", "-q") == ""


@needs_kernel
def test_errors_are_one_line(compose):
    compose.write("services: {web: {image: x, ports: '80'}}")
    result = compose("up", "-d", check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "services.web.ports must be a list" in result.stderr
