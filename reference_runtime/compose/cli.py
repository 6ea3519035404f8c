"""``refengine compose [GLOBAL OPTIONS] COMMAND [OPTIONS]``: docker compose v2's
command line (its global options ``-f``, ``-p``, ``--project-directory``,
``--env-file``, ``--profile``; its subcommands and their flags) parsed with
argparse, the project loaded, the subcommand run. Errors are one line on
stderr and exit 1, docker compose's status; ``run`` and ``exec`` exit with
the container's or the command's status.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..engine.version import VERSION as ENGINE_VERSION
from ..errors import RefError
from . import commands
from .backend import Engine
from .errors import ComposeError
from .labels import COMPOSE_VERSION
from .loader import LoadOptions, check_project_name, load
from .project import Project

#: Commands that need no Compose file when the project is named (-p): they work from labels.
_LABEL_DRIVEN = ("down", "ps", "logs", "stop", "start", "restart", "kill", "rm", "top", "pause", "unpause",
                 "images")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line :class:`ComposeError` (never a usage dump and exit 2)."""

    def error(self, message: str):
        # docker compose's (cobra's) wording for the two usual mistakes
        if message.startswith("unrecognized arguments: "):
            first = message.split(": ", 1)[1].split()[0]
            raise ComposeError(f"unknown flag: {first}" if first.startswith("-") else
                               f"unexpected argument {first!r}")
        if message.startswith("argument command: invalid choice: "):
            raise ComposeError(f'unknown docker command: "compose {message.split(": ")[2].split()[0].strip(chr(39))}"')
        raise ComposeError(message)

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


class _Exit(Exception):
    def __init__(self, status: int):
        self.status = status


def _timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--timeout", type=int, default=None, help="shutdown timeout in seconds")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="refengine compose", description="Define and run multi-container applications "
                                                            "(the Compose specification) on refengine.")
    parser.add_argument("-f", "--file", action="append", default=[], dest="files", help="Compose configuration files")
    parser.add_argument("-p", "--project-name", dest="project_name")
    parser.add_argument("--project-directory", dest="project_directory")
    parser.add_argument("--env-file", action="append", default=[], dest="env_files")
    parser.add_argument("--profile", action="append", default=[], dest="profiles")
    parser.add_argument("--ansi", choices=("never", "always", "auto"), default="auto")
    parser.add_argument("--progress", default="auto")
    parser.add_argument("--parallel", type=int, default=-1)
    parser.add_argument("--compatibility", action="store_true")
    parser.add_argument("-v", "--version", action="store_true", dest="show_version")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    up = sub.add_parser("up", help="create and start containers")
    up.add_argument("-d", "--detach", action="store_true")
    up.add_argument("--scale", action="append", default=[])
    up.add_argument("--no-deps", action="store_true")
    up.add_argument("--force-recreate", action="store_true")
    up.add_argument("--no-recreate", action="store_true")
    up.add_argument("--no-start", action="store_true")
    up.add_argument("--remove-orphans", action="store_true")
    up.add_argument("--wait", action="store_true")
    up.add_argument("--build", action="store_true")
    up.add_argument("--no-build", action="store_true")
    up.add_argument("--pull", default="missing")
    up.add_argument("--quiet-pull", action="store_true")
    up.add_argument("--abort-on-container-exit", action="store_true")
    up.add_argument("--exit-code-from")
    up.add_argument("--no-color", action="store_true")
    up.add_argument("--no-log-prefix", action="store_true")
    up.add_argument("--attach-dependencies", action="store_true")
    _timeout(up)
    up.add_argument("services", nargs="*")

    down = sub.add_parser("down", help="stop and remove containers and networks")
    down.add_argument("-v", "--volumes", action="store_true")
    down.add_argument("--remove-orphans", action="store_true")
    down.add_argument("--rmi")
    _timeout(down)

    ps = sub.add_parser("ps", help="list containers")
    ps.add_argument("-q", "--quiet", action="store_true")
    ps.add_argument("-a", "--all", action="store_true")
    ps.add_argument("--services", action="store_true", dest="services_only")
    ps.add_argument("--format", default="table")
    ps.add_argument("--status", action="append", default=[])
    ps.add_argument("--filter", action="append", default=[])
    ps.add_argument("services", nargs="*")

    logs = sub.add_parser("logs", help="view output from containers")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--no-color", action="store_true")
    logs.add_argument("--no-log-prefix", action="store_true")
    logs.add_argument("-t", "--timestamps", action="store_true")
    logs.add_argument("-n", "--tail")
    logs.add_argument("services", nargs="*")

    config = sub.add_parser("config", aliases=["convert"], help="the canonical Compose model")
    config.add_argument("-q", "--quiet", action="store_true")
    config.add_argument("--services", action="store_true", dest="services_only")
    config.add_argument("--volumes", action="store_true", dest="volumes_only")
    config.add_argument("--profiles", action="store_true", dest="profiles_only")
    config.add_argument("--images", action="store_true")
    config.add_argument("--format", default="yaml", choices=("yaml", "json"))
    config.add_argument("-o", "--output")
    config.add_argument("--resolve-image-digests", action="store_true")
    config.add_argument("services", nargs="*")

    exe = sub.add_parser("exec", help="execute a command in a running container")
    exe.add_argument("-d", "--detach", action="store_true")
    exe.add_argument("-T", "--no-TTY", action="store_true", dest="no_tty")
    exe.add_argument("-i", "--interactive", action="store_true")
    exe.add_argument("-t", "--tty", action="store_true")
    exe.add_argument("-e", "--env", action="append", default=[])
    exe.add_argument("-u", "--user")
    exe.add_argument("-w", "--workdir")
    exe.add_argument("--index", type=int, default=1)
    exe.add_argument("--privileged", action="store_true")
    exe.add_argument("service")
    exe.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")

    run = sub.add_parser("run", help="run a one-off command on a service")
    run.add_argument("-d", "--detach", action="store_true")
    run.add_argument("--rm", action="store_true")
    run.add_argument("-e", "--env", action="append", default=[])
    run.add_argument("-l", "--label", action="append", default=[])
    run.add_argument("-v", "--volume", action="append", default=[])
    run.add_argument("-p", "--publish", action="append", default=[])
    run.add_argument("--name")
    run.add_argument("--entrypoint")
    run.add_argument("-T", "--no-TTY", action="store_true", dest="no_tty")
    run.add_argument("-i", "--interactive", action="store_true")
    run.add_argument("-t", "--tty", action="store_true")
    run.add_argument("-u", "--user")
    run.add_argument("-w", "--workdir")
    run.add_argument("--no-deps", action="store_true")
    run.add_argument("--service-ports", action="store_true")
    run.add_argument("--use-aliases", action="store_true")
    run.add_argument("--build", action="store_true")
    run.add_argument("service")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")

    for name in ("stop", "restart"):
        p = sub.add_parser(name)
        _timeout(p)
        p.add_argument("services", nargs="*")
    start = sub.add_parser("start")
    start.add_argument("services", nargs="*")
    kill = sub.add_parser("kill")
    kill.add_argument("-s", "--signal", default="SIGKILL")
    kill.add_argument("services", nargs="*")
    rm = sub.add_parser("rm")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("-s", "--stop", action="store_true")
    rm.add_argument("-v", "--volumes", action="store_true")
    rm.add_argument("services", nargs="*")
    for name in ("pause", "unpause", "top", "images"):
        sub.add_parser(name).add_argument("services", nargs="*")
    scale = sub.add_parser("scale")
    scale.add_argument("--no-deps", action="store_true")
    scale.add_argument("scales", nargs="+", metavar="SERVICE=REPLICAS")
    build = sub.add_parser("build")
    build.add_argument("--no-cache", action="store_true")
    build.add_argument("-q", "--quiet", action="store_true")
    build.add_argument("--pull", action="store_true")
    build.add_argument("services", nargs="*")
    pull = sub.add_parser("pull")
    pull.add_argument("-q", "--quiet", action="store_true")
    pull.add_argument("--ignore-pull-failures", action="store_true")
    pull.add_argument("--include-deps", action="store_true")
    pull.add_argument("services", nargs="*")
    port = sub.add_parser("port")
    port.add_argument("--index", type=int, default=1)
    port.add_argument("--protocol", default="tcp")
    port.add_argument("service")
    port.add_argument("private_port")
    sub.add_parser("version").add_argument("--short", action="store_true")
    return parser


