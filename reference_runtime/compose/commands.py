"""The subcommands of ``refengine compose``: each takes the loaded project (or,
for ``down``, ``ps`` and friends, what the engine holds under the project's
label), the refengine :class:`Engine` and the parsed options, and returns the
exit status. Progress goes to stderr in docker compose v2's plain form
(`` Container demo-web-1  Started``); what a command prints as its result
(``ps``, ``config``, ``logs``) goes to stdout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import yaml

from ..engine.commands import ps_row
from ..engine.format import format_rows
from . import logstream
from .backend import Container, Engine
from .errors import ComposeError
from .labels import NETWORK, PROJECT, VOLUME
from .normalise import argv as split_argv
from .project import Project, Service
from .translate import (aliases, build_argv, container_name, create_argv, entrypoint_of, health_test_of, image_of,
                        other_networks, unsupported)

#: How long ``up`` waits for a dependency to become healthy or to complete (seconds).
DEPENDENCY_WAIT = 300.0


def progress(kind: str, name: str, status: str) -> None:
    sys.stderr.write(f" {kind} {name}  {status}\n")
    sys.stderr.flush()


# -- networks and volumes ---------------------------------------------------------


def ensure_networks(project: Project, engine: Engine, keys: set[str] | None = None) -> None:
    for key, net in project.networks.items():
        if keys is not None and key not in keys:
            continue
        name = net["name"]
        if engine.network(name) is not None:
            continue
        if net.get("external"):
            raise ComposeError(f"network {name} declared as external, but could not be found")
        argv = ["network", "create", "--label", f"{NETWORK}={key}", "--label", f"{PROJECT}={project.name}"]
        for k, v in (net.get("labels") or {}).items():
            argv += ["--label", f"{k}={v}"]
        if net.get("internal"):
            argv.append("--internal")
        if net.get("driver"):
            argv += ["--driver", net["driver"]]
        for opt, value in (net.get("driver_opts") or {}).items():
            argv += ["-o", f"{opt}={value}"]
        for pool in ((net.get("ipam") or {}).get("config") or [])[:1]:
            if pool.get("subnet"):
                argv += ["--subnet", pool["subnet"]]
            if pool.get("gateway"):
                argv += ["--gateway", pool["gateway"]]
        progress("Network", name, "Creating")
        try:
            engine.call(*argv, "--", name)  # "--": a name: "-x" is a name, never a flag
        except ComposeError:
            made = engine.network(name)  # a concurrent `up` of the same project made it first
            if made is None or (made.get("Labels") or {}).get(PROJECT) != project.name:
                raise
        progress("Network", name, "Created")


def ensure_volumes(project: Project, engine: Engine) -> None:
    for key, vol in project.volumes.items():
        name = vol["name"]
        if engine.volume(name) is not None:
            continue
        if vol.get("external"):
            raise ComposeError(f'external volume "{name}" not found')
        argv = ["volume", "create", "--label", f"{PROJECT}={project.name}", "--label", f"{VOLUME}={key}"]
        for k, v in (vol.get("labels") or {}).items():
            argv += ["--label", f"{k}={v}"]
        if vol.get("driver"):
            argv += ["--driver", vol["driver"]]
        for opt, value in (vol.get("driver_opts") or {}).items():
            argv += ["--opt", f"{opt}={value}"]
        progress("Volume", name, "Creating")
        engine.call(*argv, "--", name)
        progress("Volume", name, "Created")


# -- containers ---------------------------------------------------------------------


def _network_mode_container(project: Project, engine: Engine):
    def find(service: str) -> str:
        found = engine.containers(project.name, services=[service])
        if not found:
            raise ComposeError(f"service {service} has no container to share its network with")
        return found[0].name
    return find


def create_container(project: Project, engine: Engine, service: Service, number: int, *, quiet: bool = False) -> str:
    """Create (not start) container ``number`` of ``service``, joined to all its networks."""
    name = container_name(project, service, number)
    ignored = unsupported(service)
    if ignored and number == 1:
        sys.stderr.write(f"WARN[0000] services.{service.name}: {', '.join(ignored)} not supported by refengine "
                         "compose, ignored\n")
    if not quiet:
        progress("Container", name, "Creating")
    cid = engine.create(create_argv(project, service, number,
                                    network_mode_container=_network_mode_container(project, engine)),
                        entrypoint_of(service), health_test_of(service))
    connect_other_networks(project, engine, service, cid)
    if not quiet:
        progress("Container", name, "Created")
    return cid


def connect_other_networks(project: Project, engine: Engine, service: Service, cid: str) -> None:
    for net_name, settings in other_networks(project, service):
        argv = ["network", "connect"]
        for alias in aliases(service, settings):
            argv += ["--alias", alias]
        if settings.get("ipv4_address"):
            argv += ["--ip", settings["ipv4_address"]]
        engine.call(*argv, "--", net_name, cid)


def start_container(engine: Engine, container: Container | str, name: str) -> None:
    progress("Container", name, "Starting")
    engine.call("start", container.id if isinstance(container, Container) else container)
    progress("Container", name, "Started")


def stop_container(engine: Engine, container: Container, timeout: int | None) -> None:
    progress("Container", container.name, "Stopping")
    engine.call("stop", *(["-t", str(timeout)] if timeout is not None else []), container.id)
    progress("Container", container.name, "Stopped")


def remove_container(engine: Engine, container: Container) -> None:
    progress("Container", container.name, "Removing")
    engine.call("rm", "-f", container.id)
    progress("Container", container.name, "Removed")


def wait_for_dependencies(project: Project, engine: Engine, service: Service) -> None:
    """``depends_on`` conditions: ``service_healthy`` waits for every container of the
    dependency to be healthy, ``service_completed_successfully`` for it to exit 0."""
    for dep, spec in service.depends_on.items():
        condition = (spec or {}).get("condition", "service_started")
        if condition == "service_started":
            continue
        deadline = time.monotonic() + DEPENDENCY_WAIT
        for container in engine.containers(project.name, services=[dep]):
            if condition == "service_healthy":
                progress("Container", container.name, "Waiting")
                while True:
                    status = engine.health(container)
                    if status == "healthy":
                        break
                    if status == "unhealthy":
                        raise ComposeError(f"dependency failed to start: container {container.name} is unhealthy")
                    if status == "" and not engine.has_healthcheck(container):
                        raise ComposeError(f"dependency failed to start: container {container.name} "
                                           "has no healthcheck configured")
                    current = engine.refresh(container)
                    if not current.running and current.status in ("exited", "dead"):
                        raise ComposeError(f"dependency failed to start: container {container.name} exited "
                                           f"({current.exit_code})")
                    if time.monotonic() > deadline:
                        raise ComposeError(f"dependency failed to start: container {container.name} did not become "
                                           f"healthy within {DEPENDENCY_WAIT:.0f}s")
                    time.sleep(0.2)
                progress("Container", container.name, "Healthy")
            elif condition == "service_completed_successfully":
                progress("Container", container.name, "Waiting")
                while True:
                    current = engine.refresh(container)
                    if not current.running and current.status in ("exited", "dead"):
                        break
                    if time.monotonic() > deadline:
                        raise ComposeError(f"service {dep!r} did not complete within {DEPENDENCY_WAIT:.0f}s")
                    time.sleep(0.2)
                if current.exit_code != 0:
                    raise ComposeError(f"service {dep!r} didn't complete successfully: exit {current.exit_code}")
                progress("Container", container.name, "Exited")


def converge(project: Project, engine: Engine, service: Service, replicas: int, *, start: bool = True,
             force_recreate: bool = False, no_recreate: bool = False, timeout: int | None = None) -> list[str]:
    """Make the service's containers 1..``replicas`` exist with its current config (recreated
    only when the config hash changed) and run; remove those numbered above. Returns their ids."""
    if replicas > 1 and service.config.get("container_name"):
        raise ComposeError(f'services.{service.name}: can\'t set container_name and {service.name} as container '
                           "name must be unique")
    existing = {c.number: c for c in engine.containers(project.name, services=[service.name])}
    for number in sorted(n for n in existing if n > replicas or n < 1):
        c = existing.pop(number)
        if c.running:
            stop_container(engine, c, timeout)
        remove_container(engine, c)
    wanted_hash = service.config_hash()
    ids = []
    for number in range(1, replicas + 1):
        c = existing.get(number)
        recreate = c is not None and (force_recreate or (c.config_hash != wanted_hash and not no_recreate))
        if recreate:
            progress("Container", c.name, "Recreate")
            if c.running:
                engine.call("stop", *(["-t", str(timeout)] if timeout is not None else []), c.id)
            engine.call("rm", "-f", c.id)
            c = None
        if c is None:
            cid = create_container(project, engine, service, number, quiet=recreate)
            if recreate:
                progress("Container", container_name(project, service, number), "Recreated")
            if start:
                start_container(engine, cid, container_name(project, service, number))
            ids.append(cid)
            continue
        ids.append(c.id)
        if c.running:
            progress("Container", c.name, "Running")
        elif start:
            start_container(engine, c, c.name)
    return ids


def build_images(project: Project, engine: Engine, services: list[Service], *, always: bool) -> None:
    """Build the images of services with ``build:`` (missing ones, or all with ``always``)."""
    for service in services:
        if not service.config.get("build"):
            continue
        tag = image_of(project, service)
        if always or not engine.has_image(tag):
            progress("Service", service.name, "Building")
            engine.build(build_argv(project, service))
            progress("Service", service.name, "Built")


def _orphans(project: Project, engine: Engine) -> list[Container]:
    """Containers of services the files no longer define (those a profile disables are not orphans)."""
    return [c for c in engine.containers(project.name, oneoff=False) if not project.defines(c.service)]


def _parse_scale(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, count = item.partition("=")
        # isascii: "²".isdigit() is true and int() refuses it; 1 << 63: Go's int overflows there
        if not sep or not (count.isascii() and count.isdigit()) or int(count) >= 1 << 63:
            raise ComposeError(f"invalid scale option {item!r}: use SERVICE=NUM")
        out[name] = int(count)
    return out


def cmd_up(project: Project, engine: Engine, o) -> int:
    scale = _parse_scale(o.scale or [])
    for name in scale:
        if name not in project.services:
            raise ComposeError(f"no such service: {name}")
    targets = project.ordered(o.services) if not o.no_deps else project.select(o.services)
    if not o.no_build:
        build_images(project, engine, targets, always=o.build)
    used = {k for s in targets for k in (s.config.get("networks") or {})}
    ensure_networks(project, engine, used)
    ensure_volumes(project, engine)
    orphans = _orphans(project, engine)
    if orphans and o.remove_orphans:
        for c in orphans:
            if c.running:
                stop_container(engine, c, o.timeout)
            remove_container(engine, c)
    elif orphans:
        sys.stderr.write(f"WARN[0000] Found orphan containers ({', '.join(sorted(c.name for c in orphans))}) for "
                         "this project. If you removed or renamed this service in your compose file, you can run "
                         "this command with the --remove-orphans flag to clean it up.\n")
    for service in targets:
        if not o.no_start:
            wait_for_dependencies(project, engine, service)
        converge(project, engine, service, scale.get(service.name, service.replicas), start=not o.no_start,
                 force_recreate=o.force_recreate, no_recreate=o.no_recreate, timeout=o.timeout)
    if o.wait:
        for service in targets:
            for c in engine.containers(project.name, services=[service.name]):
                _wait_running_or_healthy(engine, c)
    if o.detach or o.no_start:
        return 0
    names = [s.name for s in targets]
    return _attach(project, engine, names, o)


def _wait_running_or_healthy(engine: Engine, container: Container) -> None:
    deadline = time.monotonic() + DEPENDENCY_WAIT
    while time.monotonic() < deadline:
        status = engine.health(container)
        if status == "healthy" or (status == "" and not engine.has_healthcheck(container)):
            return
        if status == "unhealthy":
            raise ComposeError(f"container {container.name} is unhealthy")
        time.sleep(0.2)
    raise ComposeError(f"container {container.name} did not become healthy within {DEPENDENCY_WAIT:.0f}s")


def _attach(project: Project, engine: Engine, services: list[str], o) -> int:
    """``up`` without ``-d``: the containers' logs until they all exit; Ctrl-C stops them."""
    containers = engine.containers(project.name, services=services)
    sys.stdout.write("Attaching to " + ", ".join(c.name for c in containers) + "\n")
    sys.stdout.flush()
    interrupted = []

    def on_signal(signum, _frame) -> None:
        if interrupted:
            raise KeyboardInterrupt
        interrupted.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop_when_any = bool(o.abort_on_container_exit or o.exit_code_from)
        logstream.follow(engine, containers, prefix=not o.no_log_prefix, timestamps=False,
                         stop=lambda: bool(interrupted), stop_on_first_exit=stop_when_any,
                         announce_exit=True)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if interrupted or o.abort_on_container_exit or o.exit_code_from:
        sys.stderr.write("Gracefully stopping... (press Ctrl+C again to force)\n")
        for c in reversed(engine.containers(project.name, services=services)):
            if c.running:
                stop_container(engine, c, o.timeout)
    if o.exit_code_from:
        found = engine.containers(project.name, services=[o.exit_code_from])
        return found[0].exit_code if found else 1
    return 130 if interrupted else 0


