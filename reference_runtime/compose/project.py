"""The normalised project: its name, directory, files, enabled services (each in
the Compose specification's long form), networks and volumes with their engine
names (``<project>_<key>``), as ``refengine compose config`` prints it. Pure.

>>> p = Project.build(name="demo", working_dir="/w", config_files=["/w/compose.yaml"],
...                   document={"services": {"web": {"image": "busybox"}}}, environment={})
>>> p.services["web"].config["networks"], p.networks["default"]["name"]
({'default': None}, 'demo_default')
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import dotenv
from .errors import ComposeError
from .normalise import key_value_map

#: Service keys that do not change a container: a change of them does not recreate it.
_NOT_HASHED = ("scale", "deploy", "profiles", "depends_on", "extends")


@dataclass
class Service:
    """One enabled service; ``config`` is its long form (what ``config`` prints)."""

    name: str
    config: dict

    @property
    def image(self) -> str:
        return self.config.get("image") or ""

    @property
    def replicas(self) -> int:
        """``scale:`` or ``deploy.replicas``, default 1."""
        deploy = self.config.get("deploy") or {}
        value = self.config.get("scale", deploy.get("replicas", 1))
        return int(value if value is not None else 1)

    @property
    def depends_on(self) -> dict[str, dict]:
        """``depends_on``, and the services ``links``, ``volumes_from`` and ``network_mode:
        service:`` name (docker compose starts those first too)."""
        implied = [link.partition(":")[0] for link in self.config.get("links") or []]
        implied += [v.split(":")[0] for v in self.config.get("volumes_from") or [] if not v.startswith("container:")]
        mode = self.config.get("network_mode") or ""
        if mode.startswith("service:"):
            implied.append(mode[8:])
        return {**{n: {"condition": "service_started"} for n in implied}, **(self.config.get("depends_on") or {})}

    def config_hash(self) -> str:
        """docker compose's ``com.docker.compose.config-hash``: what the container is made from."""
        relevant = {k: v for k, v in self.config.items() if k not in _NOT_HASHED}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


