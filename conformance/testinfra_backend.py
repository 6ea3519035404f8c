"""A pytest-testinfra backend that runs commands with ``ENGINE exec``.

testinfra's own ``docker://`` and ``podman://`` backends hard-code one
program; this one drives whatever engine profile the harness drives (docker,
podman, nerdctl, refengine, a profile of your own), through the same
:class:`~conformance.engine.Engine` adapter, so an in-container assertion
reads the same on every engine:

>>> host = engine_host(engine, "web")                       # doctest: +SKIP
>>> host.file("/etc/hosts").contains("web")                 # doctest: +SKIP
True
>>> host.interface("eth0").addresses                        # doctest: +SKIP
['172.17.0.2']

In your own tests, outside the conformance suites, build one from a profile::

    from conformance.profile import profile_by_name
    from conformance.testinfra_backend import engine_host
    host = engine_host(profile_by_name("podman"), "my-container")

or use the ``container_host`` fixture (import it into a conftest.py next to
the ``engine`` fixture): ``container_host("web")`` is a testinfra Host.

testinfra documents no registry for backends of other packages (its
``BACKENDS`` table is internal), so this module builds
:class:`testinfra.host.Host` objects directly instead of a ``scheme://``
host spec. Commands run as ``/bin/sh -c CMD``; testinfra modules that call
programs a minimal image lacks fail as they would anywhere (busybox has no
``getent``, which ``host.addr(name).is_resolvable`` runs, and its small ``nc``
has no ``-z``, which ``port(n).is_reachable`` runs).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
import testinfra.backend.base
import testinfra.host

from .engine import DEFAULT_TIMEOUT, Engine
from .profile import Profile


class EngineBackend(testinfra.backend.base.BaseBackend):
    """Runs testinfra's commands in one container through ``ENGINE exec``.

    ``container`` is ``NAME`` or ``USER@NAME`` (testinfra's container spec);
    each command gets ``timeout`` seconds, after which the call raises
    :class:`~conformance.engine.EngineCallFailed`.
    """

    NAME = "conformance-engine"

    def __init__(self, container: str, *args: Any, engine: Engine, timeout: float = DEFAULT_TIMEOUT,
                 **kwargs: Any) -> None:
        self.container, self.user = self.parse_containerspec(container)
        self.engine = engine
        self.timeout = timeout
        super().__init__(self.container, *args, **kwargs)

    def get_pytest_id(self) -> str:
        return f"{self.engine.name}://{self.container}"

    def run(self, command: str, *args: str, **kwargs: Any) -> testinfra.backend.base.CommandResult:
        cmd = self.get_command(command, *args)
        user = ["-u", self.user] if self.user is not None else []
        result = self.engine.cli("exec", *user, self.container, "/bin/sh", "-c", cmd, timeout=self.timeout)
        return self.result(result.returncode, self.encode(cmd), result.stdout, result.stderr)


def engine_host(engine: Engine | Profile, container: str, *, timeout: float = DEFAULT_TIMEOUT) -> testinfra.host.Host:
    """A testinfra Host whose commands run in ``container`` (``[USER@]NAME``)
    through ``engine`` (an :class:`Engine`, or a :class:`Profile` to drive)."""
    if isinstance(engine, Profile):
        engine = Engine(engine, run_id="testinfra")
    backend = EngineBackend(container, engine=engine, timeout=timeout)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


@pytest.fixture
def container_host(engine: Engine) -> Callable[..., testinfra.host.Host]:
    """``container_host(NAME)``: a testinfra Host in a container of ``engine``.

    >>> def test_hosts(engine, container_host, image):         # doctest: +SKIP
    ...     name = engine.create([image, "sleep", "60"])
    ...     engine.cli("start", name, check=True)
    ...     assert container_host(name).file("/etc/hosts").exists
    """
    return lambda container, timeout=DEFAULT_TIMEOUT: engine_host(engine, container, timeout=timeout)
