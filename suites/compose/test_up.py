"""`up -d`: what a project's objects are named and labelled, and what a
service's attributes (environment, env_file, command, entrypoint, ports,
restart, depends_on, profiles, networks and aliases) make of its container.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from conformance.compose import PROJECT_LABEL
from conformance.profile import COMPOSE_NAME_SCHEMES

from .conftest import ENVVARS, INTERPOLATION, MODEL, NETWORKING, PROFILES, SPEC, STARTUP_ORDER, WAIT, env_of, idle_service, instant, subject

pytestmark = pytest.mark.requires("compose")

#: A command that idles after writing /shared/ready two seconds in.
READY_LATER = """["sh", "-c", "sleep 2; touch /shared/ready; trap 'exit 0' TERM; sleep 600 & wait"]"""


def addresses(engine, container: str, name: str) -> list[str]:
    """The addresses busybox nslookup in ``container`` gives for ``name`` (an
    empty list when it finds none)."""
    result = engine.cli("exec", container, "nslookup", name, timeout=20)
    answer = result.stdout.split("Name:", 1)[1] if "Name:" in result.stdout else ""
    return sorted(set(re.findall(r"^Address(?: \d+)?:\s*([0-9.]+)\s*$", answer, re.M)))


def address_on(engine, container: str, network: str) -> str:
    networks = engine.inspect(container, kind="container")["NetworkSettings"]["Networks"]
    assert network in networks, f"{engine.name}: {container} is not on {network}: {sorted(networks)}"
    return networks[network]["IPAddress"]


@pytest.mark.spec(MODEL, "resources a project creates are named with the project name as prefix (the default network "
                         "PROJECT_default, a volume PROJECT_VOLUME) and carry the label com.docker.compose.project")
def test_up_creates_prefixed_network_and_volume(compose, engine, image):
    compose.write(f"services:\n  web:\n{idle_service(image, '    volumes: [data:/data]')}\nvolumes:\n  data: {{}}\n")
    compose.up()
    network, volume = f"{compose.name}_default", f"{compose.name}_data"
    assert compose.objects("network") and compose.exists("network", network), \
        f"{subject(compose)}: no network {network}; the project's networks: {compose.objects('network')}"
    assert compose.exists("volume", volume), f"{subject(compose)}: no volume {volume}; the project's volumes: {compose.objects('volume')}"
    for kind, name in (("network", network), ("volume", volume)):
        labels = json.loads(engine.cli(kind, "inspect", "--format", "{{json .Labels}}", name, check=True).stdout) or {}
        assert labels.get(PROJECT_LABEL) == compose.name, f"{subject(compose)}: {kind} {name} has labels {labels}"


@pytest.mark.spec(ENVVARS, "the project name is prepended along with the service name to the container's name "
                           "(compose v2: myapp-web-1; docker-compose v1: myapp_web_1; the profile records which)")
def test_container_names_follow_the_declared_scheme(compose, image):
    compose.write(f"services:\n  web:\n{idle_service(image)}  db:\n{idle_service(image)}")
    compose.up()
    expected = sorted(compose.container_name(s) for s in ("db", "web"))
    assert compose.containers() == expected, (
        f"{subject(compose)}: containers {compose.containers()}; the profile declares container_names = "
        f"{compose.profile.container_names!r} ({COMPOSE_NAME_SCHEMES[compose.profile.container_names]}): {expected}")


@pytest.mark.spec(f"{SPEC}#labels", "com.docker.compose.project is set on all resources created by Compose to the project name; "
                                    "a container carries com.docker.compose.service naming its service")
def test_containers_carry_project_and_service_labels(compose, engine, image):
    compose.write(f"services:\n  web:\n{idle_service(image)}")
    compose.up()
    labels = engine.inspect(compose.container_name("web"), kind="container")["Config"]["Labels"] or {}
    assert labels.get(PROJECT_LABEL) == compose.name and labels.get("com.docker.compose.service") == "web", \
        f"{subject(compose)}: the web container's labels {labels}"


@pytest.mark.spec(f"{SPEC}#environment", "environment sets variables in the container, as a mapping or as a list of NAME=VALUE")
def test_environment_is_set_in_the_container(compose, engine, image):
    compose.write(f"""\