def _project_containers(project: Project, engine: Engine, services: list[str], *, oneoff: bool | None = False
                        ) -> list[Container]:
    project.select(services)  # unknown names are an error
    return engine.containers(project.name, services=services or None, oneoff=oneoff)


def _reverse_order(project: Project, containers: list[Container]) -> list[Container]:
    rank = {s.name: i for i, s in enumerate(project.ordered())} if project.services else {}
    return sorted(containers, key=lambda c: (-rank.get(c.service, -1), -c.number))


def cmd_down(project: Project, engine: Engine, o) -> int:
    everything = engine.containers(project.name, oneoff=None)
    containers, orphans = [], []  # one pass: "c not in containers" is quadratic (60k containers: hours)
    for c in everything:
        keep = project.defines(c.service) or c.oneoff or o.remove_orphans or project.from_labels
        (containers if keep else orphans).append(c)
    for c in _reverse_order(project, containers):
        if c.running:
            stop_container(engine, c, o.timeout)
    for c in _reverse_order(project, containers):
        remove_container(engine, c)
    if orphans:
        sys.stderr.write(f"WARN[0000] Found orphan containers ({', '.join(sorted(c.name for c in orphans))}) for "
                         "this project. If you removed or renamed this service in your compose file, you can run "
                         "this command with the --remove-orphans flag to clean it up.\n")
    if o.rmi:
        _remove_images(project, engine, o.rmi)
    names = [n["name"] for n in project.networks.values() if not n.get("external")]
    names += [n["Name"] for n in engine.labelled_networks(project.name) if n["Name"] not in names]
    for name in names:
        found = engine.network(name)
        if found is None or (found.get("Labels") or {}).get(PROJECT) != project.name:
            continue  # never made by this project (or already gone)
        if engine.network_in_use(found):
            sys.stderr.write(f"WARN[0000] network {name} is still in use\n")
            continue
        progress("Network", name, "Removing")
        engine.call("network", "rm", "--", name)
        progress("Network", name, "Removed")
    if o.volumes:
        names = [v["name"] for v in project.volumes.values() if not v.get("external")]
        names += [n for n in engine.labelled_volumes(project.name) if n not in names]
        for name in names:
            found = engine.volume(name)
            if found is None or (found.get("Labels") or {}).get(PROJECT) != project.name:
                continue
            progress("Volume", name, "Removing")
            engine.call("volume", "rm", "--", name)
            progress("Volume", name, "Removed")
    return 0


