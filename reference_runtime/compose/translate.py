"""A service's container as refengine's ``create`` command line: the flags a user
would type for the same container (``--name``, ``--label``, ``--network`` with
``--network-alias``, ``-p``, ``--mount``, ``--health-*``...). Pure.

>>> from .project import Project
>>> p = Project.build(name="demo", working_dir="/w", config_files=["/w/compose.yaml"], environment={},
...                   document={"services": {"web": {"image": "img", "command": ["echo", "hi"]}}})
>>> argv = create_argv(p, p.services["web"], 1)
>>> argv[:3], argv[-3:]
(['--name', 'demo-web-1', '--label'], ['img', 'echo', 'hi'])
"""

from __future__ import annotations

import math
import os
import shlex

from ..engine.flags import parse_go_duration
from .labels import (COMPOSE_VERSION, CONFIG_FILES, CONFIG_HASH, NUMBER, ONEOFF, PROJECT, SERVICE, VERSION,
                      WORKING_DIR)
from .errors import ComposeError
from .project import Project, Service


def image_of(project: Project, service: Service) -> str:
    """The service's image: ``image:``, else the one ``build:`` makes (``<project>-<service>``)."""
    return service.image or f"{project.name}-{service.name}"


def build_argv(project: Project, service: Service) -> list[str]:
    """refengine ``build``'s flags and context for the service's ``build:``."""
    build = service.config["build"]
    argv = ["-t", image_of(project, service)]
    if build.get("dockerfile"):
        argv += ["-f", os.path.join(build["context"], build["dockerfile"])]
    for key, value in (build.get("args") or {}).items():
        argv += ["--build-arg", key if value is None else f"{key}={value}"]
    if build.get("target"):
        argv += ["--target", build["target"]]
    for key, value in (build.get("labels") or {}).items() if isinstance(build.get("labels"), dict) else []:
        argv += ["--label", f"{key}={value}"]
    return [*argv, "--", build["context"]]


def container_name(project: Project, service: Service, number: int) -> str:
    """docker compose v2's name: ``<project>-<service>-<n>``, or ``container_name:``."""
    return service.config.get("container_name") or f"{project.name}-{service.name}-{number}"


def labels(project: Project, service: Service, number: int, *, oneoff: bool = False) -> dict[str, str]:
    """The service's own labels, then docker compose's."""
    out = dict(service.config.get("labels") or {})
    out.update({
        PROJECT: project.name, SERVICE: service.name, NUMBER: str(number), ONEOFF: "True" if oneoff else "False",
        WORKING_DIR: project.working_dir, CONFIG_FILES: ",".join(project.config_files),
        CONFIG_HASH: service.config_hash(), VERSION: COMPOSE_VERSION,
    })
    return out


def seconds(duration: str, where: str) -> float:
    try:
        return parse_go_duration(str(duration))
    except ValueError:
        raise ComposeError(f"{where}: invalid duration {duration!r}") from None


def primary_network(project: Project, service: Service) -> tuple[str, str, dict] | None:
    """The first network a service joins: (key, engine name, its settings)."""
    nets = service.config.get("networks") or {}
    if not nets:
        return None
    key = sorted(nets, key=lambda k: ((nets[k] or {}).get("priority", 0) * -1, k))[0]
    return key, project.networks[key]["name"], nets[key] or {}


def other_networks(project: Project, service: Service) -> list[tuple[str, dict]]:
    """The networks joined after create (``network connect``): (engine name, settings)."""
    first = primary_network(project, service)
    nets = service.config.get("networks") or {}
    return [(project.networks[k]["name"], nets[k] or {}) for k in sorted(nets) if first and k != first[0]]


def aliases(service: Service, settings: dict) -> list[str]:
    """docker compose's aliases on a project network: the service's name, then its own."""
    return [service.name, *[a for a in settings.get("aliases") or [] if a != service.name]]


def _network_flags(project: Project, service: Service, network_mode_container) -> list[str]:
    mode = service.config.get("network_mode")
    if mode:
        if mode.startswith("service:"):
            return ["--network", f"container:{network_mode_container(mode[8:])}"]
        return ["--network", mode]
    first = primary_network(project, service)
    if first is None:
        return []
    _, name, settings = first
    argv = ["--network", name]
    for alias in aliases(service, settings):
        argv += ["--network-alias", alias]
    if settings.get("ipv4_address"):
        argv += ["--ip", settings["ipv4_address"]]
    return argv


