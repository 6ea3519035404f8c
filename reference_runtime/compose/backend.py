"""refengine's own command layer, called in-process: compose translates each step
into the refengine command line a user would type (``create --name ... IMG``,
``start``, ``network create``) and runs it through ``commands.dispatch``, so a
compose container is exactly a refengine container. Reads (a project's
containers, a container's health) go to the state root directly.

The labels docker compose puts on what it creates (:mod:`.labels`) are the link
back to the project.
"""

from __future__ import annotations

import io
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

from ..build import cli as build_cli
from ..engine import commands, health, runtime
from ..engine import volumes as engine_volumes
from ..engine.flags import Parsed, parse_command, split_command
from ..engine.state import Root
from ..errors import RefError
from ..image.store import ImageStore
from ..net.netstore import NetworkStore
from .errors import ComposeError
from .labels import CONFIG_HASH, NUMBER, ONEOFF, PROJECT, SERVICE

@dataclass
class Container:
    """A container of a project as the engine records it."""

    id: str
    name: str
    labels: dict
    config: dict
    state: dict

    @property
    def service(self) -> str:
        return self.labels.get(SERVICE, "")

    @property
    def number(self) -> int:
        try:
            return int(self.labels.get(NUMBER, "0"))
        except ValueError:
            return 0

    @property
    def oneoff(self) -> bool:
        return self.labels.get(ONEOFF) == "True"

    @property
    def config_hash(self) -> str:
        return self.labels.get(CONFIG_HASH, "")

    @property
    def running(self) -> bool:
        return bool(self.state.get("Running"))

    @property
    def status(self) -> str:
        return self.state.get("Status", "")

    @property
    def exit_code(self) -> int:
        return int(self.state.get("ExitCode", 0))


class Engine:
    """One refengine state root, driven through its command layer."""

    def __init__(self, root_path: str):
        self.root = Root(root_path)

    # -- commands ------------------------------------------------------------
    def call(self, *argv: str) -> str:
        """Run a refengine command with its output captured; its stdout, or
        :class:`ComposeError` with the engine's one-line error."""
        command, rest = split_command(list(argv))
        return self._captured(parse_command(command, rest))

    def create(self, argv: list[str], entrypoint: list[str] | None = None,
               health_test: list[str] | None = None) -> str:
        """``create ARGV`` (flags, image, command); ``entrypoint`` and ``health_test`` as
        docker's API takes them, lists (the command line's ``--entrypoint`` is one word,
        ``--health-cmd`` a shell command). The new container's id."""
        parsed = parse_command("create", argv)
        if entrypoint is not None:
            parsed.opts["entrypoint"] = list(entrypoint)
        if health_test is not None:
            parsed.opts["health_test"] = list(health_test)
        return self._captured(parsed).strip()

    def build(self, argv: list[str]) -> None:
        """``build ARGV`` through refengine's builder; its output goes to stderr (compose's
        progress stream), its failure is a :class:`ComposeError`."""
        with redirect_stdout(sys.stderr):
            status = build_cli.main(["build", *argv], self.root.path)
        sys.stderr.flush()
        if status != 0:
            raise ComposeError(f"failed to build {argv[-1]}: refengine build exited {status}")

    def has_image(self, ref: str) -> bool:
        try:
            ImageStore(self.root.image).resolve(ref)
        except RefError:
            return False
        return True

    def _captured(self, parsed: Parsed) -> str:
        out, err = io.StringIO(), io.StringIO()
        try:
            with redirect_stdout(out), redirect_stderr(err):
                self.root.ensure()
                status = commands.dispatch(self.root, parsed)
        except RefError as exc:
            raise ComposeError(f"Error response from daemon: {exc}") from None
        if status != 0:
            lines = [line.removeprefix("refengine: ") for line in err.getvalue().splitlines() if line.strip()]
            said = "; ".join(lines) or f"{parsed.command} exited {status}"
            raise ComposeError(f"Error response from daemon: {said}")
        if err.getvalue():
            sys.stderr.write(err.getvalue())
        return out.getvalue()

    def attached(self, *argv: str) -> int:
        """Run a refengine command on this process's own standard streams (``run``,
        ``exec``): its exit status is the command's or the container's."""
        sys.stdout.flush()
        try:
            return self._dispatch(list(argv))
        except RefError as exc:
            raise ComposeError(f"Error response from daemon: {exc}") from None
        finally:
            sys.stdout.flush()

    def _dispatch(self, argv: list[str]) -> int:
        command, rest = split_command(argv)
        parsed = parse_command(command, rest)
        self.root.ensure()
        return commands.dispatch(self.root, parsed)

    # -- reads ---------------------------------------------------------------
    def containers(self, project: str, *, services: list[str] | None = None,
                   oneoff: bool | None = False) -> list[Container]:
        """The project's containers (``oneoff`` None: ``run`` containers too), oldest service
        container numbers first."""
        out = []
        for config, state in runtime.container_records(self.root):
            labels = config["Config"].get("Labels") or {}
            if labels.get(PROJECT) != project:
                continue
            c = Container(config["Id"], config["Name"][1:], labels, config, state)
            if services and c.service not in services:
                continue
            if oneoff is not None and c.oneoff != oneoff:
                continue
            out.append(c)
        out.sort(key=lambda c: (c.service, c.oneoff, c.number, c.name))
        return out

    def refresh(self, container: Container) -> Container:
        """The container's state now; ContainerError if it is gone (``run --rm``)."""
        state = runtime.reconcile(self.root, container.id, self.root.read_state(container.id))
        return Container(container.id, container.name, container.labels, container.config, state)

    def health(self, container: Container) -> str:
        """``State.Health.Status`` as inspect shows it ("" without a healthcheck)."""
        config = self.root.read_config(container.id)
        state = runtime.reconcile(self.root, container.id, self.root.read_state(container.id))
        document = runtime.inspect_document(self.root, config, state)
        return ((document.get("State") or {}).get("Health") or {}).get("Status", "")

    def has_healthcheck(self, container: Container) -> bool:
        """Whether the container (or its image) has a healthcheck that probes: its State.Health
        appears only once the probes started."""
        # the prober's own rule: ["CMD"] alone or an unknown kind never probes (docker's getProbe)
        return health.probe_argv(container.config["Config"].get("Healthcheck")) is not None

    def log_path(self, container: Container) -> str:
        return os.path.join(self.root.container_dir(container.id), f"{container.id}-json.log")

    def network(self, name: str) -> dict | None:
        if not os.path.isdir(os.path.join(self.root.path, "networks")):
            return None
        store = NetworkStore(self.root.path)
        for net in store.all():
            if net["Name"] == name:
                return net
        return None

    def labelled_networks(self, project: str) -> list[dict]:
        """The networks carrying the project's label."""
        if not os.path.isdir(os.path.join(self.root.path, "networks")):
            return []
        return [n for n in NetworkStore(self.root.path).all() if (n.get("Labels") or {}).get(PROJECT) == project]

    def labelled_volumes(self, project: str) -> list[str]:
        """The names of the volumes carrying the project's label."""
        return [n for n in engine_volumes.names(self.root.path)
                if (engine_volumes.inspect(self.root.path, n).get("Labels") or {}).get(PROJECT) == project]

    def network_in_use(self, net: dict) -> bool:
        return bool(NetworkStore(self.root.path).endpoints(net["Id"]))

    def volume(self, name: str) -> dict | None:
        if not engine_volumes.exists(self.root.path, name):
            return None
        return engine_volumes.inspect(self.root.path, name)
