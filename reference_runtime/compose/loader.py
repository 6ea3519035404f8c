"""From command-line options and the environment to one :class:`Project`:

    files (-f, $COMPOSE_FILE, or compose.yaml / docker-compose.yml found from the cwd up)
      + environment (.env or --env-file, the process's environment winning)
      -> each file: YAML -> interpolated -> checked against the Compose schema
         -> services normalised (normalise.py) -> ``extends`` resolved
      -> files merged in order (compose-spec merge.md)
      -> profiles applied, references checked, project name chosen.

Project name: ``-p`` > ``$COMPOSE_PROJECT_NAME`` > the file's ``name:`` > the
project directory's base name (lower-cased, other characters than
``[a-z0-9_-]`` dropped).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

from . import dotenv, textfile, yaml12
from .errors import ComposeError
from .interpolate import interpolate_tree
from .normalise import merge_mapping, merge_service, normalise_service
from .project import Project
from .schema import validate

#: The files docker compose v2 looks for, in its order of preference.
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yml",
                  "docker-compose.override.yaml")
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class LoadOptions:
    """The global options of ``refengine compose`` that choose and shape the project."""

    files: list[str] = field(default_factory=list)
    project_name: str | None = None
    project_directory: str | None = None
    env_files: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    #: services named on the command line: enabled whatever their profiles
    requested: list[str] = field(default_factory=list)


def normalise_project_name(name: str) -> str:
    """A directory's name as a project name (docker compose's rule).

    >>> normalise_project_name("My App.v2")
    'myappv2'
    """
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def check_project_name(name: str) -> str:
    if not _PROJECT_NAME.fullmatch(name):  # fullmatch: "$" alone lets "x\n" through
        raise ComposeError(f'invalid project name "{name}": must consist only of lowercase alphanumeric '
                           "characters, hyphens, and underscores as well as start with a letter or number")
    return name


def _find_default(cwd: str) -> list[str]:
    directory = cwd
    while True:
        found = [os.path.join(directory, n) for n in DEFAULT_FILES if os.path.isfile(os.path.join(directory, n))]
        if found:
            if len(found) > 1:
                sys.stderr.write(f"WARN[0000] Found multiple config files with supported names: "
                                 f"{', '.join(found)}\nWARN[0000] Using {found[0]}\n")
            overrides = [os.path.join(directory, n) for n in OVERRIDE_FILES
                         if os.path.isfile(os.path.join(directory, n))]
            return [found[0], *overrides[:1]]
        parent = os.path.dirname(directory)
        if parent == directory:
            raise ComposeError("no configuration file provided: not found")
        directory = parent


def _environment(options: LoadOptions, project_dir: str, environ: Mapping[str, str], cwd: str) -> dict[str, str]:
    """The variables for interpolation: the env files', then the process's on top."""
    env: dict[str, str] = {}
    if options.env_files:
        for path in options.env_files:
            env.update(dotenv.read(os.path.join(cwd, path), {**environ, **env}))
    else:
        default = os.path.join(project_dir, ".env")
        if os.path.isfile(default):
            env.update(dotenv.read(default, environ))
    env.update(environ)
    return env


class _Warnings:
    """Unset variables, each reported once, as docker compose v2 does."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def missing(self, name: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            sys.stderr.write(f'WARN[0000] The "{name}" variable is not set. Defaulting to a blank string.\n')