def _remove_images(project: Project, engine: Engine, which: str) -> None:
    """``down --rmi local``: the images ``build:`` made (no ``image:`` of their own); ``all``: every
    service's image. An image still in use elsewhere stays (a warning, as docker compose)."""
    if which not in ("local", "all"):
        raise ComposeError(f"invalid --rmi option {which!r}: local or all")
    images = [image_of(project, s) for s in project.services.values()
              if which == "all" or (s.config.get("build") and not s.image)]
    for image in dict.fromkeys(images):
        if not engine.has_image(image):
            continue
        progress("Image", image, "Removing")
        try:
            engine.call("rmi", "--", image)
        except ComposeError as exc:
            sys.stderr.write(f"WARN[0000] {exc}\n")
            continue
        progress("Image", image, "Removed")


_PS_TABLE = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.Created}}\t{{.Status}}\t{{.Ports}}"
_PS_HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "Image": "IMAGE", "Command": "COMMAND", "Project": "PROJECT",
               "Service": "SERVICE", "Created": "CREATED", "State": "STATE", "Status": "STATUS", "Health": "HEALTH",
               "ExitCode": "EXIT CODE", "Ports": "PORTS", "Labels": "LABELS"}


def cmd_ps(project: Project, engine: Engine, o) -> int:
    containers = _project_containers(project, engine, o.services, oneoff=None if o.all else False)
    if not o.all:
        containers = [c for c in containers if c.running or c.status in ("paused", "restarting")]
    for status in o.status or []:
        containers = [c for c in containers if c.status == status]
    for f in o.filter or []:
        key, _, value = f.partition("=")
        if key != "status":
            raise ComposeError(f"invalid filter {key!r}: only status is supported")
        containers = [c for c in containers if c.status == value]
    containers.sort(key=lambda c: c.name)
    if o.services_only:
        sys.stdout.write("".join(s + "\n" for s in dict.fromkeys(c.service for c in containers)))
        return 0
    if o.quiet:
        sys.stdout.write("".join(c.id + "\n" for c in containers))
        return 0
    now = time.time()
    rows = []
    for c in containers:
        row = ps_row(c.config, c.state, now, False)
        rows.append({"ID": c.id, "Name": c.name, "Image": row["Image"], "Command": row["Command"],
                     "Project": project.name, "Service": c.service, "Created": row["RunningFor"],
                     "State": c.status, "Status": row["Status"], "Health": engine.health(c), "ExitCode": c.exit_code,
                     "Publishers": [], "Ports": row["Ports"], "Labels": row["Labels"]})
    if o.format == "json":
        sys.stdout.write(json.dumps(rows) + "\n")
        return 0
    template = _PS_TABLE if o.format == "table" else o.format
    sys.stdout.write("".join(line + "\n" for line in format_rows(template, rows, _PS_HEADERS)))
    return 0