services:
  mapped:
{idle_service(image, '    environment: {COLOUR: blue, SPACED: "two words"}')}
  listed:
{idle_service(image, '    environment: ["COLOUR=red", "EMPTY="]')}
""")
    compose.up()
    mapped, listed = env_of(engine, compose.container_name("mapped")), env_of(engine, compose.container_name("listed"))
    assert (mapped.get("COLOUR"), mapped.get("SPACED")) == ("blue", "two words"), f"{subject(compose)}: mapped service's env {mapped}"
    assert (listed.get("COLOUR"), listed.get("EMPTY")) == ("red", ""), f"{subject(compose)}: listed service's env {listed}"


@pytest.mark.spec(f"{SPEC}#env_file", "env_file adds the variables of a file to the container's environment; "
                                      "environment takes precedence over env_file")
def test_env_file_adds_variables(compose, engine, image):
    compose.write("# comment\nFROM_FILE=file\nBOTH=file\n", "vars.env")
    compose.write(f"services:\n  web:\n{idle_service(image, '    env_file: vars.env' + chr(10) + '    environment: {BOTH: environment}')}")
    compose.up()
    env = env_of(engine, compose.container_name("web"))
    assert (env.get("FROM_FILE"), env.get("BOTH")) == ("file", "environment"), f"{subject(compose)}: env {env}"


@pytest.mark.spec(INTERPOLATION, "variables set in the shell or in the project directory's .env file are interpolated into "
                                 "the model up applies; ${VAR:-default} gives the default for an unset VAR")
def test_interpolated_values_reach_the_container(compose, engine, image):
    compose.write("CFT_FROM_DOTENV=dotenv\n", ".env")
    compose.write(f"""\
services:
  web:
{idle_service(image, '    environment: {SHELL_VALUE: "${CFT_FROM_SHELL}", DOTENV_VALUE: "${CFT_FROM_DOTENV}", DEFAULTED: "${CFT_UNSET:-fallback}"}')}
""")
    compose.up(env={"CFT_FROM_SHELL": "shell"})
    env = env_of(engine, compose.container_name("web"))
    seen = {k: env.get(k) for k in ("SHELL_VALUE", "DOTENV_VALUE", "DEFAULTED")}
    assert seen == {"SHELL_VALUE": "shell", "DOTENV_VALUE": "dotenv", "DEFAULTED": "fallback"}, f"{subject(compose)}: env {seen}"


@pytest.mark.spec(f"{SPEC}#interpolation", "$$ is a literal dollar sign and is not interpolated")
def test_double_dollar_is_a_literal_dollar(compose, engine, image):
    compose.write(f"""\
services:
  web:
{idle_service(image, '    environment: {PRICE: "cost $$5", REF: "$${HOME}"}')}
""")
    compose.up(env={"HOME": "/from-the-shell"})
    env = env_of(engine, compose.container_name("web"))
    assert (env.get("PRICE"), env.get("REF")) == ("cost $5", "${HOME}"), f"{subject(compose)}: env {env}"


@pytest.mark.spec(f"{SPEC}#entrypoint", "entrypoint overrides the image's ENTRYPOINT and command its CMD; the container "
                                        "runs the entrypoint with the command as arguments")
def test_command_and_entrypoint_override_the_image(compose, engine, image):
    compose.write(f"""\
services:
  web:
    image: {image}
    entrypoint: ["/bin/echo", "from-entrypoint"]
    command: ["from-command"]
""")
    compose.up()
    name = compose.container_name("web")
    engine.wait_for(lambda: not engine.state(name)["Running"], timeout=WAIT, what=f"{name} to exit")
    logs = engine.cli("logs", name, check=True)
    assert logs.stdout.strip() == "from-entrypoint from-command", f"{subject(compose)}: the container printed {logs.stdout!r}"


@pytest.mark.spec(f"{SPEC}#ports", "ports publishes a container port: HOST_IP::CONTAINER_PORT on an ephemeral host port of that address")
def test_ports_are_published(compose, engine, image):
    compose.write(f"""\
services:
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo port-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    stop_grace_period: 1s
    ports: ["127.0.0.1::8080"]
""")
    compose.up()
    name = compose.container_name("web")
    bindings = (engine.inspect(name, kind="container")["NetworkSettings"]["Ports"] or {}).get("8080/tcp") or []
    assert len(bindings) == 1 and bindings[0]["HostIp"] == "127.0.0.1" and bindings[0]["HostPort"], \
        f"{subject(compose)}: 8080/tcp is bound to {bindings}"
    url = f"http://127.0.0.1:{bindings[0]['HostPort']}/"

    def fetch():
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    body = engine.wait_for(fetch, timeout=WAIT, interval=0.5, what=f"{url} to answer")
    assert body == "port-ok\n", f"{subject(compose)}: {url} answered {body!r}"


@pytest.mark.spec(f"{SPEC}#restart", "restart: always restarts the container whenever it exits")
@pytest.mark.requires("restart-policies")
def test_restart_always_restarts_an_exited_container(compose, engine, image):
    compose.write(f"""\
services:
  web:
    image: {image}
    command: ["sh", "-c", "sleep 1; exit 3"]
    restart: always
""")
    compose.up()
    name = compose.container_name("web")
    policy = engine.inspect(name, kind="container")["HostConfig"]["RestartPolicy"]["Name"]
    assert policy == "always", f"{subject(compose)}: HostConfig.RestartPolicy.Name is {policy!r}"
    count = engine.wait_for(lambda: engine.inspect(name, kind="container").get("RestartCount"), timeout=WAIT,
                            interval=0.5, what=f"{name} to be restarted")
    assert count >= 1


@pytest.mark.spec(f"{SPEC}#depends_on", "depends_on: Compose creates services in dependency order; "
                                        "a dependency is started before the service that depends on it")
def test_depends_on_starts_dependencies_first(compose, engine, image):
    compose.write(f"""\
