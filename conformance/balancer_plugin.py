"""``--balancer NAME`` / ``--balancer-profile PATH``: the load-balancing subject of suites/ingress.

Fixtures: ``balancer_profile`` (the session's :class:`BalancerProfile`),
``balancer`` (a started :class:`~conformance.balancers.Subject` with
:data:`REPLICAS` replicas, new for each check and removed after it, also when
it fails) and ``load_dir`` (where a check's load runs write their records).
Without ``--balancer`` the checks are skipped with the reason; checks
needing a capability the profile lacks are skipped; known deviations become
strict expected failures of the exact failure named.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from . import testimage
from .balancer_profile import BalancerProfile, available_balancer_profiles, balancer_profile_by_name, load_balancer_profile
from .balancers import DOCKER, HAPROXY, NGINX, SUBJECT_KINDS, Subject, SubjectFailed
from .checks import mark_for_subject
from .errors import ConformanceError
from .report_plugin import register_describer

#: Replicas of the subject each check starts with.
REPLICAS = 3
FIXTURES = frozenset({"balancer", "balancer_profile"})
PROFILE_KEY = pytest.StashKey[BalancerProfile]()
#: The program whose version the results record, per kind.
VERSION_ARGV = {"haproxy": [HAPROXY, "-v"], "nginx": [NGINX, "-v"]}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption("--balancer", metavar="NAME", default=None,
                    help=f"load balancer profile from fixtures/balancers/ for suites/ingress "
                         f"({', '.join(available_balancer_profiles()) or 'none'})")
    group.addoption("--balancer-profile", metavar="PATH", default=None, help="a balancer profile TOML file")


def balancer_requested(config: pytest.Config) -> bool:
    return bool(config.getoption("balancer") or config.getoption("balancer_profile"))


def resolve_balancer_profile(config: pytest.Config) -> BalancerProfile:
    if PROFILE_KEY not in config.stash:
        try:
            path = config.getoption("balancer_profile")
            profile = load_balancer_profile(Path(path)) if path else balancer_profile_by_name(config.getoption("balancer"))
        except ConformanceError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[PROFILE_KEY] = profile
    return config.stash[PROFILE_KEY]


def describe_balancer(config: pytest.Config, name: str) -> dict:
    profile = resolve_balancer_profile(config)
    version = ""
    argv = VERSION_ARGV.get(profile.kind)
    if argv:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            lines = (done.stdout + done.stderr).strip().splitlines()
            version = lines[0] if lines else ""
        except (OSError, subprocess.TimeoutExpired) as exc:
            version = f"unknown ({exc})"
    return {"version": version, "kind": profile.kind, "keepalive": profile.keepalive, "choice": profile.choice,
            "profile": str(profile.path or ""), "capabilities": sorted(profile.capabilities),
            "deviations": {k: d.describe() for k, d in profile.deviations.items()}}


def pytest_configure(config: pytest.Config) -> None:
    register_describer(config, "balancer", describe_balancer)
    if balancer_requested(config):
        resolve_balancer_profile(config)  # a bad option or profile is a usage error before collection


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    balancer_items = [item for item in items if FIXTURES & set(getattr(item, "fixturenames", ()))]
    if not balancer_items:
        return
    if not balancer_requested(config):
        skip = pytest.mark.skip(reason=f"needs a load balancer: --balancer {'|'.join(available_balancer_profiles())}")
        for item in balancer_items:
            item.add_marker(skip)
        return
    profile = resolve_balancer_profile(config)
    for item in balancer_items:
        mark_for_subject(item, "balancer", profile)


@pytest.fixture(scope="session")
def balancer_profile(pytestconfig: pytest.Config) -> BalancerProfile:
    return resolve_balancer_profile(pytestconfig)


@pytest.fixture(scope="session")
def balancer_image(balancer_profile: BalancerProfile, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The offline test image in the host's dockerd, where the standalone subjects run
    their backends (loaded once; its content is fixed, so it is left in place)."""
    images, docker_archive, _ = testimage.write_archives(tmp_path_factory.mktemp("balancer-image"))
    loaded = subprocess.run([DOCKER, "load", "-i", str(docker_archive)], capture_output=True, text=True, timeout=300)
    if loaded.returncode != 0:
        raise SubjectFailed(f"docker could not load the test image: {loaded.stderr.strip()[-500:]}")
    return images["base"].ref


@pytest.fixture(scope="session")
def balancer_cluster(balancer_profile: BalancerProfile, tmp_path_factory: pytest.TempPathFactory):
    """The swarm a ``swarm-mesh`` or ``swarm-dnsrr`` subject runs on (conformance/meshsubject.py): started at
    the first check that needs it, stopped after the session (also when a check failed)."""
    from .cluster import ClusterFailed
    from .meshsubject import session_cluster

    started = session_cluster(balancer_profile, tmp_path_factory.mktemp("mesh-image"))
    yield started
    leftovers = started.stop()
    if leftovers:
        raise ClusterFailed(f"cluster {started.rid}: could not remove {', '.join(leftovers)}")


@pytest.fixture
def balancer(request: pytest.FixtureRequest, balancer_profile: BalancerProfile) -> Subject:
    """The subject with :data:`REPLICAS` replicas answering; removed after the check."""
    from .meshsubject import SWARM_SUBJECTS

    if balancer_profile.kind in SWARM_SUBJECTS:
        cluster = request.getfixturevalue("balancer_cluster")
        subject = SWARM_SUBJECTS[balancer_profile.kind](balancer_profile, cluster.images["base"].ref, cluster)
    else:
        kind = SUBJECT_KINDS.get(balancer_profile.kind)
        if kind is None:
            raise SubjectFailed(f"no subject class for balancer kind {balancer_profile.kind!r} yet "
                                f"(known: {', '.join([*SUBJECT_KINDS, *SWARM_SUBJECTS])})")
        subject = kind(balancer_profile, request.getfixturevalue("balancer_image"))
    try:
        subject.start(REPLICAS)
    except BaseException:
        subject.stop()
        raise
    yield subject
    leftovers = subject.stop()
    if leftovers:
        raise SubjectFailed(f"{subject.name}: could not remove {', '.join(leftovers)}")


@pytest.fixture
def load_dir(tmp_path: Path) -> Path:
    """Where the check's load runs write their records and locust's statistics."""
    return tmp_path / "load"
