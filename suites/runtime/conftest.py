"""Shared helpers of the runtime suite: docker's documentation addresses and
small waits on container state."""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest

from conformance.suite_support import DOCS
RUN_EXIT_STATUS = f"{DOCS}/reference/cli/docker/container/run/#exit-status"
STOP = f"{DOCS}/reference/cli/docker/container/stop/"
KILL = f"{DOCS}/reference/cli/docker/container/kill/"
WAIT = f"{DOCS}/reference/cli/docker/container/wait/"
INSPECT = f"{DOCS}/reference/cli/docker/inspect/"
RESTART = f"{DOCS}/engine/containers/start-containers-automatically/#use-a-restart-policy"
RESOURCES = f"{DOCS}/engine/containers/resource_constraints/#memory"
VOLUMES = f"{DOCS}/engine/storage/volumes/"
BIND_MOUNTS = f"{DOCS}/engine/storage/bind-mounts/"


@pytest.fixture
def image(test_image) -> str:
    """The plain busybox test image."""
    return test_image.base


def parse_time(value: str) -> datetime:
    """An engine timestamp (RFC 3339 with up to nanoseconds, any offset) as an aware datetime."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)(?: .*)?", value.strip())
    if not m:
        raise AssertionError(f"not an RFC 3339 timestamp: {value!r}")
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")


def wait_exited(engine, name: str, timeout: float = 30.0) -> dict:
    return engine.wait_for(lambda: (s := engine.state(name))["Status"] == "exited" and s,
                           timeout=timeout, what=f"{name} to exit")


def stays(engine, name: str, seconds: float, predicate, what: str) -> dict:
    """Assert ``predicate(state)`` holds throughout ``seconds`` (polled)."""
    deadline = time.monotonic() + seconds
    while True:
        state = engine.state(name)
        assert predicate(state), f"{engine.name}: {what}; state: {state}"
        if time.monotonic() > deadline:
            return state
        time.sleep(0.2)
