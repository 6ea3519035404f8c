"""``--registry URL`` / ``--registry-impl NAME``: which registry the registry suite checks.

Two ways to name the registry under test:

- ``--registry URL [--registry-user U --registry-password P] [--registry-ca FILE]
  [--registry-capability NAME ...]``: any running registry; checks needing a
  configuration it does not have (delete off, another auth scheme, GC) skip.
- ``--registry-impl distribution|refregistry`` or ``--registry-profile PATH``:
  the fixtures start the implementation themselves, once per configuration
  and session (plain HTTP, delete off, htpasswd over TLS, token auth), on a
  free loopback port in a temp dir, and stop it and remove the dir at the end.

Fixtures: ``registry`` (the main target), ``registry_nodelete``,
``registry_basic``, ``registry_token``, ``registry_factory`` (a fresh
instance for a destructive check such as garbage collection) and ``repo`` (a
repository name unique to the check). Checks needing a capability the
registry lacks are skipped; known deviations become strict expected failures of the exact failure named.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from .checks import mark_for_subject
from .errors import ConformanceError
from .registry_client import Endpoint, RegistryClient, parse_challenge
from .registry_profile import (KNOWN_CAPABILITIES, RegistryProfile, load_registry_profile, registry_profile_by_name,
                               url_profile)
from .registry_server import RunningRegistry, start_registry
from .report_plugin import register_describer

DEFAULT_IMPL = "distribution"
FIXTURES = frozenset({"registry", "registry_nodelete", "registry_basic", "registry_token", "registry_factory"})

PROFILE_KEY = pytest.StashKey[RegistryProfile]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--registry", metavar="URL", default=None, help="check the registry running at URL")
    group.addoption("--registry-user", metavar="USER", default=None, help="user for --registry")
    group.addoption("--registry-password", metavar="PASSWORD", default=None,
                    help="password for --registry (or $CONFORMANCE_REGISTRY_PASSWORD)")
    group.addoption("--registry-ca", metavar="FILE", default=None, help="CA bundle the --registry URL's certificate chains to")
    group.addoption("--registry-capability", metavar="NAME", action="append", default=[],
                    help=f"an optional feature the --registry URL offers (repeatable): {', '.join(sorted(KNOWN_CAPABILITIES))}")
    group.addoption("--registry-name", metavar="NAME", default=None, help="name of the --registry URL in reports")
    group.addoption("--registry-impl", metavar="NAME", default=None,
                    help=f"start this implementation from fixtures/registries/ (default: $CONFORMANCE_REGISTRY_IMPL or {DEFAULT_IMPL})")
    group.addoption("--registry-profile", metavar="PATH", default=None, help="start the registry a profile TOML describes")


def _url_name(url: str) -> str:
    parts = urlsplit(url)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", parts.netloc or url)


def resolve_registry_profile(config: pytest.Config) -> RegistryProfile:
    if PROFILE_KEY not in config.stash:
        url = config.getoption("registry")
        try:
            if url:
                if config.getoption("registry_impl") or config.getoption("registry_profile"):
                    raise ConformanceError("--registry URL checks a running registry; do not combine it with --registry-impl/--registry-profile")
                if not re.match(r"https?://[^/]+/?$", url):
                    raise ConformanceError(f"--registry {url!r} must be a base URL like https://host:port")
                profile = url_profile(config.getoption("registry_name") or _url_name(url), config.getoption("registry_capability"))
            elif config.getoption("registry_profile"):
                profile = load_registry_profile(Path(config.getoption("registry_profile")))
            else:
                profile = registry_profile_by_name(config.getoption("registry_impl") or os.environ.get("CONFORMANCE_REGISTRY_IMPL") or DEFAULT_IMPL)
        except ConformanceError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[PROFILE_KEY] = profile
    return config.stash[PROFILE_KEY]


def describe_registry(config: pytest.Config, name: str) -> dict:
    profile = resolve_registry_profile(config)
    version = ""
    if profile.version:
        try:
            done = subprocess.run(profile.command("version", ""), capture_output=True, text=True, timeout=30)
            version = (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else ""
        except (OSError, subprocess.TimeoutExpired) as exc:
            version = f"unknown ({exc})"
    return {
        "version": version,
        "url": config.getoption("registry") or "",
        "profile": str(profile.path or ""),
        "capabilities": sorted(profile.capabilities),
        "deviations": {k: d.describe() for k, d in profile.deviations.items()},
    }


def pytest_configure(config: pytest.Config) -> None:
    register_describer(config, "registry", describe_registry)
    if any(config.getoption(o) for o in ("registry", "registry_impl", "registry_profile")):
        resolve_registry_profile(config)  # a bad option or profile is a usage error before collection


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    registry_items = [item for item in items if FIXTURES & set(getattr(item, "fixturenames", ()))]
    if not registry_items:
        return
    profile = resolve_registry_profile(config)
    for item in registry_items:
        mark_for_subject(item, "registry", profile)


@dataclass
class Registry:
    """The registry under test in one configuration.

    ``running`` is set when the suite started it (then GC and the config are
    at hand); ``endpoint.client()`` gives an authenticated httpx client.
    """

    profile: RegistryProfile
    endpoint: Endpoint
    running: RunningRegistry | None = None

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def url(self) -> str:
        return self.endpoint.url

    def client(self, **kwargs) -> RegistryClient:
        return self.endpoint.client(**kwargs)


class Launcher:
    """Starts each configuration of the implementation once, lazily; stops them all at the end."""

    def __init__(self, profile: RegistryProfile):
        self.profile = profile
        self.started: dict[str, Registry] = {}
        self.extra: list[RunningRegistry] = []

    def get(self, kind: str) -> Registry:
        if kind not in self.started:
            try:
                running = start_registry(self.profile, kind)
            except ConformanceError as exc:
                pytest.exit(str(exc), returncode=3)
            self.started[kind] = Registry(self.profile, running.endpoint, running)
        return self.started[kind]

    def fresh(self, kind: str) -> Registry:
        running = start_registry(self.profile, kind)
        self.extra.append(running)
        return Registry(self.profile, running.endpoint, running)

    def stop_all(self) -> None:
        for reg in self.started.values():
            reg.running.stop()
        for running in self.extra:
            running.stop()
        self.started.clear()
        self.extra.clear()


def _url_endpoint(config: pytest.Config) -> Endpoint:
    url = config.getoption("registry").rstrip("/")
    ca = config.getoption("registry_ca")
    user = config.getoption("registry_user")
    password = config.getoption("registry_password") or os.environ.get("CONFORMANCE_REGISTRY_PASSWORD")
    verify = ssl.create_default_context(cafile=ca) if ca else True
    try:
        probe = httpx.get(url + "/v2/", verify=verify, timeout=30)
    except httpx.HTTPError as exc:
        pytest.exit(f"registry {url} does not answer /v2/: {exc}", returncode=3)
    scheme, _ = parse_challenge(probe.headers.get("WWW-Authenticate", "")) if probe.status_code == 401 else ("", {})
    auth = {"basic": "basic", "bearer": "token"}.get(scheme, "none")
    return Endpoint(url, user, password, Path(ca) if ca else None, auth)


@pytest.fixture(scope="session")
def registry_launcher(pytestconfig: pytest.Config):
    profile = resolve_registry_profile(pytestconfig)
    if not profile.startable:
        yield None
        return
    launcher = Launcher(profile)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="session")
def registry(pytestconfig: pytest.Config, registry_launcher: Launcher | None) -> Registry:
    """The main registry under test: plain HTTP with delete on when the suite starts it."""
    if registry_launcher is None:
        return Registry(resolve_registry_profile(pytestconfig), _url_endpoint(pytestconfig))
    return registry_launcher.get("plain")


@pytest.fixture(scope="session")
def registry_nodelete(registry_launcher: Launcher | None, request: pytest.FixtureRequest) -> Registry:
    """The registry with deletion disabled (``storage.delete.enabled: false``)."""
    if registry_launcher is None:
        main = request.getfixturevalue("registry")
        if main.profile.has("delete"):
            pytest.skip("the --registry URL has delete on (capability 'delete'); this check needs it off")
        return main
    return registry_launcher.get("nodelete")


@pytest.fixture(scope="session")
def registry_basic(registry_launcher: Launcher | None, request: pytest.FixtureRequest) -> Registry:
    """The registry over TLS (test CA) with htpasswd Basic auth."""
    if registry_launcher is None:
        main = request.getfixturevalue("registry")
        if main.endpoint.auth != "basic" or main.endpoint.username is None:
            pytest.skip("the --registry URL does not ask for Basic auth, or no --registry-user was given")
        return main
    return registry_launcher.get("basic-tls")


@pytest.fixture(scope="session")
def registry_token(registry_launcher: Launcher | None, request: pytest.FixtureRequest) -> Registry:
    """The registry with token auth; started registries get tokens from an in-process issuer."""
    if registry_launcher is None:
        main = request.getfixturevalue("registry")
        if main.endpoint.auth != "token" or main.endpoint.username is None:
            pytest.skip("the --registry URL does not ask for Bearer tokens, or no --registry-user was given")
        return main
    return registry_launcher.get("token")


@pytest.fixture
def registry_factory(registry_launcher: Launcher | None) -> Callable[[str], Registry]:
    """``registry_factory(kind)``: a fresh instance for this check alone (e.g. to run GC on)."""
    if registry_launcher is None:
        pytest.skip("needs a registry the suite starts itself (--registry-impl), not a --registry URL")
    made: list[Registry] = []

    def make(kind: str = "plain") -> Registry:
        reg = registry_launcher.fresh(kind)
        made.append(reg)
        return reg

    yield make
    for reg in made:
        reg.running.stop()
        if reg.running in registry_launcher.extra:
            registry_launcher.extra.remove(reg.running)


def repository_name(prefix: str, run: str, test_name: str) -> str:
    """A valid, unique repository name for one check. Pure."""
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")[:48].strip("-") or "check"
    return f"{prefix}/{run}/{slug}"


_RUN = os.urandom(4).hex()


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name no other check (or run) uses."""
    worker = getattr(request.config, "workerinput", {}).get("workerid", "")
    return repository_name("conformance", _RUN + worker.replace("gw", "w"), request.node.name)
