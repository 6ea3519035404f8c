"""Shared helpers of the compose suite: the Compose specification's and
docker's documentation addresses, the ``compose`` fixture (one project of the
engine profile's Compose implementation, torn down after the check) and the
Compose file fragments the checks share.

The subject is the ``[compose]`` table of the engine profile (``--engine``):
docker-compose 1.29 for docker, podman-compose 1.0 for podman, ``refengine
compose`` for refengine. Every check requires the ``compose`` capability.
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime

import pytest

from conformance.compose import ComposeProject
from conformance.suite_support import DOCS

SPEC = "https://github.com/compose-spec/compose-spec/blob/master/spec.md"
MODEL = f"{SPEC}#the-compose-application-model"
CLI = f"{DOCS}/reference/cli/docker/compose"
INTERPOLATION = f"{DOCS}/compose/how-tos/environment-variables/variable-interpolation/"
PROJECT_NAME = f"{DOCS}/compose/how-tos/project-name/"
ENVVARS = f"{DOCS}/compose/how-tos/environment-variables/envvars/"
PROFILES = f"{DOCS}/compose/how-tos/profiles/"
MULTIPLE_FILES = f"{DOCS}/compose/how-tos/multiple-compose-files/merge/"
NETWORKING = f"{DOCS}/compose/how-tos/networking/"
STARTUP_ORDER = f"{DOCS}/compose/how-tos/startup-order/"

#: A main process that idles and ends at SIGTERM at once.
IDLE = """["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]"""

#: Bounded waits (seconds).
WAIT = 30.0

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

@pytest.fixture
def image(test_image) -> str:
    """The plain busybox test image, referenced by a tag the engine holds
    (no implementation then tries to pull)."""
    return test_image.base


@pytest.fixture
def compose(engine, test_image, tmp_path):
    """One Compose project of the profile's implementation, in its own
    directory under tmp_path; ``down -v`` and a sweep by label afterwards."""
    project = ComposeProject(engine, tmp_path / "project")
    yield project
    leftovers = project.teardown()
    if leftovers:
        warnings.warn(f"{project.name}: could not remove {', '.join(leftovers)}")


def subject(compose: ComposeProject) -> str:
    """The implementation as assertion messages name it."""
    return " ".join(compose.profile.argv)


def plain(text: str) -> str:
    """Output without ANSI colour codes."""
    return ANSI.sub("", text)


def env_of(engine, container: str) -> dict[str, str]:
    """A container's configured environment (inspect's Config.Env)."""
    return dict(e.split("=", 1) for e in engine.inspect(container, kind="container")["Config"]["Env"] or [])


def instant(stamp: str) -> tuple[int, int]:
    """An RFC 3339 time as inspect prints it (nanoseconds, trailing zeros
    trimmed, any offset) as (epoch seconds, nanoseconds), which orders
    correctly where the strings do not (".1234567Z" > ".12345678Z")."""
    found = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9})\d*)?(Z|[+-]\d\d:\d\d)", stamp.strip())
    assert found, f"not an RFC 3339 time: {stamp!r}"
    base, fraction, zone = found.groups()
    seconds = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return int(seconds), int((fraction or "0").ljust(9, "0"))


def idle_service(image: str, extra: str = "") -> str:
    """A service body (indented for ``services:``) that idles until SIGTERM."""
    if extra and not extra.endswith("\n"):
        extra += "\n"
    return f"    image: {image}\n    command: {IDLE}\n    stop_grace_period: 1s\n{extra}"