def _requested(o: argparse.Namespace) -> list[str]:
    """The services the command line names: enabled whatever their profiles."""
    if o.command in ("run", "exec", "port"):
        return [o.service]
    if o.command == "scale":
        return [s.partition("=")[0] for s in o.scales]
    return list(getattr(o, "services", None) or [])


def main(argv: list[str], root_path: str) -> int:
    """Run ``refengine compose ARGV`` against the state root; the exit status."""
    try:
        o = build_parser().parse_args(argv)
        if o.command == "convert":
            o.command = "config"
        if o.show_version or o.command == "version":
            short = getattr(o, "short", False)
            # the docker compose release whose commands and output this follows, and our own version
            sys.stdout.write(f"{COMPOSE_VERSION}\n" if short else
                             f"refengine compose version v{COMPOSE_VERSION} (refengine {ENGINE_VERSION})\n")
            return 0
        if not o.command:
            raise ComposeError("a command is required: up, down, ps, logs, config, exec, run, start, stop, "
                               "restart, scale, pull, ... (refengine compose --help)")
        options = LoadOptions(files=o.files, project_name=o.project_name, project_directory=o.project_directory,
                              env_files=o.env_files, profiles=o.profiles, requested=_requested(o))
        try:
            project = load(options)
        except ComposeError as exc:
            # down/ps/stop... -p NAME without a file: the engine's labels know the project
            name = o.project_name or os.environ.get("COMPOSE_PROJECT_NAME")
            if o.command not in _LABEL_DRIVEN or not name or not str(exc).startswith("no configuration file"):
                raise
            project = Project.named(check_project_name(name), os.getcwd())
        handler = commands.HANDLERS[o.command]
        return handler(project, Engine(root_path), o)
    except _Exit as exc:
        return exc.status
    except ComposeError as exc:
        _report(str(exc))
        return exc.status
    except RefError as exc:
        _report(f"Error response from daemon: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        _report(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return 1


def _report(message: str) -> None:
    line = " ".join(str(message).split("\n")).strip()
    try:
        sys.stdout.flush()
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        pass
