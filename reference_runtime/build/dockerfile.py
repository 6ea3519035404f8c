"""The Dockerfile grammar of the classic builder: parser directives
(``# escape=``), comments, line continuations, instructions with their
``--flags``, JSON (exec) versus shell form, and the argument checks that
docker makes before anything runs. Variable substitution happens later, at
dispatch (:mod:`.shellexpand`), because it depends on ENV/ARG state.

Every error is a :class:`BuildError` "Dockerfile parse error line N: ...",
the classic builder's wording. Pure: text in, :class:`Dockerfile` out.

>>> df = parse("FROM scratch AS base\\nCOPY a /b\\n")
>>> df.stages[0].name, df.stages[0].steps[0].keyword, df.stages[0].steps[0].args
('base', 'COPY', ('a', '/b'))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .errors import BuildError

KEYWORDS = ("FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
            "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL")
#: Flags each instruction accepts (name -> takes a value).
FLAGS = {
    "FROM": ("platform",),
    "COPY": ("from", "chown", "chmod"),
    "ADD": ("chown", "chmod"),
    "HEALTHCHECK": ("interval", "timeout", "start-period", "retries"),
}
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_ARG_NAME = re.compile(r"^[^\s=]+$")


@dataclass(frozen=True)
class Instruction:
    """One instruction as written.

    ``args`` by keyword: FROM (image, [stage name]); RUN/CMD/ENTRYPOINT the
    JSON list or the shell text (``json`` tells); SHELL the JSON list;
    ENV/LABEL (key, value, key, value, ...) still quoted; ARG (name, value
    or None, ...); COPY/ADD sources then destination; EXPOSE/VOLUME words;
    HEALTHCHECK ("NONE",) or the command like RUN; ONBUILD the trigger's
    text (``trigger`` holds it parsed); the others their text.
    """

    keyword: str
    args: tuple
    line: int
    original: str
    flags: tuple[tuple[str, str], ...] = ()
    json: bool = False
    trigger: "Instruction | None" = None

    def flag(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.flags:
            if key == name:
                return value
        return default


@dataclass(frozen=True)
class Stage:
    """``FROM image [AS name]`` and the instructions up to the next FROM."""

    index: int
    base: str
    name: str | None
    line: int
    from_instruction: Instruction
    steps: tuple[Instruction, ...] = ()


@dataclass(frozen=True)
class Dockerfile:
    escape: str
    meta_args: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    warnings: tuple[str, ...] = field(default=())

    def stage_index(self, ref: str) -> int | None:
        """The stage a ``--from``/FROM reference names (its name, case-insensitive, or its index)."""
        low = ref.lower()
        for stage in self.stages:
            if stage.name == low:
                return stage.index
        if ref.isdigit() and int(ref) < len(self.stages):
            return int(ref)
        return None


def _err(line: int, message: str) -> BuildError:
    return BuildError(f"Dockerfile parse error line {line}: {message}")


# -- lines --------------------------------------------------------------------


def _directives(lines: list[str]) -> tuple[str, int]:
    """The escape character and the index of the first line after the directives."""
    escape = "\\"
    seen: set[str] = set()
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            break
        key, value = m.group(1).lower(), m.group(2)
        if key in seen:
            raise _err(i + 1, f"only one {key} parser directive can be used")
        seen.add(key)
        if key == "escape":
            if value not in ("\\", "`"):
                raise _err(i + 1, f"invalid ESCAPE '{value}'. Must be ` or \\")
            escape = value
        i += 1
    return escape, i


def logical_lines(text: str) -> tuple[str, list[tuple[int, str]], list[str]]:
    """(escape, [(first line number, joined instruction text)], warnings): comments
    dropped, continuations joined as the classic parser joins them."""
    lines = text.replace("\r\n", "\n").split("\n")
    escape, i = _directives(lines)
    cont = re.compile(re.escape(escape) + r"[ \t]*$")
    out: list[tuple[int, str]] = []
    warnings: list[str] = []
    while i < len(lines):
        raw, start = lines[i], i + 1
        i += 1
        text_ = raw.strip()
        if not text_ or text_.startswith("#"):
            continue
        line = raw.lstrip()
        continued = bool(cont.search(line))
        if continued:
            line = cont.sub("", line)
        empty_continuation = False
        while continued:
            if i >= len(lines):
                if not line.strip() or len(line.split(None, 1)) < 2:
                    raise _err(start, f"unexpected end of file after the line continuation of line {i}: "
                                      f"{line.strip().split(None, 1)[0].upper() if line.strip() else 'the instruction'}"
                                      " has no arguments")
                break
            nxt = lines[i]
            i += 1
            if nxt.strip().startswith("#"):
                continue
            if not nxt.strip():
                empty_continuation = True
                continue
            continued = bool(cont.search(nxt))
            line += cont.sub("", nxt) if continued else nxt
        if empty_continuation:
            warnings.append(f"line {start}: empty continuation line (will become an error in a future docker)")
        out.append((start, line))
    return escape, out, warnings


# -- words --------------------------------------------------------------------


def parse_words(rest: str, escape: str) -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes (buildkit's parseWords)."""
    words: list[str] = []
    word = ""
    quote = ""
    blank_ok = False
    phase = 0  # 0 between words, 1 in a word, 2 in quotes
    i, n = 0, len(rest)
    while i <= n:
        ch = rest[i] if i < n else ""
        if phase == 0:
            if i == n:
                break
            if ch.isspace():
                i += 1
                continue
            phase = 1
        if i == n:
            if blank_ok or word:
                words.append(word)
            break
        if phase == 1:
            if ch.isspace():
                phase = 0
                if blank_ok or word:
                    words.append(word)
                word, blank_ok = "", False
                i += 1
                continue
            if ch in ("'", '"'):
                quote, blank_ok, phase = ch, True, 2
            if ch == escape:
                if i + 1 == n:
                    i += 1
                    continue
                word += ch
                i += 1
                ch = rest[i]
            word += ch
            i += 1
            continue
        if ch == quote:
            phase = 1
        if ch == escape and quote != "'":
            if i + 1 == n:
                phase = 1
                i += 1
                continue
            word += ch
            i += 1
            ch = rest[i]
        word += ch
        i += 1
    return words


