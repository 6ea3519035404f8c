"""Registry profiles: what the harness knows about a registry implementation, as data.

A profile is a TOML file under ``fixtures/registries/``; with it the suite
starts the registry itself (``--registry-impl NAME``)::

    name = "distribution"
    serve = ["/usr/bin/docker-registry", "serve", "{config}"]        # {config}: the YAML the harness writes
    garbage_collect = ["/usr/bin/docker-registry", "garbage-collect", "{config}"]
    version = ["/usr/bin/docker-registry", "--version"]
    capabilities = ["delete", "catalog", ...]
    [env]
    [deviations."registry/test_push.py::test_x"]                     # the failure it expects
    match = "202"
    evidence = "distribution 2.8.2 answers 202: ..."

A registry met only at a URL (``--registry URL``) gets a profile made from
the command line (:func:`url_profile`): no commands, the capabilities given
with ``--registry-capability``, no deviations.

>>> p = parse_registry_profile('name = "r"\\nserve = ["r", "serve", "{config}"]\\ncapabilities = ["delete"]')
>>> p.has("delete"), p.command("serve", "/tmp/c.yml")
(True, ['r', 'serve', '/tmp/c.yml'])
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from . import FIXTURES_DIR
from .deviation import Deviation, lookup
from .errors import ConformanceError
from .profile import read_profile_table

REGISTRIES_DIR = FIXTURES_DIR / "registries"

#: Optional features a check may require; a profile naming another is a typo.
KNOWN_CAPABILITIES = frozenset(
    {
        "delete",  # DELETE of manifests and blobs is enabled
        "tag-delete",  # DELETE /v2/<name>/manifests/<tag> removes just that tag (a MAY of the spec)
        "catalog",  # GET /v2/_catalog
        "referrers",  # GET /v2/<name>/referrers/<digest> and OCI-Subject
        "sha512",  # blobs addressed by sha512 digests
        "cross-repo-mount",  # POST ?mount=&from= mounts a blob the caller can read
        "basic-auth",  # htpasswd (bcrypt) Basic authentication
        "token-auth",  # Bearer tokens from auth.token.realm (distribution's token protocol)
        "tls",  # served over HTTPS
        "garbage-collect",  # an offline/online `garbage-collect CONFIG [--delete-untagged]` command
        "online-gc",  # garbage-collect is safe while pushes run (not just in read-only mode)
    }
)

_KEYS = {"name", "description", "serve", "garbage_collect", "version", "env", "capabilities", "deviations"}
_COMMANDS = ("serve", "garbage_collect", "version")


@dataclass(frozen=True)
class RegistryProfile:
    """A registry implementation as the harness starts and judges it."""

    name: str
    serve: tuple[str, ...] = ()
    garbage_collect: tuple[str, ...] = ()
    version: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()
    deviations: Mapping[str, Deviation] = field(default_factory=dict)
    description: str = ""
    path: Path | None = None

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def startable(self) -> bool:
        return bool(self.serve)

    def command(self, which: str, config: Path | str) -> list[str]:
        """The argv of ``serve``/``garbage_collect``/``version`` with ``{config}`` filled in."""
        argv = getattr(self, which.replace("-", "_"))
        if not argv:
            raise ConformanceError(f"registry profile {self.name!r} has no {which!r} command")
        return [resolve_program(argv[0])] + [a.replace("{config}", str(config)) for a in argv[1:]]

    def deviation(self, check_id: str) -> Deviation | None:
        """The recorded deviation for a check id, or for its parametrised base."""
        return lookup(self.deviations, check_id)


def resolve_program(program: str) -> str:
    """A bare program name from PATH, else from the running Python's bin dir (a venv not activated)."""
    if "/" in program or shutil.which(program):
        return program
    beside = Path(sys.executable).parent / program
    return str(beside) if beside.exists() else program


def _argv(data: dict, key: str, source: str, required: bool) -> tuple[str, ...]:
    value = data.get(key)
    if value is None and not required:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a for a in value):
        raise ConformanceError(f"{source}: {key!r} must be a non-empty list of strings, e.g. {key} = [\"registry\", \"serve\", \"{{config}}\"]")
    if key != "version" and "{config}" not in value:
        raise ConformanceError(f"{source}: {key!r} must name the configuration file as \"{{config}}\"")
    return tuple(value)


def check_capabilities(caps: object, source: str) -> frozenset[str]:
    if not isinstance(caps, (list, tuple)) or not all(isinstance(c, str) for c in caps):
        raise ConformanceError(f"{source}: 'capabilities' must be a list of strings")
    bad = sorted(set(caps) - KNOWN_CAPABILITIES)
    if bad:
        raise ConformanceError(f"{source}: unknown registry capabilit{'y' if len(bad) == 1 else 'ies'} "
                               f"{', '.join(bad)}; known: {', '.join(sorted(KNOWN_CAPABILITIES))}")
    return frozenset(caps)


def parse_registry_profile(text: str, *, source: str = "<registry profile>") -> RegistryProfile:
    """Parse and validate registry profile TOML. Pure: nothing is started or read."""
    data = read_profile_table(text, source, _KEYS)
    name, env, devs = data["name"], data.get("env", {}), data.get("deviations", {})
    return RegistryProfile(
        name=name,
        serve=_argv(data, "serve", source, required=True),
        garbage_collect=_argv(data, "garbage_collect", source, required=False),
        version=_argv(data, "version", source, required=False),
        env=MappingProxyType(dict(env)),
        capabilities=check_capabilities(data.get("capabilities", []), source),
        deviations=MappingProxyType(dict(devs)),
        description=str(data.get("description", "")),
    )


def load_registry_profile(path: Path) -> RegistryProfile:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConformanceError(f"cannot read registry profile {path}: {exc.strerror}") from None
    return replace(parse_registry_profile(text, source=str(path)), path=path)


def available_registry_profiles() -> dict[str, Path]:
    return {p.stem: p for p in sorted(REGISTRIES_DIR.glob("*.toml"))}


def registry_profile_by_name(name: str) -> RegistryProfile:
    """The profile ``fixtures/registries/NAME.toml``."""
    profiles = available_registry_profiles()
    if name not in profiles:
        raise ConformanceError(f"unknown registry implementation {name!r}; known: {', '.join(profiles) or 'none'} "
                               "(or pass --registry-profile PATH, or --registry URL)")
    return load_registry_profile(profiles[name])


def url_profile(name: str, capabilities: list[str]) -> RegistryProfile:
    """The profile of a registry met only at a URL: capabilities from the command line."""
    return RegistryProfile(name=name, capabilities=check_capabilities(capabilities, "--registry-capability"))
