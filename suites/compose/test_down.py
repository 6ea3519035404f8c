"""`down` and project isolation: what `down` removes and keeps, and how
`-p` and COMPOSE_PROJECT_NAME keep two projects of one file apart."""

from __future__ import annotations

import pytest

from conformance.compose import new_project_name

from .conftest import CLI, PROJECT_NAME, idle_service, subject

pytestmark = pytest.mark.requires("compose")

DOWN = f"{CLI}/down/"


def with_volume(compose, image) -> None:
    compose.write(f"services:\n  web:\n{idle_service(image, '    volumes: [data:/data]')}  db:\n{idle_service(image)}"
                  "volumes:\n  data: {}\n")


@pytest.mark.spec(DOWN, "down stops and removes the containers of the project's services and its default network")
def test_down_removes_containers_and_the_network(compose, image):
    with_volume(compose, image)
    compose.up()
    result = compose.run("down", "-t", "1")
    assert result.ok, f"{subject(compose)}: down failed:\n{result}"
    assert compose.containers() == [], f"{subject(compose)}: after down, containers remain: {compose.containers()}"
    network = f"{compose.name}_default"
    assert not compose.exists("network", network), f"{subject(compose)}: after down, network {network} remains"


@pytest.mark.spec(DOWN, "down keeps named volumes by default; -v (--volumes) removes the named volumes declared in the file")
def test_down_keeps_named_volumes_unless_v(compose, image):
    with_volume(compose, image)
    compose.up()
    volume = f"{compose.name}_data"
    compose.run("down", "-t", "1", check=True)
    assert compose.exists("volume", volume), f"{subject(compose)}: down without -v removed volume {volume}"
    compose.up()
    result = compose.run("down", "-t", "1", "-v")
    assert result.ok, f"{subject(compose)}: down -v failed:\n{result}"
    assert not compose.exists("volume", volume), f"{subject(compose)}: down -v left volume {volume}"


@pytest.mark.spec(PROJECT_NAME, "the -p flag sets the project name, so the same file runs twice as two isolated projects; "
                                "down of one leaves the other's containers, network and volumes")
def test_down_leaves_another_project_alone(compose, engine, image):
    with_volume(compose, image)
    other = new_project_name()
    compose.up()
    compose.run("up", "-d", project=other, check=True)
    mine, theirs = compose.containers(), compose.containers(project=other)
    assert theirs == sorted(compose.container_name(s, project=other) for s in ("db", "web")) and not set(mine) & set(theirs), \
        f"{subject(compose)}: -p {compose.name} made {mine}, -p {other} made {theirs}"
    compose.run("down", "-t", "1", "-v", check=True)
    running = compose.containers("status=running", project=other)
    assert running == theirs, f"{subject(compose)}: after down -v of {compose.name}, {other}'s running containers are {running}"
    assert compose.exists("network", f"{other}_default") and compose.exists("volume", f"{other}_data"), \
        f"{subject(compose)}: down -v of {compose.name} removed {other}'s network or volume: " \
        f"networks {compose.objects('network', other)}, volumes {compose.objects('volume', other)}"


@pytest.mark.spec(PROJECT_NAME, "without -p, COMPOSE_PROJECT_NAME sets the project name; -p takes precedence over it")
def test_compose_project_name_names_the_project(compose, image):
    compose.write(f"services:\n  web:\n{idle_service(image)}")
    from_env, from_flag = new_project_name(), new_project_name()
    compose.run("up", "-d", project=None, env={"COMPOSE_PROJECT_NAME": from_env}, check=True)
    made = compose.containers(project=from_env)
    assert made == [compose.container_name("web", project=from_env)], \
        f"{subject(compose)}: with COMPOSE_PROJECT_NAME={from_env}, project {from_env} has containers {made}"
    compose.run("up", "-d", project=from_flag, env={"COMPOSE_PROJECT_NAME": from_env}, check=True)
    made = compose.containers(project=from_flag)
    assert made == [compose.container_name("web", project=from_flag)], \
        f"{subject(compose)}: with -p {from_flag} and COMPOSE_PROJECT_NAME={from_env}, project {from_flag} has containers {made}"


@pytest.mark.spec(PROJECT_NAME, "by default the project name is the base name of the project directory (the Compose file's folder)")
def test_project_name_defaults_to_the_directory(compose, image, tmp_path):
    directory = tmp_path / new_project_name()
    compose.write(f"services:\n  web:\n{idle_service(image)}", "app/docker-compose.yml")
    app = compose.directory / "app"
    app.rename(directory)
    compose.names_used.add(directory.name)  # torn down too
    compose.run("up", "-d", project=None, cwd=directory, check=True)
    made = compose.containers(project=directory.name)
    assert made == [compose.container_name("web", project=directory.name)], \
        f"{subject(compose)}: up in {directory} made {made} under project {directory.name}; its containers: {compose.containers()}"
