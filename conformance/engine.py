"""The engine adapter: one class that drives any docker-compatible CLI.

Everything engine-specific is in the :class:`~conformance.profile.Profile`
(argv prefix, environment); this module only knows docker's CLI grammar.
Objects a check makes are named and labelled with the run's id, tracked, and
removed by :meth:`Engine.cleanup`, so parallel runs and a user's own
containers are never touched.

>>> engine = Engine(profile_by_name("docker"), run_id="r1")   # doctest: +SKIP
>>> engine.run(["--rm", image, "sh", "-c", "exit 3"]).returncode  # doctest: +SKIP
3
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from .profile import Profile

#: Label put on every container/volume/network a check creates.
RUN_LABEL = "io.conformance.run"

#: How long one engine call may take before the harness gives up on it.
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class CommandResult:
    """What one CLI call did."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def __str__(self) -> str:  # shown in assertion messages
        return (
            f"$ {' '.join(self.argv)}\n-> exit {self.returncode} in {self.duration:.2f}s\n"
            f"stdout: {self.stdout[-2000:]!r}\nstderr: {self.stderr[-2000:]!r}"
        )


class EngineCallFailed(Exception):
    """An engine call that a check needed to succeed did not.

    Not an AssertionError: a check's own assertion is about documented
    behaviour, this is the engine (or its absence) getting in the way, and a
    known deviation naming an assertion must never excuse it.
    """


