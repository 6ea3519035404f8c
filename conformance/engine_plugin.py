"""``--engine NAME`` / ``--engine-profile PATH``: which engine the suites drive.

Provides the ``engine`` fixture (an :class:`~conformance.engine.Engine` whose
objects are removed after each test, also when it fails) and ``test_image``
(the offline busybox images, loaded once per session). Checks needing a
capability the profile lacks are skipped with the reason; checks listed as
known deviations become strict expected failures of the exact failure the
profile names (:mod:`conformance.deviation`).
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path

import pytest

from . import testimage
from .checks import mark_for_subject
from .engine import Engine, EngineCallFailed
from .errors import ConformanceError
from .profile import Profile, load_profile, profile_by_name
from .report_plugin import register_describer

#: The reference engine is the default: it needs no daemon and passes every engine suite.
DEFAULT_ENGINE = "refengine"

PROFILE_KEY = pytest.StashKey[Profile]()
RUN_ID_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "container conformance")
    group.addoption("--engine", metavar="NAME", default=None,
                    help=f"engine profile from fixtures/engines/ (default: $CONFORMANCE_ENGINE or {DEFAULT_ENGINE})")
    group.addoption("--engine-profile", metavar="PATH", default=None, help="an engine profile TOML file")


def engine_requested(config: pytest.Config) -> bool:
    return bool(config.getoption("engine") or config.getoption("engine_profile"))


def resolve_profile(config: pytest.Config) -> Profile:
    if PROFILE_KEY not in config.stash:
        path = config.getoption("engine_profile")
        name = config.getoption("engine") or os.environ.get("CONFORMANCE_ENGINE") or DEFAULT_ENGINE
        try:
            profile = load_profile(Path(path)) if path else profile_by_name(name)
        except ConformanceError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[PROFILE_KEY] = profile
    return config.stash[PROFILE_KEY]


def run_id(config: pytest.Config) -> str:
    """Unique per session (and per xdist worker), short enough for names."""
    if RUN_ID_KEY not in config.stash:
        worker = getattr(config, "workerinput", {}).get("workerid", "")
        config.stash[RUN_ID_KEY] = secrets.token_hex(4) + (worker.replace("gw", "w") if worker else "")
    return config.stash[RUN_ID_KEY]


def describe_engine(config: pytest.Config, name: str) -> dict:
    """For the results file: what exactly was tested."""
    profile = resolve_profile(config)
    probe = Engine(profile, run_id(config))
    try:
        version = probe.version()
    finally:
        probe.close()
    return {
        "version": version,
        "profile": str(profile.path or ""),
        "capabilities": sorted(profile.capabilities),
        "deviations": {k: d.describe() for k, d in profile.deviations.items()},
    }


def pytest_configure(config: pytest.Config) -> None:
    register_describer(config, "engine", describe_engine)
    if engine_requested(config):
        resolve_profile(config)  # a bad profile is a usage error before collection


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    engine_items = [item for item in items if "engine" in getattr(item, "fixturenames", ())]
    if not engine_items:
        return
    profile = resolve_profile(config)
    for item in engine_items:
        mark_for_subject(item, "engine", profile)


@pytest.fixture(scope="session")
def engine_session(pytestconfig: pytest.Config) -> Engine:
    engine = Engine(resolve_profile(pytestconfig), run_id(pytestconfig))
    probe = engine.cli("version", timeout=60)
    if not probe.ok:
        # Every check needing the engine errors with this message (pytest
        # caches a session fixture's failure): the results name the cause.
        last = (probe.stderr or probe.stdout).strip().splitlines()[-1:] or ["no output"]
        engine.close()
        raise EngineCallFailed(f"engine {engine.name} does not answer: {' '.join(probe.argv)}: {last[0]}")
    yield engine
    leftovers = engine.cleanup()
    engine.close()
    if leftovers:
        warnings.warn(f"{engine.name}: could not remove {', '.join(leftovers)}")


@pytest.fixture
def engine(engine_session: Engine) -> Engine:
    """The engine under test; what a check creates through it is removed after the check."""
    yield engine_session
    leftovers = engine_session.cleanup()
    if leftovers:
        warnings.warn(f"{engine_session.name}: could not remove {', '.join(leftovers)}")


class TestImages:
    """References of the loaded test images, by variant: ``test_image.base``."""

    def __init__(self, images: testimage.ImageSet, docker_archive: Path, oci_archive: Path):
        self.set, self.docker_archive, self.oci_archive = images, docker_archive, oci_archive

    def __getattr__(self, variant: str) -> str:
        try:
            return self.set[variant].ref
        except KeyError:
            raise AttributeError(variant) from None


@pytest.fixture(scope="session")
def test_image(engine_session: Engine, tmp_path_factory: pytest.TempPathFactory) -> TestImages:
    """Build the offline images and load them into the engine once per session.

    The loaded tags are shared by every run (their content is fixed, so runs
    cannot disagree about them) and are therefore left in place.
    """
    try:
        images, docker_path, oci_path = testimage.write_archives(tmp_path_factory.mktemp("test-image"))
    except ConformanceError as exc:
        pytest.exit(str(exc), returncode=3)
    loaded = engine_session.cli("load", "-i", str(docker_path), timeout=300)
    if not loaded.ok:
        raise EngineCallFailed(f"{engine_session.name} could not load the test image:\n{loaded}")
    return TestImages(images, docker_path, oci_path)
