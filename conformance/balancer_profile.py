"""Load-balancer profiles: what the harness knows about a balancing subject, as data.

A profile is a TOML file under ``fixtures/balancers/``; ``--balancer NAME``
picks one, and :mod:`conformance.balancers` starts the subject its ``kind``
names::

    name = "haproxy"
    kind = "haproxy"                 # which Subject class starts it (balancers.SUBJECT_KINDS)
    description = "Debian's haproxy 2.6 in front of docker containers"
    keepalive = "per-request"        # how a keep-alive client is balanced (below)
    choice = "round-robin"           # how a new connection's replica is chosen (below)
    capabilities = ["ingress-balance", "ingress-scale", ...]
    [settings]                       # handed to the subject class as is (strings, numbers, booleans)
    replicas = 3
    [deviations."ingress/test_fairness.py::test_x"]   # the failure it expects
    match = "share"
    evidence = "what was seen, with versions"

``keepalive`` documents how the subject balances a client that keeps its
connection open: ``"per-request"`` (an HTTP-aware proxy: each request is
balanced on its own, so a keep-alive client is spread like any other) or
``"per-connection"`` (an L4 balancer such as IPVS: the connection is bound to
one replica, so all of a keep-alive client's requests go there, moby#25325).

``choice`` documents how the subject picks the replica of a new connection:
``"round-robin"`` (the default: each replica in turn) or ``"random"`` (docker's
embedded DNS shuffles a dnsrr service's addresses in every answer, and a client
connects to the first one that answers: libnetwork's ``shuffleAddr``). Over
thousands of requests both are fair; over the handful of connections of
keep-alive users only round robin is sure to reach every replica.

>>> p = parse_balancer_profile('name = "b"\\nkind = "haproxy"\\nkeepalive = "per-request"\\n'
...                            'capabilities = ["ingress-balance"]')
>>> p.has("ingress-balance"), p.has("ingress-drain"), p.keepalive, p.choice
(True, False, 'per-request', 'round-robin')
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from . import FIXTURES_DIR
from .deviation import Deviation, lookup
from .errors import ConformanceError
from .profile import read_profile_table

BALANCERS_DIR = FIXTURES_DIR / "balancers"

#: Optional features a check may require; a profile naming another is a typo.
KNOWN_CAPABILITIES = frozenset(
    {
        # The subject starts on this machine and balances HTTP requests over its
        # replicas: every check of suites/ingress needs it. docker swarm's routing
        # mesh lacks it here, because it needs IPVS and this kernel has none (its
        # checks are skipped as a missing capability: nothing was measured, so
        # nothing deviates).
        "ingress-balance",
        "ingress-scale",  # replicas can be added and removed while load runs (scale)
        "ingress-kill",  # a replica can be SIGKILLed while load runs (kill)
        "ingress-update",  # a rolling update, start-first, with a health check (start_update)
        "ingress-drain",  # a node can be drained: its replicas leave the rotation (drain)
        "ingress-nodes",  # several nodes, each with an entry point that reaches every node's replicas
    }
)
#: The Subject classes a profile's kind may name (conformance.balancers.SUBJECT_KINDS
#: maps each to its class; "swarm-mesh" is a swarm's routing mesh).
KNOWN_KINDS = frozenset({"haproxy", "nginx", "swarm-mesh", "swarm-dnsrr"})
KEEPALIVE_MODES = ("per-request", "per-connection")
CHOICES = ("round-robin", "random")

_KEYS = {"name", "kind", "description", "keepalive", "choice", "capabilities", "settings", "deviations"}


@dataclass(frozen=True)
class BalancerProfile:
    """A load-balancing subject as the harness starts and judges it."""

    name: str
    kind: str
    keepalive: str
    choice: str = "round-robin"
    capabilities: frozenset[str] = frozenset()
    settings: Mapping[str, object] = field(default_factory=dict)
    deviations: Mapping[str, Deviation] = field(default_factory=dict)
    description: str = ""
    path: Path | None = None

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def deviation(self, check_id: str) -> Deviation | None:
        """The recorded deviation for a check id, or for its parametrised base."""
        return lookup(self.deviations, check_id)


def check_capabilities(caps: object, source: str) -> frozenset[str]:
    if not isinstance(caps, (list, tuple)) or not all(isinstance(c, str) for c in caps):
        raise ConformanceError(f"{source}: 'capabilities' must be a list of strings")
    bad = sorted(set(caps) - KNOWN_CAPABILITIES)
    if bad:
        raise ConformanceError(f"{source}: unknown balancer capabilit{'y' if len(bad) == 1 else 'ies'} "
                               f"{', '.join(bad)}; known: {', '.join(sorted(KNOWN_CAPABILITIES))}")
    return frozenset(caps)


def parse_balancer_profile(text: str, *, source: str = "<balancer profile>") -> BalancerProfile:
    """Parse and validate balancer profile TOML. Pure: nothing is started or read."""
    data = read_profile_table(text, source, _KEYS)
    kind = data.get("kind")
    if kind not in KNOWN_KINDS:
        raise ConformanceError(f"{source}: 'kind' must be one of {', '.join(sorted(KNOWN_KINDS))}, not {kind!r}")
    keepalive = data.get("keepalive")
    if keepalive not in KEEPALIVE_MODES:
        raise ConformanceError(f"{source}: 'keepalive' must be one of {', '.join(KEEPALIVE_MODES)} "
                               f"(how a keep-alive client is balanced), not {keepalive!r}")
    choice = data.get("choice", "round-robin")
    if choice not in CHOICES:
        raise ConformanceError(f"{source}: 'choice' must be one of {', '.join(CHOICES)} "
                               f"(how a new connection's replica is chosen), not {choice!r}")
    settings = data.get("settings", {})
    if not isinstance(settings, dict) or not all(isinstance(v, (str, int, float, bool)) for v in settings.values()):
        raise ConformanceError(f"{source}: [settings] values must be strings, numbers or booleans")
    return BalancerProfile(
        name=data["name"],
        kind=kind,
        keepalive=keepalive,
        choice=choice,
        capabilities=check_capabilities(data.get("capabilities", []), source),
        settings=MappingProxyType(dict(settings)),
        deviations=MappingProxyType(dict(data["deviations"])),
        description=str(data.get("description", "")),
    )


def load_balancer_profile(path: Path) -> BalancerProfile:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConformanceError(f"cannot read balancer profile {path}: {exc.strerror}") from None
    return replace(parse_balancer_profile(text, source=str(path)), path=path)


def available_balancer_profiles() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BALANCERS_DIR.glob("*.toml"))}


def balancer_profile_by_name(name: str) -> BalancerProfile:
    """The profile ``fixtures/balancers/NAME.toml``."""
    profiles = available_balancer_profiles()
    if name not in profiles:
        raise ConformanceError(f"unknown balancer {name!r}; known: {', '.join(profiles) or 'none'} "
                               "(or pass --balancer-profile PATH)")
    return load_balancer_profile(profiles[name])
