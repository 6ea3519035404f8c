"""Shared helpers of the CLI suite: docker's documentation addresses and the
test image."""

from __future__ import annotations

import pytest

from conformance.suite_support import CLI_DOCS as DOCS
from conformance.suite_support import ENGINE_DOCS

EXEC = f"{DOCS}/container/exec/"
#: docker-container-exec(1), the man page docker.io 20.10 ships: exec's exit statuses (docs.docker.com has none).
EXEC_EXIT_STATUS = "https://github.com/docker/cli/blob/v20.10.24/man/src/container/exec.md#exit-status"
LOGS = f"{DOCS}/container/logs/"
LOGGING = "https://docs.docker.com/engine/logging/"
CP = f"{DOCS}/container/cp/"
INSPECT = f"{DOCS}/inspect/"
PS = f"{DOCS}/container/ls/"
PAUSE = f"{DOCS}/container/pause/"
UNPAUSE = f"{DOCS}/container/unpause/"
RENAME = f"{DOCS}/container/rename/"
TOP = f"{DOCS}/container/top/"
PORT = f"{DOCS}/container/port/"
WAIT = f"{DOCS}/container/wait/"
STOP = f"{DOCS}/container/stop/"
KILL = f"{DOCS}/container/kill/"
START = f"{DOCS}/container/start/"
RM = f"{DOCS}/container/rm/"
RMI = f"{DOCS}/image/rm/"
VOLUME_RM = f"{DOCS}/volume/rm/"
RUN = f"{DOCS}/container/run/"
RUN_EXIT_STATUS = f"{RUN}#exit-status"
FORMAT = "https://docs.docker.com/engine/cli/formatting/"
TMPFS = f"{ENGINE_DOCS}/storage/tmpfs/"
BIND_MOUNTS = f"{ENGINE_DOCS}/storage/bind-mounts/"
VOLUMES = f"{ENGINE_DOCS}/storage/volumes/"
RUNNING = f"{ENGINE_DOCS}/containers/run/"  # "Running containers": the run options explained


@pytest.fixture
def image(test_image) -> str:
    """The plain busybox test image."""
    return test_image.base