def cmd_logs(project: Project, engine: Engine, o) -> int:
    containers = _project_containers(project, engine, o.services, oneoff=False)
    if o.follow:
        logstream.follow(engine, containers, prefix=not o.no_log_prefix, timestamps=o.timestamps, tail=o.tail)
    else:
        logstream.dump(engine, containers, prefix=not o.no_log_prefix, timestamps=o.timestamps, tail=o.tail)
    return 0


class _Dumper(yaml.SafeDumper):
    """YAML without anchors and aliases: a shared value is written out in full each time."""

    def ignore_aliases(self, data) -> bool:
        return True


def _yaml(document) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True)


def cmd_config(project: Project, engine: Engine | None, o) -> int:
    if o.services_only:
        sys.stdout.write("".join(s + "\n" for s in project.services))
    elif o.volumes_only:
        sys.stdout.write("".join(v + "\n" for v in project.volumes))
    elif o.profiles_only:
        sys.stdout.write("".join(p + "\n" for p in project.profiles()))
    elif o.images:
        sys.stdout.write("".join(s.image + "\n" for s in project.services.values()))
    elif o.quiet:
        return 0
    else:
        text = json.dumps(project.document(), indent=2) + "\n" if o.format == "json" else _yaml(project.document())
        if o.output:
            with open(o.output, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
    return 0


def _one_container(project: Project, engine: Engine, service: str, index: int) -> Container:
    project.select([service])
    for c in engine.containers(project.name, services=[service]):
        if c.number == index and c.running:
            return c
    raise ComposeError(f'service "{service}" is not running container #{index}')


def cmd_exec(project: Project, engine: Engine, o) -> int:
    if not o.cmd:
        raise ComposeError('"exec" requires at least 2 arguments')
    container = _one_container(project, engine, o.service, o.index)
    argv = ["exec"]
    if o.detach:
        argv.append("-d")
    else:
        argv.append("-i")
        if not o.no_tty and sys.stdin.isatty():
            argv.append("-t")
    for e in o.env or []:
        argv += ["-e", e]
    if o.user:
        argv += ["-u", o.user]
    if o.workdir:
        argv += ["-w", o.workdir]
    if o.privileged:
        argv.append("--privileged")
    return engine.attached(*argv, container.id, *o.cmd)


def cmd_run(project: Project, engine: Engine, o) -> int:
    service = project.select([o.service])[0]
    build_images(project, engine, project.ordered([service.name]) if not o.no_deps else [service], always=o.build)
    if not o.no_deps:
        deps = [s for s in project.ordered([service.name]) if s.name != service.name]
        used = {k for s in [*deps, service] for k in (s.config.get("networks") or {})}
        ensure_networks(project, engine, used)
        ensure_volumes(project, engine)
        for dep in deps:
            wait_for_dependencies(project, engine, dep)
            converge(project, engine, dep, max(dep.replicas, 1), no_recreate=True)
        wait_for_dependencies(project, engine, service)
    else:
        ensure_networks(project, engine, set(service.config.get("networks") or {}))
        ensure_volumes(project, engine)
    name = o.name or f"{project.name}-{service.name}-run-{os.urandom(6).hex()}"
    extra: list[str] = []
    for e in o.env or []:
        extra += ["-e", e]
    for label in o.label or []:
        extra += ["--label", label]
    for volume in o.volume or []:
        extra += ["-v", volume]
    for port in o.publish or []:
        extra += ["-p", port]
    if o.user:
        extra += ["-u", o.user]
    if o.workdir:
        extra += ["-w", o.workdir]
    if o.rm:
        extra.append("--rm")
    interactive = not o.detach
    tty = not o.no_tty and sys.stdin.isatty() and not o.detach
    if interactive:
        extra.append("-i")
    if tty:
        extra.append("-t")
    entrypoint = split_argv(o.entrypoint, "entrypoint") if o.entrypoint is not None else None
    argv = create_argv(project, service, 1, name=name, oneoff=True, command=o.cmd or None,
                       extra=extra, ports=o.service_ports,
                       network_mode_container=_network_mode_container(project, engine))
    cid = engine.create(argv, entrypoint_of(service, entrypoint), health_test_of(service))
    connect_other_networks(project, engine, service, cid)
    if o.detach:
        engine.call("start", cid)
        sys.stdout.write(name + "\n")
        return 0
    start = ["start", "-a"] + (["-i"] if interactive else [])
    return engine.attached(*start, cid)


def cmd_stop(project: Project, engine: Engine, o) -> int:
    containers = [c for c in _project_containers(project, engine, o.services) if c.running]
    for c in _reverse_order(project, containers):
        stop_container(engine, c, o.timeout)
    return 0


def cmd_start(project: Project, engine: Engine, o) -> int:
    if project.from_labels:
        for c in engine.containers(project.name, services=o.services or None):
            if not c.running:
                start_container(engine, c, c.name)
        return 0
    services = project.ordered(o.services) if o.services else project.ordered()
    started = False
    for service in services:
        containers = engine.containers(project.name, services=[service.name])
        if not containers:
            if service.name in (o.services or []):
                raise ComposeError(f"service {service.name!r} has no container to start")
            continue
        wait_for_dependencies(project, engine, service)
        for c in containers:
            started = True
            if not c.running:
                start_container(engine, c, c.name)
    if not started and not o.services:
        raise ComposeError("no containers to start")
    return 0


def cmd_restart(project: Project, engine: Engine, o) -> int:
    groups = [o.services or None] if project.from_labels else \
        [[s.name] for s in (project.ordered(o.services) if o.services else project.ordered())]
    for services in groups:
        for c in engine.containers(project.name, services=services):
            progress("Container", c.name, "Restarting")
            engine.call("restart", *(["-t", str(o.timeout)] if o.timeout is not None else []), c.id)
            progress("Container", c.name, "Started")
    return 0


def cmd_kill(project: Project, engine: Engine, o) -> int:
    for c in _project_containers(project, engine, o.services):
        if c.running:
            progress("Container", c.name, "Killing")
            engine.call("kill", "-s", o.signal, c.id)
            progress("Container", c.name, "Killed")
    return 0


def cmd_rm(project: Project, engine: Engine, o) -> int:
    containers = [c for c in _project_containers(project, engine, o.services) if not c.running or o.stop]
    for c in containers:
        if c.running:
            stop_container(engine, c, None)
    if not containers:
        sys.stderr.write("No stopped containers\n")
        return 0
    for c in containers:
        progress("Container", c.name, "Removing")
        engine.call("rm", "-f", *(["-v"] if o.volumes else []), c.id)
        progress("Container", c.name, "Removed")
    return 0


def cmd_pause(project: Project, engine: Engine, o) -> int:
    verb = "pause" if o.command == "pause" else "unpause"
    for c in _project_containers(project, engine, o.services):
        progress("Container", c.name, "Pausing" if verb == "pause" else "Unpausing")
        engine.call(verb, c.id)
        progress("Container", c.name, "Paused" if verb == "pause" else "Unpaused")
    return 0


def cmd_scale(project: Project, engine: Engine, o) -> int:
    scale = _parse_scale(o.scales)
    for name in scale:
        project.select([name])
    ensure_networks(project, engine)
    ensure_volumes(project, engine)
    for service in project.ordered(list(scale)):
        if service.name in scale:
            converge(project, engine, service, scale[service.name], no_recreate=True)
        elif not o.no_deps:
            converge(project, engine, service, service.replicas, no_recreate=True)
    return 0


def cmd_build(project: Project, engine: Engine, o) -> int:
    services = project.select(o.services)
    if not any(s.config.get("build") for s in services):
        return 0
    build_images(project, engine, services, always=True)
    return 0


def cmd_pull(project: Project, engine: Engine, o) -> int:
    """Nothing to pull: refengine never reaches a registry from here (the images are loaded)."""
    project.select(o.services)
    return 0


def cmd_top(project: Project, engine: Engine, o) -> int:
    for c in _project_containers(project, engine, o.services):
        if c.running:
            sys.stdout.write(c.name + "\n")
            sys.stdout.write(engine.call("top", c.id) + "\n")
    return 0


def cmd_port(project: Project, engine: Engine, o) -> int:
    container = _one_container(project, engine, o.service, o.index)
    private = o.private_port if "/" in o.private_port else f"{o.private_port}/{o.protocol}"
    sys.stdout.write(engine.call("port", container.id, private))
    return 0


def cmd_images(project: Project, engine: Engine, o) -> int:
    containers = _project_containers(project, engine, o.services)
    rows = [("CONTAINER", "REPOSITORY", "TAG", "IMAGE ID")]
    for c in containers:
        repo, _, tag = c.config["Config"]["Image"].rpartition(":")
        rows.append((c.name, repo or c.config["Config"]["Image"], tag if repo else "latest", c.config["Image"][7:19]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        sys.stdout.write("   ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() + "\n")
    return 0


#: subcommand -> its handler
HANDLERS = {
    "up": cmd_up, "down": cmd_down, "ps": cmd_ps, "logs": cmd_logs, "config": cmd_config, "exec": cmd_exec,
    "run": cmd_run, "stop": cmd_stop, "start": cmd_start, "restart": cmd_restart, "kill": cmd_kill, "rm": cmd_rm,
    "pause": cmd_pause, "unpause": cmd_pause, "scale": cmd_scale, "pull": cmd_pull, "build": cmd_build,
    "top": cmd_top, "port": cmd_port, "images": cmd_images,
}
