"""The commands that act on a running project: `ps`, `logs`, `exec`,
`run --rm`, `stop`, `start`, `restart` and `up --scale`."""

from __future__ import annotations

import re

import pytest

from .conftest import CLI, WAIT, idle_service, instant, plain, subject

pytestmark = pytest.mark.requires("compose")


def two_services(compose, image) -> None:
    compose.write(f"services:\n  web:\n{idle_service(image)}  db:\n{idle_service(image)}")


def ids(engine, names: list[str]) -> dict[str, str]:
    return {n: engine.inspect(n, kind="container")["Id"] for n in names}


@pytest.mark.spec(f"{CLI}/ps/", "ps lists the containers of the project; -q shows only their IDs")
def test_ps_lists_the_projects_containers(compose, engine, image):
    two_services(compose, image)
    compose.up()
    compose.run("up", "-d", project=f"{compose.name}x", check=True)  # a second project from the same file
    mine = ids(engine, [compose.container_name("web"), compose.container_name("db")])
    result = compose.run("ps", "-q")
    assert result.ok, f"{subject(compose)}: ps -q failed:\n{result}"
    listed = result.stdout.split()
    matched = sorted(n for n, full in mine.items() if any(full.startswith(i) for i in listed))
    assert len(listed) == 2 and matched == sorted(mine), \
        f"{subject(compose)}: ps -q listed {listed}; the project's containers are {mine} (another project runs the same file)"


@pytest.mark.spec(f"{CLI}/logs/", "logs shows the output of the project's services, each line prefixed with the "
                                  "name of the service (and container number) it came from")
def test_logs_are_prefixed_by_service(compose, engine, image):
    compose.write(f"""\
services:
  alpha:
    image: {image}
    command: ["echo", "line-from-alpha"]
  beta:
    image: {image}
    command: ["echo", "line-from-beta"]
""")
    compose.up()
    for service in ("alpha", "beta"):
        name = compose.container_name(service)
        engine.wait_for(lambda: not engine.state(name)["Running"], timeout=WAIT, what=f"{name} to exit")
    result = compose.run("logs")
    assert result.ok, f"{subject(compose)}: logs failed:\n{result}"
    lines = plain(result.stdout).splitlines()
    for service in ("alpha", "beta"):
        pattern = re.compile(rf"^{service}([-_]\d+)?\s*\|\s?line-from-{service}$")
        assert any(pattern.match(line) for line in lines), \
            f"{subject(compose)}: no line '{service}... | line-from-{service}' in logs: {lines}"


@pytest.mark.spec(f"{CLI}/exec/", "exec runs a command in a running service container (the equivalent of docker exec); "
                                  "-T disables the pseudo-TTY; the command's exit status is exec's")
def test_exec_runs_in_the_service_container(compose, engine, image):
    two_services(compose, image)
    compose.up()
    result = compose.run("exec", "-T", "web", "sh", "-c", "hostname; exit 3")
    hostname = engine.inspect(compose.container_name("web"), kind="container")["Config"]["Hostname"]
    assert result.returncode == 3, f"{subject(compose)}: exec of `exit 3` exited {result.returncode}:\n{result}"
    assert result.stdout.strip() == hostname, f"{subject(compose)}: exec printed {result.stdout!r}; web's hostname is {hostname!r}"


@pytest.mark.spec(f"{CLI}/run/", "run starts a one-off container for a service with the given command; --rm removes it "
                                 "after it exits; the command's exit status is run's")
def test_run_rm_runs_a_one_off_command(compose, image):
    compose.write(f"services:\n  web:\n{idle_service(image)}")
    result = compose.run("run", "--rm", "-T", "web", "sh", "-c", "echo one-off-output; exit 4")
    assert result.returncode == 4, f"{subject(compose)}: run of `exit 4` exited {result.returncode}:\n{result}"
    assert "one-off-output" in result.stdout.splitlines(), f"{subject(compose)}: run printed {result.stdout!r}"
    assert compose.containers() == [], f"{subject(compose)}: after run --rm, containers remain: {compose.containers()}"


@pytest.mark.spec(f"{CLI}/stop/", "stop stops the running containers without removing them; start starts them again")
def test_stop_then_start_keeps_the_containers(compose, engine, image):
    two_services(compose, image)
    compose.up()
    names = [compose.container_name("web"), compose.container_name("db")]
    before = ids(engine, names)
    result = compose.run("stop", "-t", "1")
    assert result.ok, f"{subject(compose)}: stop failed:\n{result}"
    running = {n: engine.state(n)["Running"] for n in names}
    assert running == {n: False for n in names}, f"{subject(compose)}: after stop, running: {running}"
    result = compose.run("start")
    assert result.ok, f"{subject(compose)}: start failed:\n{result}"
    running = {n: engine.state(n)["Running"] for n in names}
    assert running == {n: True for n in names} and ids(engine, names) == before, \
        f"{subject(compose)}: after start, running: {running}, ids {ids(engine, names)} (before: {before})"


@pytest.mark.spec(f"{CLI}/restart/", "restart restarts the project's containers: the same containers, started anew")
def test_restart_restarts_the_same_containers(compose, engine, image):
    compose.write(f"services:\n  web:\n{idle_service(image)}")
    compose.up()
    name = compose.container_name("web")
    before = engine.inspect(name, kind="container")
    result = compose.run("restart", "-t", "1")
    assert result.ok, f"{subject(compose)}: restart failed:\n{result}"
    after = engine.inspect(name, kind="container")
    assert after["Id"] == before["Id"], f"{subject(compose)}: restart replaced the container"
    assert after["State"]["Running"] and instant(after["State"]["StartedAt"]) > instant(before["State"]["StartedAt"]), \
        f"{subject(compose)}: after restart Running={after['State']['Running']}, StartedAt {after['State']['StartedAt']} " \
        f"(before {before['State']['StartedAt']})"


@pytest.mark.spec(f"{CLI}/up/#options", "up --scale SERVICE=NUM runs NUM containers of the service, numbered from 1; "
                                        "a smaller NUM removes the extra ones")
def test_up_scale_adds_and_removes_containers(compose, engine, image):
    compose.write(f"services:\n  web:\n{idle_service(image)}")
    compose.up("--scale", "web=3")
    three = sorted(compose.container_name("web", n) for n in (1, 2, 3))
    running = compose.containers("status=running")
    assert running == three, f"{subject(compose)}: up --scale web=3 runs {running}"
    compose.up("--scale", "web=1")
    left = compose.containers()
    assert left == [compose.container_name("web", 1)], f"{subject(compose)}: after --scale web=1, containers {left}"