def _port_flags(service: Service) -> list[str]:
    argv = []
    for port in service.config.get("ports") or []:
        spec = f"{port['target']}/{port.get('protocol', 'tcp')}"
        if port.get("published") or port.get("host_ip"):
            spec = f"{port.get('published') or ''}:{spec}"  # HOST_IP::TARGET: an ephemeral port on that address
        if port.get("host_ip"):
            host = port["host_ip"]
            spec = f"{'[' + host + ']' if ':' in host else host}:{spec}"
        argv += ["-p", spec]
    for expose in service.config.get("expose") or []:
        argv += ["--expose", str(expose)]
    return argv


def _mount_flags(project: Project, service: Service) -> list[str]:
    argv = []
    for mount in service.config.get("volumes") or []:
        kind, target = mount.get("type", "volume"), mount["target"]
        readonly = ",readonly" if mount.get("read_only") else ""
        if kind == "volume" and mount.get("source"):
            name = project.volumes[mount["source"]]["name"]
            nocopy = ",volume-nocopy" if (mount.get("volume") or {}).get("nocopy") else ""
            argv += ["--mount", f"type=volume,source={name},target={target}{readonly}{nocopy}"]
        elif kind == "volume":
            argv += ["-v", target]
        elif kind == "bind":
            # -v (not --mount) creates a missing host directory, as create_host_path asks
            argv += ["-v", f"{mount['source']}:{target}" + (":ro" if mount.get("read_only") else "")]
        elif kind == "tmpfs":
            size = (mount.get("tmpfs") or {}).get("size")
            argv += ["--tmpfs", target + (f":size={size}" if size else "")]
        else:
            raise ComposeError(f"service {service.name}: volumes of type {kind} are not supported by refengine")
    for tmpfs in service.config.get("tmpfs") or []:
        argv += ["--tmpfs", tmpfs]
    for kind, declared, base in (("secrets", project.secrets, "/run/secrets/"), ("configs", project.configs, "/")):
        for entry in service.config.get(kind) or []:
            source = entry if isinstance(entry, str) else entry["source"]
            target = source if isinstance(entry, str) else entry.get("target") or source
            spec = declared[source]
            if not spec.get("file"):
                raise ComposeError(f"service {service.name}: {kind[:-1]} {source}: only file-based {kind} are "
                                   "supported by refengine compose")
            argv += ["--mount", f"type=bind,source={spec['file']},target={os.path.join(base, target)},readonly"]
    return argv


def _health_flags(service: Service) -> list[str]:
    health = service.config.get("healthcheck")
    if not health:
        return []
    test = health.get("test")
    if health.get("disable") or (test and test[0] == "NONE"):
        return ["--no-healthcheck"]
    argv = []
    if test:
        kind, rest = test[0], test[1:]
        if kind == "CMD-SHELL":
            argv += ["--health-cmd", " ".join(rest)]
        elif kind != "CMD":  # CMD's exec form goes to create as a list: health_test_of
            argv += ["--health-cmd", shlex.join(test)]
    for key, flag in (("interval", "--health-interval"), ("timeout", "--health-timeout"),
                      ("start_period", "--health-start-period")):
        if health.get(key):
            argv += [flag, str(health[key])]
    if health.get("retries") is not None:
        argv += ["--health-retries", str(int(health["retries"]))]
    return argv


def _simple_flags(service: Service, oneoff: bool) -> list[str]:
    c = service.config
    argv: list[str] = []
    for key, flag in (("working_dir", "-w"), ("user", "-u"), ("hostname", "-h"), ("stop_signal", "--stop-signal"),
                      ("mem_limit", "-m"), ("memswap_limit", "--memory-swap"), ("pids_limit", "--pids-limit"),
                      ("platform", "--platform")):
        if c.get(key) not in (None, ""):
            argv += [flag, str(c[key])]
    for key, flag in (("tty", "-t"), ("stdin_open", "-i"), ("init", "--init"), ("privileged", "--privileged"),
                      ("read_only", "--read-only")):
        if c.get(key):
            argv.append(flag)
    for key, flag in (("cap_add", "--cap-add"), ("cap_drop", "--cap-drop"), ("dns", "--dns"),
                      ("security_opt", "--security-opt")):
        for value in c.get(key) or []:
            argv += [flag, str(value)]
    if c.get("restart") and not oneoff:  # a one-off container is never restarted (docker compose run)
        argv += ["--restart", str(c["restart"])]
    if c.get("stop_grace_period"):
        argv += ["--stop-timeout", str(math.ceil(seconds(c["stop_grace_period"], f"services.{service.name}")))]
    for key, value in (c.get("environment") or {}).items():
        argv += ["-e", f"{key}={value}"]
    return argv