@dataclass
class Project:
    name: str
    working_dir: str
    config_files: list[str]
    services: dict[str, Service]
    networks: dict[str, dict]
    volumes: dict[str, dict]
    environment: Mapping[str, str] = field(repr=False, default_factory=dict)
    #: top-level secrets and configs (file-based ones are bind-mounted read-only)
    secrets: dict[str, dict] = field(default_factory=dict)
    configs: dict[str, dict] = field(default_factory=dict)
    #: services present in the files but disabled by their profiles
    disabled: dict[str, Service] = field(default_factory=dict)
    #: no Compose file: only the name is known, the engine's labels tell the rest (down -p NAME)
    from_labels: bool = False

    @classmethod
    def named(cls, name: str, working_dir: str) -> "Project":
        """A project known by its name only, for the commands that work from labels."""
        return cls(name, working_dir, [], {}, {}, {}, from_labels=True)

    @classmethod
    def build(cls, *, name: str, working_dir: str, config_files: list[str], document: dict,
              environment: Mapping[str, str], profiles: list[str] | None = None,
              requested: list[str] | None = None) -> "Project":
        everything = document.get("services") or {}
        for wanted in requested or []:
            if wanted not in everything:
                raise ComposeError(f"no such service: {wanted}")
        active = set(profiles or [])
        enabled, disabled = {}, {}
        for sname, config in everything.items():
            own = set(config.get("profiles") or [])
            target = enabled if (not own or own & active or "*" in active or sname in (requested or [])) else disabled
            target[sname] = config
        services = {n: Service(n, _resolve_environment(c, environment)) for n, c in enabled.items()}
        networks = _networks(name, document.get("networks") or {}, services)
        volumes = _volumes(name, document.get("volumes") or {})
        project = cls(name, working_dir, list(config_files), services, networks, volumes, dict(environment),
                      dict(document.get("secrets") or {}), dict(document.get("configs") or {}),
                      {n: Service(n, c) for n, c in disabled.items()})
        project.check_references()
        return project

    def check_references(self) -> None:
        """docker compose's "invalid compose project" errors: dependencies, networks and
        volumes a service names must exist (and be enabled)."""
        for service in self.services.values():
            for dep in service.depends_on:
                if dep in self.disabled:
                    raise ComposeError(f'service "{dep}" was pulled in as a dependency of service "{service.name}" '
                                       f'but is not enabled by the active profiles. You may fix this by adding a '
                                       f'common profile to "{dep}" and "{service.name}".')
                if dep not in self.services:
                    raise ComposeError(f'service "{service.name}" depends on undefined service {dep}: '
                                       "invalid compose project")
            for net in service.config.get("networks") or {}:
                if net not in self.networks:
                    raise ComposeError(f'service "{service.name}" refers to undefined network {net}: '
                                       "invalid compose project")
            for kind, declared in (("secrets", self.secrets), ("configs", self.configs)):
                for entry in service.config.get(kind) or []:
                    source = entry if isinstance(entry, str) else entry.get("source")
                    if source not in declared:
                        raise ComposeError(f'service "{service.name}" refers to undefined {kind[:-1]} {source}: '
                                           "invalid compose project")
            for mount in service.config.get("volumes") or []:
                source = mount.get("source")
                if mount.get("type") == "volume" and source and source not in self.volumes:
                    raise ComposeError(f'service "{service.name}" refers to undefined volume {source}: '
                                       "invalid compose project")

    def defines(self, service: str) -> bool:
        """Whether the files define ``service`` (enabled or disabled by its profiles)."""
        return service in self.services or service in self.disabled

    def ordered(self, names: list[str] | None = None) -> list[Service]:
        """Services with their dependencies first (``names`` and what they depend on)."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(n: str, chain: tuple[str, ...]) -> None:
            if n in order:
                return
            if n in visiting:
                raise ComposeError(f"dependency cycle detected: {' -> '.join((*chain, n))}")
            visiting.add(n)
            for dep in self.services[n].depends_on:
                visit(dep, (*chain, n))
            visiting.discard(n)
            order.append(n)

        for n in names if names else list(self.services):
            if n not in self.services:
                raise ComposeError(f"no such service: {n}")
            visit(n, ())
        return [self.services[n] for n in order]

    def select(self, names: list[str]) -> list[Service]:
        """The named services (all when none is named), in file order."""
        if self.from_labels:
            return []
        for n in names:
            if n not in self.services:
                raise ComposeError(f"no such service: {n}")
        return [s for s in self.services.values() if not names or s.name in names]

    def document(self) -> dict:
        """``config``'s output: the merged, interpolated, normalised model."""
        doc: dict = {"name": self.name, "services": {n: s.config for n, s in sorted(self.services.items())}}
        if self.networks:
            doc["networks"] = self.networks
        if self.volumes:
            doc["volumes"] = self.volumes
        for key, value in (("secrets", self.secrets), ("configs", self.configs)):
            if value:
                doc[key] = value
        return doc

    def profiles(self) -> list[str]:
        """Every profile any service names (``config --profiles``)."""
        every = [*self.services.values(), *self.disabled.values()]
        return sorted({p for s in every for p in s.config.get("profiles") or []})


def _resolve_environment(config: dict, env: Mapping[str, str]) -> dict:
    """``env_file:`` then ``environment:`` as one mapping; a name without a value takes the
    project environment's (it is left out when that has none either)."""
    values: dict[str, str | None] = {}
    for path in config.get("env_file") or []:
        values.update(dotenv.read(path, env))
    values.update(config.get("environment") or {})
    if not values and "environment" not in config and "env_file" not in config:
        return config
    resolved = {}
    for key, value in values.items():
        if value is None:
            if key not in env:
                continue
            value = env[key]
        resolved[key] = value
    return {**config, "environment": resolved}


def _networks(project: str, declared: dict, services: dict[str, Service]) -> dict[str, dict]:
    networks: dict[str, dict] = {}
    for service in services.values():
        if not service.config.get("network_mode") and not service.config.get("networks"):
            service.config = {**service.config, "networks": {"default": None}}
    used_default = any("default" in (s.config.get("networks") or {}) for s in services.values())
    for key, value in {**({"default": {}} if used_default else {}), **declared}.items():
        net = dict(value or {})
        external = net.get("external")
        if isinstance(external, dict):  # the older form: external: {name: x}
            net["name"] = external.get("name") or net.get("name")
            net["external"] = True
        net["name"] = net.get("name") or (key if net.get("external") else f"{project}_{key}")
        if "labels" in net:
            net["labels"] = key_value_map(net["labels"])
        networks[key] = net
    return networks


def _volumes(project: str, declared: dict) -> dict[str, dict]:
    volumes: dict[str, dict] = {}
    for key, value in declared.items():
        vol = dict(value or {})
        external = vol.get("external")
        if isinstance(external, dict):
            vol["name"] = external.get("name") or vol.get("name")
            vol["external"] = True
        vol["name"] = vol.get("name") or (key if vol.get("external") else f"{project}_{key}")
        if "labels" in vol:
            vol["labels"] = key_value_map(vol["labels"])
        volumes[key] = vol
    return volumes