def _read_file(path: str) -> tuple[dict, str]:
    try:
        text, source = textfile.read_text(path), path
    except FileNotFoundError:
        raise ComposeError(f"open {path}: no such file or directory") from None
    except OSError as exc:
        raise ComposeError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        document = yaml12.load(text)
    except yaml12.TooLarge as exc:
        raise ComposeError(f"yaml: {source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ComposeError(f"yaml: {source}:{where}: {problem}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ComposeError(f"{source}: Top-level object must be a mapping")
    return document, source


class _FileLoader:
    """Each file read, interpolated, validated and normalised once (``extends`` may name
    the same file many times)."""

    def __init__(self, env: Mapping[str, str], warnings: _Warnings):
        self.env, self.warnings = env, warnings
        self.cache: dict[str, dict] = {}

    def load(self, path: str, base_dir: str | None = None) -> dict:
        key = path if path == "-" else os.path.abspath(path)
        if key not in self.cache:
            document, source = _read_file(path)
            document = interpolate_tree(document, self.env, missing=self.warnings.missing)
            validate(document, source)
            directory = base_dir or (os.path.dirname(key) if path != "-" else os.getcwd())
            services = document.get("services") or {}
            document["services"] = {name: normalise_service(s or {}, directory, name) for name, s in services.items()}
            for kind in ("secrets", "configs"):  # file-based ones: relative to the file that names them
                for value in (document.get(kind) or {}).values():
                    if isinstance(value, dict) and value.get("file"):
                        value["file"] = os.path.normpath(os.path.join(directory, os.path.expanduser(value["file"])))
            self.cache[key] = document
        return self.cache[key]

    def resolve_extends(self, path: str, name: str, chain: tuple = ()) -> dict:
        """Service ``name`` of file ``path`` with its ``extends`` chain merged in."""
        document = self.load(path)
        services = document["services"]
        if name not in services:
            raise ComposeError(f"cannot extend service {name!r} in {path}: service not found")
        service = services[name]
        extends = service.get("extends")
        if not extends:
            return service
        link = (os.path.abspath(path), name)
        if link in chain:
            raise ComposeError(f"circular reference with extends: {' -> '.join(n for _, n in (*chain, link))}")
        base_path = path
        if extends.get("file"):
            base_path = os.path.join(os.path.dirname(os.path.abspath(path)), extends["file"])
        base = self.resolve_extends(base_path, extends["service"], (*chain, link))
        child = {k: v for k, v in service.items() if k != "extends"}
        return merge_service({k: v for k, v in base.items() if k != "extends"}, child)


def load(options: LoadOptions, environ: Mapping[str, str] | None = None, cwd: str | None = None) -> Project:
    """The project the options and the environment describe."""
    environ = dict(os.environ if environ is None else environ)
    cwd = cwd or os.getcwd()
    files = list(options.files)
    if options.project_directory:
        project_dir = os.path.abspath(os.path.join(cwd, options.project_directory))
    elif files and files[0] != "-":
        project_dir = os.path.dirname(os.path.abspath(os.path.join(cwd, files[0])))
    else:
        project_dir = cwd
    env = _environment(options, project_dir, environ, cwd)
    if not files and env.get("COMPOSE_FILE"):
        separator = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        files = [os.path.join(project_dir, f) for f in env["COMPOSE_FILE"].split(separator) if f]
    if not files:
        files = _find_default(project_dir if options.project_directory else cwd)
        if not options.project_directory:
            project_dir = os.path.dirname(files[0])
            env = _environment(options, project_dir, environ, cwd)
    files = [f if f == "-" else os.path.abspath(os.path.join(cwd, f)) for f in files]

    loader = _FileLoader(env, _Warnings())
    merged: dict = {"services": {}, "networks": {}, "volumes": {}}
    top_name = None
    for path in files:
        # every file's relative paths are the project directory's (compose-spec: the first file's)
        document = loader.load(path, project_dir)
        services = {name: loader.resolve_extends(path, name) for name in document["services"]}
        for name, service in services.items():
            merged["services"][name] = merge_service(merged["services"].get(name, {}), service)
        for key in ("networks", "volumes", "secrets", "configs"):
            for name, value in (document.get(key) or {}).items():
                merged.setdefault(key, {})[name] = merge_mapping(merged.get(key, {}).get(name) or {}, value or {})
        top_name = document.get("name") or top_name
    name = _project_name(options, env, top_name, project_dir)
    profiles = options.profiles or [p for p in env.get("COMPOSE_PROFILES", "").split(",") if p]
    return Project.build(name=name, working_dir=project_dir, config_files=files, document=merged,
                         environment=env, profiles=profiles, requested=options.requested)


def _project_name(options: LoadOptions, env: Mapping[str, str], top_name: str | None, project_dir: str) -> str:
    if options.project_name:
        return check_project_name(options.project_name)
    if env.get("COMPOSE_PROJECT_NAME"):
        return check_project_name(env["COMPOSE_PROJECT_NAME"])
    if top_name:
        return check_project_name(str(top_name))
    name = normalise_project_name(os.path.basename(project_dir.rstrip("/")))
    if not name:
        raise ComposeError(f"project name derived from {project_dir} is empty: use -p NAME")
    return name