def _reference_flags(project: Project, service: Service) -> list[str]:
    """``links`` and ``volumes_from`` name services (their first container) or, with
    ``container:``, containers."""
    def container_of(target: str) -> str:
        if target.startswith("container:"):
            return target[10:]
        if target in project.services:
            return container_name(project, project.services[target], 1)
        return target

    argv = []
    for link in service.config.get("links") or []:
        target, _, alias = link.partition(":")
        argv += ["--link", f"{container_of(target)}:{alias or target}"]
    for source in service.config.get("volumes_from") or []:
        mode = source.rsplit(":", 1)[1] if source.endswith((":ro", ":rw")) else ""
        target = source[: -len(mode) - 1] if mode else source
        argv += ["--volumes-from", container_of(target) + (f":{mode}" if mode else "")]
    return argv


#: The service keys refengine compose applies (or that change no container: scale, profiles...).
SUPPORTED = frozenset({
    "build", "cap_add", "cap_drop", "command", "container_name", "depends_on", "deploy", "dns", "entrypoint",
    "env_file", "environment", "expose", "extends", "healthcheck", "hostname", "image", "init", "labels", "links",
    "mem_limit", "memswap_limit", "network_mode", "networks", "pids_limit", "platform", "ports", "privileged",
    "profiles", "pull_policy", "read_only", "restart", "scale", "secrets", "configs", "security_opt", "stdin_open",
    "stop_grace_period",
    "stop_signal", "tmpfs", "tty", "user", "volumes", "volumes_from", "working_dir",
})


def unsupported(service: Service) -> list[str]:
    """The keys of the service that refengine cannot apply (they are reported, not silently dropped)."""
    return sorted(k for k in service.config if k not in SUPPORTED and not k.startswith("x-"))


def create_argv(project: Project, service: Service, number: int, *, name: str | None = None,
                oneoff: bool = False, command: list[str] | None = None, extra: list[str] | None = None,
                ports: bool = True, network_mode_container=None) -> list[str]:
    """``create``'s flags, image and command of container ``number`` of ``service`` (the
    entrypoint is :func:`entrypoint_of`'s)
    (``run``'s one-off container: ``oneoff``, its own ``name``, ``command`` and no ports)."""
    if not service.image and not service.config.get("build"):
        raise ComposeError(f"service {service.name} has neither an image nor a build context specified: "
                           "invalid compose project")
    argv = ["--name", name or container_name(project, service, number)]
    for key, value in labels(project, service, number, oneoff=oneoff).items():
        argv += ["--label", f"{key}={value}"]
    argv += _network_flags(project, service, network_mode_container or (lambda s: f"{project.name}-{s}-1"))
    if ports:
        argv += _port_flags(service)
    argv += _mount_flags(project, service)
    argv += _simple_flags(service, oneoff)
    argv += _reference_flags(project, service)
    argv += _health_flags(service)
    argv += extra or []
    cmd = service.config.get("command") if command is None else command
    # "--": an image named "--privileged" is an image name, never a flag
    argv += ["--", image_of(project, service)]
    argv += list(cmd or [])
    return argv


def health_test_of(service: Service) -> list[str] | None:
    """A healthcheck test in exec form (``["CMD", ...]``), which ``--health-cmd`` cannot say:
    create takes it as docker's API does, a list."""
    test = (service.config.get("healthcheck") or {}).get("test")
    return list(test) if test and test[0] == "CMD" and not service.config["healthcheck"].get("disable") else None


def entrypoint_of(service: Service, override: list[str] | None = None) -> list[str] | None:
    """The entrypoint the container gets as a list (None: the image's)."""
    return service.config.get("entrypoint") if override is None else override