@dataclass
class Engine:
    """A docker-compatible engine driven through its CLI."""

    profile: Profile
    run_id: str
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)
    _containers: list[str] = field(default_factory=list, repr=False)
    _volumes: list[str] = field(default_factory=list, repr=False)
    _images: list[str] = field(default_factory=list, repr=False)
    _networks: list[str] = field(default_factory=list, repr=False)
    _workdir: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def label(self) -> str:
        return f"{RUN_LABEL}={self.run_id}"

    def has(self, capability: str) -> bool:
        return self.profile.has(capability)

    @property
    def workdir(self) -> str:
        """The working directory of every engine call: a temporary directory
        of this Engine's own, made on first use and removed by :meth:`close`.

        Never the caller's: an engine may write files into its working
        directory (conmon 2.1.6 under podman 4.3 writes its ``oom`` marker
        there, containers/podman#13102), and the harness runs from a checkout.
        """
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="conformance-engine-")
        return self._workdir

    def close(self) -> None:
        """Remove the working directory; at the end of a session, after the
        last :meth:`cleanup` (which runs after every check)."""
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    # -- the one subprocess helper --------------------------------------
    def cli(self, *args: str, input: str | bytes | None = None, timeout: float = DEFAULT_TIMEOUT,
            check: bool = False, text: bool = True) -> CommandResult:
        """Run ``<argv prefix> ARGS`` and return what it did; never raises on exit status
        unless ``check`` is set."""
        argv = (*self.profile.command, *args)
        env = {**os.environ, **self.profile.env}
        start = time.monotonic()
        try:
            proc = subprocess.run(argv, input=input, capture_output=True, env=env, timeout=timeout,
                                  text=text, errors="replace" if text else None, cwd=self.workdir)
        except subprocess.TimeoutExpired as exc:
            raise EngineCallFailed(f"$ {' '.join(argv)}\ndid not finish within {timeout}s") from exc
        except OSError as exc:  # the engine's program is missing or not executable
            raise EngineCallFailed(f"$ {' '.join(argv)}\ncannot start the engine: {exc.strerror}: {exc.filename or argv[0]}") from None
        result = CommandResult(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
        if check and not result.ok:
            raise EngineCallFailed(str(result))
        return result

    def query(self, *args: str, text: bool = True, timeout: float = DEFAULT_TIMEOUT, attempts: int = 3) -> CommandResult:
        """A read-only call (inspect, save), retried a bounded number of times.

        A daemonless engine's store is shared by concurrent processes: podman
        4.3 fails an ``inspect`` that races another process's ``rmi`` of an
        unrelated image ("locating item named "manifest" for image with ID
        ...: file does not exist"). Checks about caches and digests are not
        about that race; a query that fails every time still fails.
        """
        for attempt in range(attempts):
            result = self.cli(*args, text=text, timeout=timeout)
            if result.ok:
                return result
            time.sleep(0.5 * (attempt + 1))
        return result

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        """Start a CLI call without waiting (for attach/signal checks)."""
        kwargs.setdefault("cwd", self.workdir)
        return subprocess.Popen((*self.profile.command, *args), env={**os.environ, **self.profile.env}, **kwargs)

    # -- names ----------------------------------------------------------
    def new_name(self, kind: str = "c", *, track: bool = True) -> str:
        """A name unique to this run; containers, volumes and images made
        under it are removed by :meth:`cleanup` (untracked names are still
        found there by the run's label)."""
        name = f"cft-{self.run_id}-{kind}{next(self._counter)}"
        if track:
            {"c": self._containers, "v": self._volumes, "img": self._images, "net": self._networks}.get(kind, self._containers).append(name)
        return name

    def track_image(self, ref: str) -> str:
        self._images.append(ref)
        return ref

    def track_volume(self, name: str) -> str:
        self._volumes.append(name)
        return name

    # -- docker grammar -------------------------------------------------
    def run(self, args: list[str], *, name: str | None = None, timeout: float = DEFAULT_TIMEOUT,
            input: str | None = None) -> CommandResult:
        """``run --name N --label RUN ARGS``; the container is cleaned up later
        (a ``--rm`` container by the label sweep only, should it survive)."""
        name = name or self.new_name("c", track="--rm" not in args)
        return self.cli("run", "--name", name, "--label", self.label, *args, timeout=timeout, input=input)

    def create(self, args: list[str], *, name: str | None = None) -> str:
        name = name or self.new_name("c")
        self.cli("create", "--name", name, "--label", self.label, *args, check=True)
        return name

    def inspect(self, name: str, *, kind: str | None = None) -> dict:
        args = ["inspect"] + (["--type", kind] if kind else []) + [name]
        result = self.cli(*args, check=True)
        data = json.loads(result.stdout)
        return data[0] if isinstance(data, list) else data

    def state(self, name: str) -> dict:
        return self.inspect(name, kind="container")["State"]

    def wait_for(self, predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
        """Poll ``predicate()`` until it returns a truthy value; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def wait_running(self, name: str, timeout: float = 30.0) -> dict:
        return self.wait_for(lambda: (s := self.state(name))["Running"] and s, timeout=timeout,
                             what=f"{name} to run")

    def version(self) -> str:
        try:
            result = self.cli("--version", timeout=30)
        except EngineCallFailed:  # the engine's program is missing: say so in the results
            return "unavailable"
        return result.stdout.strip().splitlines()[0] if result.ok and result.stdout.strip() else "unknown"

    # -- cleanup ----------------------------------------------------------
    def cleanup(self) -> list[str]:
        """Remove everything this run made; returns what could not be removed."""
        leftovers: list[str] = []
        listed = self.cli("ps", "-a", "-q", "--filter", f"label={self.label}", timeout=60)
        ids = listed.stdout.split() if listed.ok else []
        refs = list(dict.fromkeys([*self._containers, *ids]))
        if refs:
            # SIGKILL first, all at once: podman 4.3's `rm -f` stops with the
            # 10 s grace period, which a `sleep` ignoring SIGTERM uses up in
            # full, for every container. Missing names only add an error line.
            self.cli("kill", *refs, timeout=60)
            self.cli("rm", "-f", "-v", *refs, timeout=120)
        remaining = self.cli("ps", "-a", "-q", "--filter", f"label={self.label}", timeout=60)
        if remaining.ok and remaining.stdout.strip():
            # podman 4.3: one missing name makes `rm -f A B` remove nothing
            # (exit 0), and a container whose namespace another one joined
            # (--network container:A) goes only after that one: one by one,
            # newest first as ps lists them.
            for ref in remaining.stdout.split():
                self.cli("rm", "-f", "-v", ref, timeout=60)
            remaining = self.cli("ps", "-a", "-q", "--filter", f"label={self.label}", timeout=60)
        if remaining.ok and remaining.stdout.strip():
            leftovers += [f"container {c}" for c in remaining.stdout.split()]
        for ref in self._images:
            self.cli("rmi", "-f", ref, timeout=60)
        for ref in self._volumes:
            r = self.cli("volume", "rm", "-f", ref, timeout=60)
            if not r.ok and "no such volume" not in r.stderr.lower() and "no volume" not in r.stderr.lower():
                leftovers.append(f"volume {ref}: {r.stderr.strip()}")
        for ref in self._networks:
            self.cli("network", "rm", ref, timeout=60)
        self._containers.clear(); self._images.clear(); self._volumes.clear(); self._networks.clear()
        return leftovers
