"""The Compose implementation an engine profile names (``[compose]``), driven
for one project at a time.

A :class:`ComposeProject` is one project: a fresh name (``cft`` + random hex,
so parallel workers and other runs never share one), a directory of its own
for the Compose files, and :meth:`ComposeProject.run` calling
``<compose argv> -p NAME ARGS`` from that directory with the engine profile's
environment. :meth:`ComposeProject.teardown` runs ``down -v`` (bounded) and
then removes through the engine whatever still carries the project's label
(``com.docker.compose.project=NAME``: docker-compose, podman-compose and
refengine compose all set it on containers, networks and volumes), so nothing
stays even when the implementation's ``down`` is broken.

>>> p = ComposeProject(engine, tmp_path / "proj")             # doctest: +SKIP
>>> p.write("services: {web: {image: busybox}}")              # doctest: +SKIP
>>> p.run("up", "-d").returncode                              # doctest: +SKIP
0
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .engine import CommandResult, Engine, EngineCallFailed
from .errors import ConformanceError

#: The label every Compose implementation puts on a project's objects.
PROJECT_LABEL = "com.docker.compose.project"

#: Default bound of one compose call (seconds).
COMPOSE_TIMEOUT = 90.0

#: Environment variables of the caller that would change what a compose call
#: does (project name, files, profiles...): never passed on.
_SCRUBBED_PREFIXES = ("COMPOSE_",)


def new_project_name() -> str:
    """A project name unique enough for parallel runs, recognisably ours."""
    return f"cft{secrets.token_hex(4)}"


class ComposeProject:
    """One Compose project of a check, driven through the profile's implementation."""

    def __init__(self, engine: Engine, directory: Path, name: str | None = None):
        compose = engine.profile.compose
        if compose is None:
            raise ConformanceError(f"engine profile {engine.name} has no [compose] table")
        self.engine = engine
        self.profile = compose
        self.name = name or new_project_name()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.names_used = {self.name}

    # -- files ------------------------------------------------------------
    def write(self, text: str, name: str = "docker-compose.yml") -> Path:
        """Write a file into the project directory; returns its path."""
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    # -- calls --------------------------------------------------------------
    @property
    def command(self) -> tuple[str, ...]:
        """The implementation's argv, its program found on PATH or beside
        this interpreter (as :attr:`Profile.command` does for the engine)."""
        argv = self.profile.argv
        program = argv[0]
        if "/" not in program and not shutil.which(program):
            beside = Path(sys.executable).parent / program
            if beside.exists():
                return (str(beside), *argv[1:])
        return argv

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        env.update(self.engine.profile.env)
        env.update(extra or {})
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, check: bool = False,
            timeout: float = COMPOSE_TIMEOUT, project: str | None = "", cwd: Path | None = None) -> CommandResult:
        """``<argv> -p NAME ARGS`` from the project directory.

        ``project=None`` leaves ``-p`` out (the name then comes from
        ``COMPOSE_PROJECT_NAME`` or the directory); another string names
        another project (it is torn down too). ``check`` raises
        :class:`EngineCallFailed` on a non-zero exit: for steps a check needs,
        never for the behaviour it asserts.
        """
        name = self.name if project == "" else project
        if name is not None:
            self.names_used.add(name)
        if env and env.get("COMPOSE_PROJECT_NAME"):
            self.names_used.add(env["COMPOSE_PROJECT_NAME"])
        argv = (*self.command, *(["-p", name] if name is not None else []), *args)
        start = time.monotonic()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout,
                                  env=self.environment(env), cwd=cwd or self.directory, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise EngineCallFailed(f"$ {' '.join(argv)}\ndid not finish within {timeout}s") from exc
        except OSError as exc:
            raise EngineCallFailed(f"$ {' '.join(argv)}\ncannot start the compose implementation: {exc.strerror}") from None
        result = CommandResult(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
        if check and not result.ok:
            raise EngineCallFailed(str(result))
        return result

    def up(self, *args: str, timeout: float = COMPOSE_TIMEOUT, env: dict[str, str] | None = None) -> CommandResult:
        """``up -d ARGS``, which the check needs to succeed."""
        return self.run("up", "-d", *args, check=True, timeout=timeout, env=env)

    # -- what the engine sees -------------------------------------------------
    def container_name(self, service: str, number: int = 1, project: str | None = None) -> str:
        """The name the profile's naming scheme gives a service's container."""
        return self.profile.container_name(project or self.name, service, number)

    def containers(self, *filters: str, project: str | None = None) -> list[str]:
        """Names of the project's containers, running or not (``ps -a`` by
        label, plus ``filters`` such as ``status=running``), sorted."""
        args = ["ps", "-a", "--format", "{{.Names}}", "--filter", f"label={PROJECT_LABEL}={project or self.name}"]
        for f in filters:
            args += ["--filter", f]
        result = self.engine.query(*args, timeout=60)
        if not result.ok:
            raise EngineCallFailed(str(result))
        return sorted(result.stdout.split())

    def objects(self, kind: str, project: str | None = None) -> list[str]:
        """Names of the project's networks or volumes (``kind``), by label, sorted."""
        result = self.engine.query(kind, "ls", "-q", "--filter", f"label={PROJECT_LABEL}={project or self.name}", timeout=60)
        if not result.ok:
            raise EngineCallFailed(str(result))
        return sorted(result.stdout.split())

    def exists(self, kind: str, name: str) -> bool:
        """Whether the engine knows a network/volume/container of that name."""
        return self.engine.cli(kind, "inspect", name, timeout=60).ok

    # -- teardown -------------------------------------------------------------
    def teardown(self) -> list[str]:
        """``down -v`` then a sweep by label of every project name used;
        returns what could not be removed."""
        leftovers: list[str] = []
        for name in sorted(self.names_used):
            try:
                self.run("down", "-v", project=name, timeout=90)
            except EngineCallFailed:
                pass  # the sweep below removes what down left
            leftovers += sweep(self.engine, name)
        return leftovers


def sweep(engine: Engine, project: str) -> list[str]:
    """Remove every container, network and volume labelled with ``project``."""
    label = f"label={PROJECT_LABEL}={project}"
    leftovers: list[str] = []
    ids = engine.cli("ps", "-a", "-q", "--filter", label, timeout=60)
    if ids.ok and ids.stdout.split():
        engine.cli("kill", *ids.stdout.split(), timeout=60)
        for ref in ids.stdout.split():
            engine.cli("rm", "-f", "-v", ref, timeout=60)
    left = engine.cli("ps", "-a", "-q", "--filter", label, timeout=60)
    if left.ok and left.stdout.strip():
        leftovers += [f"container {c}" for c in left.stdout.split()]
    for kind in ("network", "volume"):
        listed = engine.cli(kind, "ls", "-q", "--filter", label, timeout=60)
        for ref in listed.stdout.split() if listed.ok else []:
            r = engine.cli(kind, "rm", "-f", ref, timeout=60) if kind == "volume" else engine.cli(kind, "rm", ref, timeout=60)
            if not r.ok:
                leftovers.append(f"{kind} {ref}: {r.stderr.strip()}")
    return leftovers