def _split_flags(rest: str) -> tuple[list[tuple[str, str]], str]:
    """Leading ``--name[=value]`` words, then the rest of the line."""
    flags: list[tuple[str, str]] = []
    while True:
        stripped = rest.lstrip()
        if not stripped.startswith("--"):
            return flags, stripped
        m = re.match(r"(\S+)(\s*)(.*)", stripped, re.S)
        word, rest = m.group(1), m.group(3)
        name, eq, value = word[2:].partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        flags.append((name, value if eq else "true"))


def _json_list(rest: str) -> list[str] | None:
    """The JSON array of strings in *rest*, None when *rest* is not one (shell form)."""
    text = rest.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return value


def _looks_json(rest: str) -> bool:
    """JSON that is a list but not of strings: docker refuses it ("arrays must be
    comprised of strings only"); text that is not JSON at all, such as
    ``RUN [ -f /x ]``, is shell form there and here."""
    text = rest.strip()
    if not text.startswith("["):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list)


def _name_values(keyword: str, rest: str, line: int, escape: str) -> tuple[str, ...]:
    """ENV/LABEL: ``k=v k2="v 2"`` or the old ``k some value`` (buildkit's parseNameVal)."""
    words = parse_words(rest, escape)
    if not words:
        raise _err(line, f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        parts = re.split(r"[ \t]+", rest.strip(), maxsplit=1)
        if len(parts) < 2 or not parts[1].strip():
            raise _err(line, f"{keyword} must have two arguments")
        return (parts[0], parts[1])
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise _err(line, f"Syntax error - can't find = in \"{word}\". Must be of the form: name=value")
        key, _, value = word.partition("=")
        if not key:
            raise _err(line, f"{keyword} names can not be blank")
        out += [key, value]
    return tuple(out)


# -- instructions ---------------------------------------------------------------


def _command_form(keyword: str, rest: str, line: int) -> tuple[tuple, bool]:
    if not rest.strip():
        raise _err(line, f"{keyword} requires at least one argument")
    as_json = _json_list(rest)
    if as_json is not None:
        return tuple(as_json), True
    if _looks_json(rest):
        raise _err(line, f"{keyword}: the argument starts with '[' but is not a JSON array of strings "
                         f"(use double quotes: [\"executable\", \"param\"]): {rest.strip()}")
    return (rest.strip(),), False


def parse_instruction(line: int, text: str, escape: str) -> Instruction:
    """One logical line -> an :class:`Instruction`, with docker's argument checks, in three
    phases: the keyword, its ``--flags`` (checked against the keyword's), its arguments
    (the keyword's own parser in :data:`_ARGUMENTS`)."""
    keyword, rest = _keyword(line, text)
    flags, rest = _instruction_flags(line, keyword, rest)
    args, as_json, trigger = _ARGUMENTS[keyword](line, rest, escape, flags)
    return Instruction(keyword, args, line, text.strip(), tuple(flags), as_json, trigger)


_Args = tuple  # (arguments, JSON form, ONBUILD trigger or None)


def _keyword(line: int, text: str) -> tuple[str, str]:
    parts = text.strip().split(None, 1)
    keyword = parts[0].upper()
    if keyword not in KEYWORDS:
        raise _err(line, f"unknown instruction: {keyword}")
    return keyword, parts[1] if len(parts) > 1 else ""


def _instruction_flags(line: int, keyword: str, rest: str) -> tuple[list[tuple[str, str]], str]:
    flags, rest = _split_flags(rest) if keyword in FLAGS or rest.lstrip().startswith("--") else ([], rest)
    allowed = FLAGS.get(keyword, ())
    for name, _ in flags:
        if name not in allowed:
            raise _err(line, f"Unknown flag: {name}")
    return flags, rest


def _from_args(line: int, rest: str, escape: str, flags: list) -> _Args:
    words = rest.split()
    if len(words) == 1:
        return (words[0],), False, None
    if len(words) == 3 and words[1].lower() == "as":
        name = words[2].lower()
        if not _STAGE_NAME.match(name):
            raise _err(line, f"invalid name for build stage: \"{words[2]}\", name can't start with a number "
                             "or contain symbols")
        return (words[0], name), False, None
    raise _err(line, "FROM requires either one or three arguments")


def _command_args(keyword: str):
    def parse(line: int, rest: str, escape: str, flags: list) -> _Args:
        args, as_json = _command_form(keyword, rest, line)
        return args, as_json, None
    return parse


def _shell_args(line: int, rest: str, escape: str, flags: list) -> _Args:
    as_json = _json_list(rest)
    if as_json is None:
        raise _err(line, "SHELL requires the arguments to be in JSON form")
    if not as_json:
        raise _err(line, "SHELL requires at least one argument")
    return tuple(as_json), True, None


def _name_value_args(keyword: str):
    def parse(line: int, rest: str, escape: str, flags: list) -> _Args:
        return _name_values(keyword, rest, line, escape), False, None
    return parse


def _arg_args(line: int, rest: str, escape: str, flags: list) -> _Args:
    words = parse_words(rest, escape)
    if not words:
        raise _err(line, "ARG requires at least one argument")
    args: list = []
    for w in words:
        name, eq, value = w.partition("=")
        if not name or not _ARG_NAME.match(name):
            raise _err(line, "ARG names can not be blank" if not name else f"invalid ARG name: {name!r}")
        args += [name, value if eq else None]
    return tuple(args), False, None


def _maintainer_args(line: int, rest: str, escape: str, flags: list) -> _Args:
    if not rest.strip():
        raise _err(line, "MAINTAINER requires exactly one argument")
    return (rest.strip(),), False, None


def _one_word_args(keyword: str):
    def parse(line: int, rest: str, escape: str, flags: list) -> _Args:
        words = rest.split()
        if not words:
            raise _err(line, f"{keyword} requires exactly one argument")
        if keyword == "STOPSIGNAL" and len(words) > 1:
            raise _err(line, "STOPSIGNAL requires exactly one argument")
        return (rest.strip(),), False, None
    return parse


def _copy_args(keyword: str):
    def parse(line: int, rest: str, escape: str, flags: list) -> _Args:
        as_json = _json_list(rest)
        if as_json is None and _looks_json(rest):
            raise _err(line, f"{keyword}: the argument starts with '[' but is not a JSON array of strings: "
                             f"{rest.strip()}")
        words = as_json if as_json is not None else rest.split()
        if len(words) < 2:
            raise _err(line, f"{keyword} requires at least two arguments, but only {len(words)} "
                             f"{'was' if len(words) == 1 else 'were'} provided. Destination could not be determined.")
        if keyword == "ADD" and _flag(flags, "from"):
            raise _err(line, "Unknown flag: from")
        return tuple(words), as_json is not None, None
    return parse


def _expose_args(line: int, rest: str, escape: str, flags: list) -> _Args:
    words = rest.split()
    if not words:
        raise _err(line, "EXPOSE requires at least one argument")
    return tuple(words), False, None


def _volume_args(line: int, rest: str, escape: str, flags: list) -> _Args:
    as_json = _json_list(rest)
    if as_json is None and _looks_json(rest):
        raise _err(line, f"VOLUME: the argument starts with '[' but is not a JSON array of strings: {rest.strip()}")
    words = as_json if as_json is not None else rest.split()
    if not words:
        raise _err(line, "VOLUME requires at least one argument")
    for w in words:
        if not w.strip():
            raise _err(line, "VOLUME specified can not be an empty string")
    return tuple(words), as_json is not None, None


def _healthcheck_args(line: int, rest: str, escape: str, flags: list) -> _Args:
    words = rest.split(None, 1)
    if not words:
        raise _err(line, "HEALTHCHECK requires at least one argument")
    kind = words[0].upper()
    if kind == "NONE":
        if len(words) > 1 or flags:
            raise _err(line, "HEALTHCHECK NONE takes no arguments")
        return ("NONE",), False, None
    if kind != "CMD":
        raise _err(line, f"Unknown type \"{kind}\" in HEALTHCHECK (try CMD)")
    args, as_json = _command_form("HEALTHCHECK", words[1] if len(words) > 1 else "", line)
    for name, value in flags:
        _check_health_flag(line, name, value)
    return args, as_json, None


def _onbuild_args(line: int, rest: str, escape: str, flags: list) -> _Args:
    if not rest.strip():
        raise _err(line, "ONBUILD requires at least one argument")
    inner = rest.strip().split(None, 1)[0].upper()
    if inner == "ONBUILD":
        raise _err(line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if inner in ("FROM", "MAINTAINER"):
        raise _err(line, f"{inner} isn't allowed as an ONBUILD trigger")
    return (rest.strip(),), False, parse_instruction(line, rest.strip(), escape)


#: keyword -> its argument parser ``(line, rest, escape, flags) -> (args, as_json, trigger)``.
_ARGUMENTS = {
    "FROM": _from_args, "RUN": _command_args("RUN"), "CMD": _command_args("CMD"),
    "ENTRYPOINT": _command_args("ENTRYPOINT"), "SHELL": _shell_args, "ENV": _name_value_args("ENV"),
    "LABEL": _name_value_args("LABEL"), "ARG": _arg_args, "MAINTAINER": _maintainer_args,
    "WORKDIR": _one_word_args("WORKDIR"), "USER": _one_word_args("USER"), "STOPSIGNAL": _one_word_args("STOPSIGNAL"),
    "COPY": _copy_args("COPY"), "ADD": _copy_args("ADD"), "EXPOSE": _expose_args, "VOLUME": _volume_args,
    "HEALTHCHECK": _healthcheck_args, "ONBUILD": _onbuild_args,
}


def _flag(flags: list[tuple[str, str]], name: str) -> str | None:
    for key, value in flags:
        if key == name:
            return value
    return None


def parse_duration(value: str) -> float:
    """Go's time.ParseDuration (``30s``, ``1m30s``, ``500ms``) in seconds; ValueError if malformed."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    if value == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if not value or pos != len(value):
        raise ValueError(f"time: invalid duration \"{value}\"")
    return total


def _check_health_flag(line: int, name: str, value: str) -> None:
    if name == "retries":
        if not value.lstrip("-").isdigit():
            raise _err(line, f"invalid argument \"{value}\" for --retries: must be an integer")
        if int(value) < 0:
            raise _err(line, "--retries cannot be negative")
        return
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise _err(line, f"invalid argument \"{value}\" for --{name}: {exc}") from None
    if 0 < seconds < 0.001:
        raise _err(line, f"Interval \"{name}\" cannot be less than 1ms")


def parse(text: str) -> Dockerfile:
    """The whole Dockerfile: meta ARGs (before the first FROM) and the stages."""
    escape, lines, warnings = logical_lines(text)
    if not lines:
        raise BuildError("Dockerfile parse error line 1: file with no instructions")
    meta: list[Instruction] = []
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    names: set[str] = set()
    for number, text_ in lines:
        ins = parse_instruction(number, text_, escape)
        if ins.keyword == "FROM":
            if ins.flag("platform") is not None:
                warnings.append(f"line {number}: FROM --platform is ignored (refengine builds for this machine only)")
            name = ins.args[1] if len(ins.args) > 1 else None
            if name is not None:
                if name in names:
                    raise _err(number, f"duplicate name for build stage: {name}")
                names.add(name)
            if stages:
                stages[-1] = _with_steps(stages[-1], current)
            stages.append(Stage(len(stages), ins.args[0], name, number, ins))
            current = []
            continue
        if current is None:
            if ins.keyword != "ARG":
                raise _err(number, f"{ins.keyword} before the first FROM: no build stage in current context "
                                   "(only ARG may come before FROM)")
            meta.append(ins)
            continue
        current.append(ins)
    if not stages:
        raise _err(lines[-1][0], "missing FROM: a Dockerfile needs at least one FROM instruction")
    stages[-1] = _with_steps(stages[-1], current)
    df = Dockerfile(escape, tuple(meta), tuple(stages), tuple(warnings))
    _check_stage_refs(df)
    return df


def _with_steps(stage: Stage, steps: list[Instruction] | None) -> Stage:
    return Stage(stage.index, stage.base, stage.name, stage.line, stage.from_instruction, tuple(steps or ()))


def _check_stage_refs(df: Dockerfile) -> None:
    """``COPY --from=N`` must name an earlier stage by index; a name of a later stage or
    of the stage itself is a loop. (A name that is no stage is an image, checked later.)"""
    for stage in df.stages:
        for ins in stage.steps:
            ref = ins.flag("from") if ins.keyword == "COPY" else None
            if ref is None:
                continue
            if not ref:
                raise _err(ins.line, "COPY --from requires a value: a stage name, a stage index or an image")
            if ref.isdigit():
                if int(ref) >= stage.index:
                    raise _err(ins.line, f"invalid from flag value {ref}: "
                                         + ("refers to current build stage" if int(ref) == stage.index
                                            else "refers to a later or undefined build stage"))
                continue
            index = df.stage_index(ref)
            if index is not None and index >= stage.index:
                raise _err(ins.line, f"invalid from flag value {ref}: "
                                     + ("refers to current build stage" if index == stage.index
                                        else "refers to a later build stage"))