services:
  web:
{idle_service(image, '    depends_on: [api]')}
  api:
{idle_service(image, '    depends_on: [db]')}
  db:
{idle_service(image)}
""")
    compose.up("web")
    started = {s: engine.state(compose.container_name(s))["StartedAt"] for s in ("db", "api", "web")}
    order = sorted(started, key=lambda s: instant(started[s]))
    assert order == ["db", "api", "web"], f"{subject(compose)}: started in the order {order}: {started}"


@pytest.mark.spec(STARTUP_ORDER, "depends_on with condition: service_healthy starts the dependent service only after the "
                                 "dependency's healthcheck reports it healthy")
@pytest.mark.requires("healthcheck")
def test_service_healthy_waits_for_the_healthcheck(compose, engine, image):
    compose.write(f"""\
services:
  db:
    image: {image}
    command: {READY_LATER}
    stop_grace_period: 1s
    volumes: [shared:/shared]
    healthcheck:
      test: ["CMD", "test", "-f", "/shared/ready"]
      interval: 1s
      timeout: 2s
      retries: 30
  web:
    image: {image}
    command: ["sh", "-c", "if test -f /shared/ready; then echo saw-ready; else echo not-ready; fi"]
    volumes: [shared:/shared]
    depends_on:
      db:
        condition: service_healthy
volumes:
  shared: {{}}
""")
    compose.up(timeout=120)
    db, web = compose.container_name("db"), compose.container_name("web")
    health = (engine.state(db).get("Health") or {}).get("Status")
    assert health == "healthy", f"{subject(compose)}: after up returned, db's health is {health!r}"
    test = engine.inspect(db)["Config"]["Healthcheck"]["Test"]
    assert test == ["CMD", "test", "-f", "/shared/ready"], \
        f"{subject(compose)}: db's healthcheck test is {test!r}; the file gave the exec form CMD test -f /shared/ready"
    engine.wait_for(lambda: not engine.state(web)["Running"], timeout=WAIT, what=f"{web} to exit")
    said = engine.cli("logs", web, check=True).stdout.strip()
    assert said == "saw-ready", f"{subject(compose)}: web started before db was healthy: it printed {said!r}"


@pytest.mark.spec(NETWORKING, "each container joins the project's default network and is discoverable there by its service name")
@pytest.mark.requires("embedded-dns")
def test_service_names_resolve_on_the_project_network(compose, engine, image):
    compose.write(f"services:\n  web:\n{idle_service(image)}  db:\n{idle_service(image)}")
    compose.up()
    web, db = compose.container_name("web"), compose.container_name("db")
    expected = address_on(engine, db, f"{compose.name}_default")
    found = engine.wait_for(lambda: addresses(engine, web, "db"), timeout=10, interval=0.5, what="db to resolve in web")
    assert found == [expected], f"{subject(compose)}: from web, db resolves to {found}; db's address is {expected}"


@pytest.mark.spec(f"{SPEC}#aliases", "aliases declares alternative hostnames for the service on the network; "
                                     "other containers on the network reach the service by them")
@pytest.mark.requires("embedded-dns")
def test_network_aliases_resolve(compose, engine, image):
    compose.write(f"""\
services:
  web:
{idle_service(image)}
  db:
{idle_service(image, '    networks:' + chr(10) + '      default:' + chr(10) + '        aliases: [database, store]')}
""")
    result = compose.run("up", "-d")
    assert result.ok, f"{subject(compose)}: up of a service with network aliases failed:\n{result}"
    web, db = compose.container_name("web"), compose.container_name("db")
    expected = address_on(engine, db, f"{compose.name}_default")
    for alias in ("database", "store"):
        found = engine.wait_for(lambda: addresses(engine, web, alias), timeout=10, interval=0.5, what=f"{alias} to resolve in web")
        assert found == [expected], f"{subject(compose)}: from web, alias {alias} resolves to {found}; db's address is {expected}"


@pytest.mark.spec(PROFILES, "services with profiles start only when one of their profiles is enabled (--profile); "
                            "services without profiles always start")
def test_profiles_select_services(compose, image):
    compose.write(f"""\
services:
  web:
{idle_service(image)}
  debug:
{idle_service(image, '    profiles: [debug]')}
""")
    compose.up()
    assert compose.containers() == [compose.container_name("web")], \
        f"{subject(compose)}: without --profile, up made {compose.containers()}"
    compose.run("--profile", "debug", "up", "-d", check=True)
    expected = sorted([compose.container_name("web"), compose.container_name("debug")])
    assert compose.containers() == expected, f"{subject(compose)}: with --profile debug, up made {compose.containers()}"
