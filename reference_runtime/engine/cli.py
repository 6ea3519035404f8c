"""``refengine``: docker's command line on the reference runtime.

Global flags (``--root DIR``, ``--version``) and dispatch to the command
modules; errors become exit statuses in :mod:`.exits` (one mapping for this
CLI and the builder's); a command that cannot be found/invoked exits
127/126, otherwise the container's status.

Hot path (``refengine run --rm IMG true``): only os, sys and the runtime's
own small modules are imported; everything else loads in the command that
needs it.
"""

from __future__ import annotations

import os
import sys

from ..errors import RefError
from .exits import HANDLED, StatusExit, UsageError, status_of
from .state import DEFAULT_ROOT, Root, trace
from .version import API_VERSION, VERSION  # noqa: F401 - refengine --version; tests read cli.VERSION


def _global(argv: list[str]) -> tuple[str, list[str]]:
    root = os.environ.get("REFENGINE_ROOT") or DEFAULT_ROOT
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--root" and i + 1 < len(argv):
            root, i = argv[i + 1], i + 2
        elif arg.startswith("--root="):
            root, i = arg[7:], i + 1
        elif arg in ("-D", "--debug"):
            i += 1
        elif arg == "--log-level" and i + 1 < len(argv):
            i += 2
        elif arg.startswith("--log-level="):
            i += 1
        elif arg in ("-v", "--version"):
            sys.stdout.write(f"refengine version {VERSION}\n")
            raise StatusExit(0)
        elif arg in ("-h", "--help", "help"):
            sys.stdout.write(_HELP)
            raise StatusExit(0)
        elif arg.startswith("-"):
            raise UsageError(f"unknown flag: {arg}")
        else:
            break
    return root, argv[i:]


_HELP = """Usage:  refengine [--root DIR] COMMAND

A daemonless docker-compatible engine (namespaces + overlayfs).

Containers: run create start stop restart kill wait logs ps inspect rm exec top pause unpause rename port cp
            commit export stats
Images:     images load save import tag rmi history
Volumes:    volume create|ls|inspect|rm|prune
Networks:   network create|ls|inspect|rm|prune|connect|disconnect
System:     system df|prune|info|events|check [--repair], info, events, version
Compose:    compose up|down|ps|logs|config|exec|run|start|stop|restart|scale|pull (refengine compose --help)
Swarm:      swarm init|join|leave|join-token|update, node ls|inspect|update|promote|demote|rm|ps,
            service create|ls|ps|inspect|update|rollback|scale|rm|logs
"""


def main(argv: list[str] | None = None) -> int:
    """The console script (``argv`` None: exits the process) or a call from Python."""
    if argv is None:
        status = run(sys.argv[1:])
        # Interpreter teardown costs milliseconds of every `refengine run`; there is
        # nothing left to finalise but the standard streams.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            pass
        os._exit(status)
    return run(argv)


def run(argv: list[str]) -> int:
    trace("cli: main (interpreter and imports done)")
    command = ""
    try:
        root_path, rest = _global(argv)
        # the builder is imported only for build commands: run's hot path stays lean
        if rest[:1] in (["build"], ["builder"]) or rest[:2] in (["image", "build"], ["image", "prune"]):
            from ..build import cli as build_cli

            return build_cli.main(rest, root_path)
        if rest[:1] == ["compose"]:  # the Compose specification on this engine: its own parser and errors
            from ..compose import cli as compose_cli

            return compose_cli.main(rest[1:], root_path)
        if rest[:1] in (["swarm"], ["node"], ["service"]):  # swarm mode: talks to this node's swarmd
            from ..swarm import cli as swarm_cli

            return swarm_cli.main(rest, root_path)
        from .flags import parse_command, split_command

        try:
            command, cmd_argv = split_command(rest)
            parsed = parse_command(command, cmd_argv)
        except RefError as exc:
            raise UsageError(str(exc)) from None
        root = Root(root_path)
        from . import commands

        return commands.dispatch(root, parsed)
    except HANDLED as exc:
        return status_of(exc, command)


if __name__ == "__main__":
    sys.exit(main())
