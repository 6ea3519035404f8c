"""What the classic builder's cache key of a step is made of (moby
``builder/dockerfile``): the parent image, the step's ``created_by`` (the
command as docker records it, ``#(nop)`` for steps that only change the
config, the content hash for COPY/ADD, ``|N K=V`` build args in front of a
RUN), and the image config the step produces. Plus the build-arg rules of
moby#20136: every RUN after an ``ARG`` declaration carries the declared
args' values; undeclared ``--build-arg`` values change nothing; the
predefined proxy args reach RUN steps but stay out of the key unless declared.

Pure.

>>> nop(["/bin/sh", "-c"], 'CMD ["sh"]')
'/bin/sh -c #(nop)  CMD ["sh"]'
>>> args = BuildArgs({"V": "1", "HTTP_PROXY": "p"}); args.declare("V", None)
>>> run_created_by(["/bin/sh", "-c", "make"], args.key_env(args.run_env([])))
'|1 V=1 /bin/sh -c make'
"""

from __future__ import annotations

import hashlib
import json

#: Args every RUN sees when given with --build-arg, without an ARG (moby builtinAllowedBuildArgs).
BUILTIN_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
                          "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"})
DEFAULT_SHELL = ("/bin/sh", "-c")


def nop(shell: list[str] | tuple[str, ...], comment: str) -> str:
    """``created_by`` of a config-only step: the shell, ``#(nop) `` and the comment (docker's two spaces)."""
    return " ".join([*shell, "#(nop) ", comment])


def nop_joined(shell: list[str] | tuple[str, ...], comment: str) -> str:
    """``created_by`` of COPY/ADD/WORKDIR: docker joins ``#(nop) `` and the comment into one word,
    so one space where the other config-only steps have two (checked against docker 20.10)."""
    return " ".join([*shell, "#(nop) " + comment])


def copy_comment(keyword: str, source_key: str, dest: str, chown: str | None = None,
                 chmod: str | None = None) -> str:
    """``COPY file:<hex> in /dest `` with the ownership/mode options that change the result."""
    opts = "".join(f"--{k}={v} " for k, v in (("chown", chown), ("chmod", chmod)) if v)
    return f"{keyword} {opts}{source_key} in {dest} "


def go_quote(text: str) -> str:
    """Go's %q of a string (strconv.Quote)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_quote_list(items: list[str] | None) -> str:
    """Go's %q of a []string: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(i) for i in items or []) + "]"


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for the durations a Dockerfile can give."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    if ns < 1000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return _trim(ns / 1000) + "µs"
    if ns < 1_000_000_000:
        return _trim(ns / 1e6) + "ms"
    out = ""
    total = ns / 1e9
    hours, rem = divmod(int(total), 3600)
    minutes, _ = divmod(rem, 60)
    secs = total - hours * 3600 - minutes * 60
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _trim(secs) + "s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def healthcheck_comment(test: list[str], interval: float, timeout: float, start: float, retries: int) -> str:
    """docker's ``HEALTHCHECK %q`` of its HealthConfig struct."""
    return (f"HEALTHCHECK &{{{go_quote_list(test)} {go_quote(go_duration(interval))} "
            f"{go_quote(go_duration(timeout))} {go_quote(go_duration(start))} '{_go_rune(retries)}'}}")


def _go_rune(n: int) -> str:
    if 0x20 <= n < 0x7F and chr(n) not in "'\\":
        return chr(n)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def run_created_by(cmd: list[str], build_env: list[str]) -> str:
    """``created_by`` (and cache key part) of RUN: ``|N K=V ...`` before the command when
    build args reach it (moby's prependEnvOnCmd; *build_env* from :meth:`BuildArgs.key_env`)."""
    if build_env is None:
        return " ".join(cmd)
    return " ".join([f"|{len(build_env)}", *build_env, *cmd])


class BuildArgs:
    """The build-arg state of one stage (moby ``BuildArgs``).

    *options*: ``--build-arg`` values (None: given without a value and unset
    in the environment). Meta args are the ARGs before the first FROM;
    ``declare`` records an ARG of the current stage.
    """

    def __init__(self, options: dict[str, str | None], meta: dict[str, str | None] | None = None):
        self.options = dict(options)
        self.meta: dict[str, str | None] = dict(meta or {})
        self.allowed: dict[str, str | None] = {}
        self.referenced: set[str] = set()

    def for_stage(self) -> "BuildArgs":
        """A fresh state for a new stage: the meta args stay, the stage's ARGs go."""
        other = BuildArgs(self.options, self.meta)
        other.referenced = self.referenced  # shared: the unused-args warning looks at the whole build
        return other

    def add_meta(self, name: str, default: str | None) -> None:
        self.meta[name] = default
        self.referenced.add(name)

    def meta_values(self) -> dict[str, str]:
        """Values for expanding FROM lines: --build-arg overrides a meta ARG's default."""
        out = {}
        for name, default in self.meta.items():
            value = self.options.get(name)
            if value is None:
                value = default
            if value is not None:
                out[name] = value
        return out

    def declare(self, name: str, default: str | None) -> None:
        self.allowed[name] = default
        self.referenced.add(name)

    def value(self, name: str) -> tuple[str, bool]:
        """moby's getBuildArg against the stage's declared args."""
        default = self.allowed.get(name)
        exists = name in self.allowed
        given = self.options.get(name)
        if given is not None:
            return given, True
        if default is None:
            meta = self.meta.get(name)
            if meta is not None:
                return meta, True
            return "", False
        return default, exists

    def allowed_values(self) -> dict[str, str]:
        """Declared args of this stage and the builtin proxy args, those with a value."""
        out = {}
        for name in [*self.allowed, *sorted(BUILTIN_ARGS - set(self.allowed))]:
            value, ok = self.value(name)
            if ok:
                out[name] = value
        return out

    def run_env(self, env: list[str]) -> list[str]:
        """``K=V`` of the allowed args a RUN sees (those the config's Env does not set)."""
        keys = {e.split("=", 1)[0] for e in env}
        return [f"{k}={v}" for k, v in self.allowed_values().items() if k not in keys]

    def key_env(self, run_env: list[str]) -> list[str] | None:
        """The part of *run_env* in the RUN's key, sorted; None when no arg reaches the RUN at all
        (then docker records the bare command)."""
        if not run_env:
            return None
        return sorted(e for e in run_env if e.split("=", 1)[0] in self.allowed
                      or e.split("=", 1)[0] not in BUILTIN_ARGS)

    def unused(self) -> list[str]:
        """--build-arg names no ARG declared (docker warns about them)."""
        return sorted(k for k in self.options if k not in self.referenced and k not in BUILTIN_ARGS)


def cache_key(parent_id: str, created_by: str, config: dict) -> str:
    """The key a step is cached under: parent image, created_by, the resulting config."""
    data = json.dumps([parent_id, created_by, config], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()
