"""Engine profiles: what the harness knows about an engine, as data.

A profile is a TOML file under ``fixtures/engines/``::

    name = "podman"
    argv = ["podman"]                      # argv prefix of every call
    capabilities = ["oom-kill", ...]       # what the engine can do here
    [env]                                  # added to the environment
    CONTAINERS_CONF = "{profile_dir}/podman-containers.conf"
    [compose]                              # the Compose implementation (suites/compose)
    argv = ["podman-compose"]              # run with [env] too
    container_names = "v1"                 # project_service_1 ("v2": project-service-1)
    [deviations."runtime/test_signals.py::test_x"]   # the failure it expects
    match = "exit 2"                                # regex on the failure message
    evidence = "podman 4.3 exits 2: ..."            # what was seen, with versions

A new engine is a new profile, not new code.

>>> p = load_profile(FIXTURES_DIR / "engines" / "docker.toml")   # doctest: +SKIP
>>> p.has("oom-kill")                                            # doctest: +SKIP
True
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from . import FIXTURES_DIR
from .deviation import Deviation, lookup, parse_deviations
from .errors import ConformanceError

ENGINES_DIR = FIXTURES_DIR / "engines"

#: Capabilities the suites know about; a profile naming another is a typo.
KNOWN_CAPABILITIES = frozenset(
    {
        "oom-kill",  # --memory limits are enforced and OOM kills are reported
        "restart-policies",  # --restart no|on-failure|always|unless-stopped
        "init",  # --init runs a signal-forwarding init as PID 1
        "commit",  # commit turns a container's layer into an image
        "volumes",  # named volumes, bind mounts, --volumes-from, VOLUME
        "build",  # build from a Dockerfile
        "bridge-network",  # the default bridge: an address on the engine's bridge, reached by address
        "user-networks",  # network create/connect/disconnect/inspect/rm: user-defined bridge networks
        "embedded-dns",  # names and --network-alias resolve on user-defined networks
        "link",  # --link NAME:ALIAS on the default bridge
        "icc-off",  # network create -o com.docker.network.bridge.enable_icc=false
        "host-network",  # --network host
        "published-ports",  # -p HOST:CONTAINER, -p CONTAINER, -P, port
        "swarm",  # swarm mode services
        "ingress-mesh",  # swarm ingress routing mesh (needs IPVS)
        "swarm-overlay",  # swarm overlay networks: tasks on several nodes, dnsrr service names
        "swarm-vip",  # a service's virtual IP balancing between its tasks (--endpoint-mode vip; needs IPVS)
        "pause",  # pause/unpause through the freezer
        "save-oci",  # save writes an OCI layout next to manifest.json
        "cp-follow-link",  # cp -L/--follow-link follows a symbolic link in SRC_PATH
        # healthcheck probes run on their own (--health-cmd, HEALTHCHECK); podman 4.3 runs
        # them from systemd timers only, and these machines have no systemd
        "healthcheck",
        "compose",  # a Compose implementation, named by the profile's [compose] table
    }
)

_KEYS = {"name", "description", "argv", "env", "capabilities", "deviations", "compose"}
_COMPOSE_KEYS = {"argv", "container_names"}
#: How a Compose implementation names a service's containers.
COMPOSE_NAME_SCHEMES = {"v1": "project_service_1", "v2": "project-service-1"}


@dataclass(frozen=True)
class ComposeProfile:
    """The Compose implementation that drives an engine (``[compose]``):
    ``argv`` is its argv prefix (run with the profile's ``[env]``),
    ``container_names`` its naming scheme, a key of COMPOSE_NAME_SCHEMES."""

    argv: tuple[str, ...]
    container_names: str

    def container_name(self, project: str, service: str, number: int = 1) -> str:
        """The name this implementation gives container ``number`` of a service."""
        sep = "_" if self.container_names == "v1" else "-"
        return f"{project}{sep}{service}{sep}{number}"


@dataclass(frozen=True)
class Profile:
    """An engine as the harness drives it: immutable, validated on load."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()
    deviations: Mapping[str, Deviation] = field(default_factory=dict)
    description: str = ""
    path: Path | None = None
    compose: ComposeProfile | None = None

    @property
    def command(self) -> tuple[str, ...]:
        """argv with its program found on PATH or, failing that, beside this
        interpreter (a venv's console scripts work without activating it)."""
        program = self.argv[0]
        if "/" not in program and not shutil.which(program):
            beside = Path(sys.executable).parent / program
            if beside.exists():
                return (str(beside), *self.argv[1:])
        return self.argv

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def deviation(self, check_id: str) -> Deviation | None:
        """The recorded deviation for a check id, or for its parametrised base."""
        return lookup(self.deviations, check_id)


def read_profile_table(text: str, source: str, keys: set[str]) -> dict:
    """The checks every profile (engine or registry) shares: valid TOML, only
    ``keys``, a ``name``, string ``[env]`` values, ``[deviations]`` mapping
    check ids to the failure each expects (:mod:`conformance.deviation`),
    returned as :class:`Deviation` values. Pure."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConformanceError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - keys
    if unknown:
        raise ConformanceError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(keys))}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConformanceError(f"{source}: 'name' must be a non-empty string")
    env = data.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConformanceError(f"{source}: [env] values must be strings")
    data["deviations"] = parse_deviations(data.get("deviations", {}), source=source)
    return data


def _parse_compose(table, source: str, pdir: str) -> ComposeProfile | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConformanceError(f"{source}: [compose] must be a table")
    unknown = set(table) - _COMPOSE_KEYS
    if unknown:
        raise ConformanceError(f"{source}: [compose]: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_COMPOSE_KEYS))}")
    argv = table.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
        raise ConformanceError(f"{source}: [compose] 'argv' must be a non-empty list of strings, e.g. argv = [\"docker-compose\"]")
    names = table.get("container_names")
    if names not in COMPOSE_NAME_SCHEMES:
        raise ConformanceError(f"{source}: [compose] 'container_names' must be one of {', '.join(f'{k!r} ({v})' for k, v in COMPOSE_NAME_SCHEMES.items())}")
    return ComposeProfile(argv=tuple(a.replace("{profile_dir}", pdir) for a in argv), container_names=names)


def parse_profile(text: str, *, source: str = "<profile>", profile_dir: Path | None = None) -> Profile:
    """Parse and validate profile TOML. Pure: no file or engine is touched."""
    data = read_profile_table(text, source, _KEYS)
    name = data["name"]
    argv = data.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
        raise ConformanceError(f"{source}: 'argv' must be a non-empty list of strings, e.g. argv = [\"docker\"]")
    env = data.get("env", {})
    caps = data.get("capabilities", [])
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise ConformanceError(f"{source}: 'capabilities' must be a list of strings")
    bad = sorted(set(caps) - KNOWN_CAPABILITIES)
    if bad:
        raise ConformanceError(f"{source}: unknown capabilit{'y' if len(bad) == 1 else 'ies'} {', '.join(bad)}; known: {', '.join(sorted(KNOWN_CAPABILITIES))}")
    devs = data.get("deviations", {})
    pdir = str(profile_dir) if profile_dir else "."
    env = {k: v.replace("{profile_dir}", pdir) for k, v in env.items()}
    compose = _parse_compose(data.get("compose"), source, pdir)
    return Profile(
        name=name,
        argv=tuple(a.replace("{profile_dir}", pdir) for a in argv),
        env=MappingProxyType(env),
        capabilities=frozenset(caps),
        deviations=MappingProxyType(dict(devs)),
        description=str(data.get("description", "")),
        path=None,
        compose=compose,
    )


def load_profile(path: Path) -> Profile:
    """Read a profile file; ``{profile_dir}`` in argv and env is its folder."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConformanceError(f"cannot read engine profile {path}: {exc.strerror}") from None
    profile = parse_profile(text, source=str(path), profile_dir=path.resolve().parent)
    return Profile(**{**profile.__dict__, "path": path})


def available_profiles() -> dict[str, Path]:
    return {p.stem: p for p in sorted(ENGINES_DIR.glob("*.toml"))}


def profile_by_name(name: str) -> Profile:
    """The profile ``fixtures/engines/NAME.toml``."""
    profiles = available_profiles()
    if name not in profiles:
        raise ConformanceError(f"unknown engine {name!r}; known: {', '.join(profiles) or 'none'} (or pass --engine-profile PATH)")
    return load_profile(profiles[name])
