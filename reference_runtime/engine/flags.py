"""docker's command-line grammar: the flag table of every command, the parser
and the value parsers (sizes, restart policies, signals, durations).

Pure: no I/O. Errors are :class:`ContainerError` with docker's wording
("unknown flag: --x", 'invalid argument "lots" for "-m, --memory" flag: ...'),
which the CLI turns into exit status 125.

>>> parse_command("run", ["-d", "--rm", "-e", "A=1", "img", "sh"]).args
['img', 'sh']
"""

from __future__ import annotations

from ..errors import ContainerError
from .signals import SIGNALS  # noqa: F401 - parse_signal's table, also read from here

# Hot path: no re, dataclasses or typing at import time (each costs
# milliseconds of every `refengine run`).

# -- value parsers ------------------------------------------------------------

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(value: str) -> int:
    """docker's RAMInBytes: ``16m``, ``1.5g``, ``512k``, ``1024`` (binary units).

    >>> parse_bytes("16m")
    16777216
    """
    text = value.strip().lower()
    if text.endswith("b"):
        text = text[:-1]
    unit = text[-1:] if text[-1:] in _UNITS else ""
    number = text[: len(text) - len(unit)].rstrip(" ")
    if not number or not number.replace(".", "", 1).isdigit() or not number[0].isdigit():
        raise ValueError(f"invalid size: '{value}'")
    return int(float(number) * _UNITS[unit])


def parse_int(value: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")


def parse_restart(value: str) -> tuple[str, int]:
    """``--restart``: ``(name, max_retries)``.

    >>> parse_restart("on-failure:2")
    ('on-failure', 2)
    """
    name, _, count = value.partition(":")
    if name not in RESTART_POLICIES or (name == "" and value):
        raise ValueError(f"invalid restart policy '{value}'")
    if count:
        if name != "on-failure":
            raise ValueError(f"maximum retry count cannot be used with restart policy '{name}' ('{value}')")
        try:
            retries = int(count)
        except ValueError:
            raise ValueError(f"maximum retry count must be an integer: '{value}'") from None
        if retries < 0:
            raise ValueError(f"invalid restart policy '{value}': negative retry count")
        return name, retries
    return name, 0


def parse_signal(value: str) -> int:
    """docker's ParseSignal: ``SIGINT``, ``INT``, ``int`` or ``2``.

    >>> parse_signal("SIGINT"), parse_signal("int"), parse_signal("2")
    (2, 2, 2)
    """
    raw = value.strip()
    if raw.isdigit():
        number = int(raw)
        if 1 <= number <= 64:
            return number
        raise ValueError(f"invalid signal: {value}")
    name = raw.upper()
    name = name[3:] if name.startswith("SIG") else name
    if name in SIGNALS:
        return SIGNALS[name]
    import re

    m = re.fullmatch(r"RTMIN(?:\+(\d+))?|RTMAX(?:-(\d+))?", name)
    if m:
        return 34 + int(m.group(1) or 0) if name.startswith("RTMIN") else 64 - int(m.group(2) or 0)
    raise ValueError(f"invalid signal: {value}")


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


#: The longest time.Duration, in seconds (2**63 - 1 nanoseconds, about 292 years).
_MAX_DURATION = (2**63 - 1) / 1e9


def parse_go_duration(value: str) -> float:
    """Go's time.ParseDuration (``1h30m``, ``10s``, ``250ms``) in seconds."""
    import re

    pos, total = 0, 0.0
    if not value:
        raise ValueError(f"invalid duration {value!r}")
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(value) or total > _MAX_DURATION:  # Go: an int64 of nanoseconds, else overflow
        raise ValueError(f"invalid duration {value!r}")
    return total


def parse_duration_ns(value: str) -> int:
    """A Go ``time.Duration`` flag (``--health-interval 500ms``) in nanoseconds, as pflag
    reads it: a sign is allowed (the client refuses negatives with its own message).

    >>> parse_duration_ns("1.5s"), parse_duration_ns("-1s"), parse_duration_ns("0")
    (1500000000, -1000000000, 0)
    """
    sign = -1 if value.startswith("-") else 1
    body = value[1:] if value.startswith(("-", "+")) else value
    if body == "0":
        return 0
    try:
        return sign * round(parse_go_duration(body) * 1e9)
    except ValueError:
        raise ValueError(f'time: invalid duration "{value}"') from None


def parse_timestamp(value: str, now: float) -> float:
    """``--since``/``--until``: RFC 3339, a unix time or a Go duration before ``now``."""
    import datetime as dt
    import re

    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        return now - parse_go_duration(value)
    except ValueError:
        pass
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)(?:T(\d\d:\d\d(?::\d\d)?)(?:\.(\d+))?)?(Z|[+-]\d\d:\d\d)?", value)
    invalid = f"invalid time {value!r}: use RFC 3339, a unix timestamp or a duration like 10m"
    if not m:
        raise ValueError(invalid)
    clock = m.group(2) or "00:00:00"
    clock = clock if clock.count(":") == 2 else clock + ":00"
    frac = (m.group(3) or "0")[:6].ljust(6, "0")
    zone = m.group(4) or "Z"
    zone = "+00:00" if zone == "Z" else zone
    try:
        return dt.datetime.fromisoformat(f"{m.group(1)}T{clock}.{frac}{zone}").timestamp()
    except ValueError:  # a well-formed but impossible date: 2026-13-45, 25:61
        raise ValueError(invalid) from None


_MOUNT_FLAGS = {"readonly": "ReadOnly", "ro": "ReadOnly", "volume-nocopy": "NoCopy", "bind-nonrecursive": "NonRecursive"}


def parse_mount(value: str) -> dict:
    """``--mount``: docker's CLI grammar (opts/mount.go) into the shape of
    HostConfig.Mounts; the daemon's checks (sources, absolute paths) come later.

    >>> parse_mount("type=bind,src=/h,dst=/c,readonly")
    {'Type': 'bind', 'Source': '/h', 'Target': '/c', 'ReadOnly': True}
    >>> parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=0700")["TmpfsOptions"]
    {'SizeBytes': 1048576, 'Mode': 448}
    """
    import csv

    mount: dict = {"Type": "volume"}  # docker's default type
    options: dict[str, dict] = {}
    for field in next(csv.reader([value]), []):
        key, eq, val = field.partition("=")
        key = key.lower()
        if not eq and key in _MOUNT_FLAGS:
            section = {"NoCopy": "VolumeOptions", "NonRecursive": "BindOptions"}.get(_MOUNT_FLAGS[key])
            (options.setdefault(section, {}) if section else mount)[_MOUNT_FLAGS[key]] = True
            continue
        if not eq:
            raise ValueError(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            mount["Type"] = val.lower()
        elif key in ("source", "src"):
            mount["Source"] = val
        elif key in ("target", "dst", "destination"):
            mount["Target"] = val
        elif key in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            truth = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}.get(val.lower())
            if truth is None:
                raise ValueError(f"invalid value for {key}: {val}")
            section = {"volume-nocopy": "VolumeOptions", "bind-nonrecursive": "BindOptions"}.get(key)
            (options.setdefault(section, {}) if section else mount)[_MOUNT_FLAGS[key]] = truth
        elif key == "consistency":
            mount["Consistency"] = val.lower()
        elif key == "bind-propagation":
            options.setdefault("BindOptions", {})["Propagation"] = val.lower()
        elif key == "volume-driver":
            options.setdefault("VolumeOptions", {})["DriverConfig"] = {"Name": val}
        elif key in ("volume-label", "volume-opt"):
            options.setdefault("VolumeOptions", {})
        elif key == "tmpfs-size":
            try:
                options.setdefault("TmpfsOptions", {})["SizeBytes"] = parse_bytes(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            try:
                options.setdefault("TmpfsOptions", {})["Mode"] = int(val, 8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise ValueError("target is required")
    for section, kind in (("VolumeOptions", "volume"), ("BindOptions", "bind"), ("TmpfsOptions", "tmpfs")):
        if section in options and mount["Type"] != kind:
            raise ValueError(f"cannot mix '{kind}-*' options with mount type '{mount['Type']}'")
    mount.update(options)
    return mount


#: tmpfs options that are mount(2) flags: name -> (MS_* bit, set or cleared).
_TMPFS_FLAGS = {
    "ro": (1, True), "rw": (1, False), "nosuid": (2, True), "suid": (2, False), "nodev": (4, True), "dev": (4, False),
    "noexec": (8, True), "exec": (8, False), "sync": (16, True), "async": (16, False), "mand": (64, True),
    "nomand": (64, False), "dirsync": (128, True), "noatime": (1024, True), "atime": (1024, False),
    "nodiratime": (2048, True), "diratime": (2048, False), "relatime": (1 << 21, True), "norelatime": (1 << 21, False),
    "strictatime": (1 << 24, True), "nostrictatime": (1 << 24, False),
}
#: tmpfs options the kernel's tmpfs parses itself (passed as mount data).
_TMPFS_DATA = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")


def tmpfs_mount_options(options: str) -> tuple[int, str]:
    """A tmpfs's options (``--tmpfs PATH:OPTS``) as mount(2) flags and data, on top
    of docker's defaults for a tmpfs: nosuid, nodev, noexec. Pure.

    >>> tmpfs_mount_options("size=1m,mode=0700")
    (14, 'size=1m,mode=0700')
    >>> tmpfs_mount_options("exec,ro")
    (7, '')
    """
    flags = 2 | 4 | 8
    data = []
    for option in filter(None, options.split(",")):
        key, eq, _ = option.partition("=")
        if not eq and key in _TMPFS_FLAGS:
            bit, on = _TMPFS_FLAGS[key]
            flags = flags | bit if on else flags & ~bit
        elif eq and key in _TMPFS_DATA:
            data.append(option)
        else:
            raise ValueError("invalid tmpfs option [" + " ".join(f'"{p}"' for p in option.split("=", 1)) + "]")
    return flags, ",".join(data)


# -- flag tables --------------------------------------------------------------


class Flag:
    """One flag: its spellings, where its value goes (``dest``), its kind
    (``bool``, ``value`` or ``list``) and how its value is parsed."""

    __slots__ = ("names", "dest", "kind", "convert", "default")

    def __init__(self, names: tuple[str, ...], dest: str, kind: str = "value", convert=None, default=None):
        self.names, self.dest, self.kind, self.convert, self.default = names, dest, kind, convert, default

    @property
    def label(self) -> str:
        return ", ".join(self.names)


def flag(names: str, dest: str, kind: str = "value", convert=None, default=None) -> Flag:
    """One flag of a command's table: ``flag("-t --tag", "tag", "list")``."""
    return Flag(tuple(names.split()), dest, kind, convert, default)


_f = flag  # the tables below read better short


_CREATE = [
    _f("-i --interactive", "interactive", "bool"),
    _f("-t --tty", "tty", "bool"),
    _f("--rm", "rm", "bool"),
    _f("--name", "name"),
    _f("-l --label", "label", "list"),
    _f("-e --env", "env", "list"),
    _f("--env-file", "env_file", "list"),
    _f("-w --workdir", "workdir"),
    _f("-u --user", "user"),
    _f("--entrypoint", "entrypoint"),
    _f("-h --hostname", "hostname"),
    _f("-v --volume", "volume", "list"),
    _f("--mount", "mount", "list", convert=parse_mount),
    _f("--tmpfs", "tmpfs", "list"),
    _f("--volumes-from", "volumes_from", "list"),
    _f("--network --net", "network"),
    _f("--network-alias --net-alias", "network_alias", "list"),
    _f("--ip", "ip"),
    _f("--dns", "dns", "list"),
    _f("--link", "link", "list"),
    _f("-p --publish", "publish", "list"),
    _f("-P --publish-all", "publish_all", "bool"),
    _f("--expose", "expose", "list"),
    _f("-m --memory", "memory", convert=parse_bytes),
    _f("--memory-swap", "memory_swap", convert=lambda v: -1 if v == "-1" else parse_bytes(v)),
    _f("--pids-limit", "pids_limit", convert=parse_int),
    _f("--restart", "restart", convert=parse_restart),
    _f("--stop-signal", "stop_signal"),
    _f("--stop-timeout", "stop_timeout", convert=parse_int),
    _f("--init", "init", "bool"),
    _f("--pull", "pull"),
    _f("--cap-add", "cap_add", "list"),
    _f("--cap-drop", "cap_drop", "list"),
    _f("--sig-proxy", "sig_proxy", "bool", default=True),
    _f("-a --attach", "attach", "list"),
    _f("--cidfile", "cidfile"),
    _f("--platform", "platform"),
    _f("--read-only", "read_only", "bool"),
    _f("--privileged", "privileged", "bool"),
    _f("--security-opt", "security_opt", "list"),
    _f("--health-cmd", "health_cmd"),
    _f("--health-interval", "health_interval", convert=parse_duration_ns),
    _f("--health-timeout", "health_timeout", convert=parse_duration_ns),
    _f("--health-start-period", "health_start_period", convert=parse_duration_ns),
    _f("--health-retries", "health_retries", convert=parse_int),
    _f("--no-healthcheck", "no_healthcheck", "bool"),
]

_FORMAT = _f("-f --format", "format")
_FILTER = _f("-f --filter", "filter", "list")

COMMANDS = {
    # name: (flags, interspersed, min args, max args, usage)
    "run": ([_f("-d --detach", "detach", "bool"), *_CREATE], False, 1, None, "IMAGE [COMMAND] [ARG...]"),
    "create": (_CREATE, False, 1, None, "IMAGE [COMMAND] [ARG...]"),
    "start": ([_f("-a --attach", "attach", "bool"), _f("-i --interactive", "interactive", "bool")], True, 1, None, "CONTAINER [CONTAINER...]"),
    "stop": ([_f("-t --time", "time", convert=parse_int)], True, 1, None, "CONTAINER [CONTAINER...]"),
    "restart": ([_f("-t --time", "time", convert=parse_int)], True, 1, None, "CONTAINER [CONTAINER...]"),
    "kill": ([_f("-s --signal", "signal")], True, 1, None, "CONTAINER [CONTAINER...]"),
    "wait": ([], True, 1, None, "CONTAINER [CONTAINER...]"),
    "logs": ([_f("-f --follow", "follow", "bool"), _f("-n --tail", "tail"), _f("--since", "since"),
              _f("--until", "until"), _f("-t --timestamps", "timestamps", "bool"), _f("--details", "details", "bool")],
             True, 1, 1, "CONTAINER"),
    "ps": ([_f("-a --all", "all", "bool"), _f("-q --quiet", "quiet", "bool"), _f("-l --latest", "latest", "bool"),
            _f("-n --last", "last", convert=parse_int, default=-1), _FILTER, _f("--format", "format"),
            _f("--no-trunc", "no_trunc", "bool"), _f("-s --size", "size", "bool")], True, 0, 0, ""),
    "inspect": ([_FORMAT, _f("--type", "type"), _f("-s --size", "size", "bool")], True, 1, None, "NAME|ID [NAME|ID...]"),
    "rm": ([_f("-f --force", "force", "bool"), _f("-v --volumes", "volumes", "bool"), _f("-l --link", "link", "bool")],
           True, 1, None, "CONTAINER [CONTAINER...]"),
    "exec": ([_f("-d --detach", "detach", "bool"), _f("-i --interactive", "interactive", "bool"),
              _f("-t --tty", "tty", "bool"), _f("-e --env", "env", "list"), _f("--env-file", "env_file", "list"),
              _f("-w --workdir", "workdir"), _f("-u --user", "user"), _f("--privileged", "privileged", "bool")],
             False, 2, None, "CONTAINER COMMAND [ARG...]"),
    "top": ([], False, 1, None, "CONTAINER [ps OPTIONS]"),
    "stats": ([_f("-a --all", "all", "bool"), _f("--no-stream", "no_stream", "bool"),
               _f("--no-trunc", "no_trunc", "bool"), _f("--format", "format")], True, 0, None, "[CONTAINER...]"),
    "pause": ([], True, 1, None, "CONTAINER [CONTAINER...]"),
    "unpause": ([], True, 1, None, "CONTAINER [CONTAINER...]"),
    "rename": ([], True, 2, 2, "CONTAINER NEW_NAME"),
    "port": ([], True, 1, 2, "CONTAINER [PRIVATE_PORT[/PROTO]]"),
    "cp": ([_f("-a --archive", "archive", "bool"), _f("-L --follow-link", "follow_link", "bool")], True, 2, 2,
           "CONTAINER:SRC_PATH DEST_PATH|-"),
    "commit": ([_f("-a --author", "author"), _f("-m --message", "message"), _f("-c --change", "change", "list"),
                _f("-p --pause", "pause", "bool", default=True)], True, 1, 2, "CONTAINER [REPOSITORY[:TAG]]"),
    "export": ([_f("-o --output", "output")], True, 1, 1, "CONTAINER"),
    "import": ([_f("-c --change", "change", "list"), _f("-m --message", "message"), _f("--platform", "platform")],
               True, 1, 2, "file|URL|- [REPOSITORY[:TAG]]"),
    "save": ([_f("-o --output", "output")], True, 1, None, "IMAGE [IMAGE...]"),
    "load": ([_f("-i --input", "input"), _f("-q --quiet", "quiet", "bool")], True, 0, 0, ""),
    "images": ([_f("-a --all", "all", "bool"), _f("-q --quiet", "quiet", "bool"), _f("--digests", "digests", "bool"),
                _f("--no-trunc", "no_trunc", "bool"), _FILTER, _f("--format", "format")], True, 0, 1, "[REPOSITORY[:TAG]]"),
    "rmi": ([_f("-f --force", "force", "bool"), _f("--no-prune", "no_prune", "bool")], True, 1, None, "IMAGE [IMAGE...]"),
    "tag": ([], True, 2, 2, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]"),
    "history": ([_f("-H --human", "human", "bool", default=True), _f("--no-trunc", "no_trunc", "bool"),
                 _f("-q --quiet", "quiet", "bool"), _f("--format", "format")], True, 1, 1, "IMAGE"),
    "volume create": ([_f("-d --driver", "driver"), _f("--label", "label", "list"), _f("-o --opt", "opt", "list"),
                       _f("--name", "name")], True, 0, 1, "[VOLUME]"),
    "volume ls": ([_f("-q --quiet", "quiet", "bool"), _FILTER, _f("--format", "format")], True, 0, 0, ""),
    "volume inspect": ([_FORMAT], True, 1, None, "VOLUME [VOLUME...]"),
    "volume rm": ([_f("-f --force", "force", "bool")], True, 1, None, "VOLUME [VOLUME...]"),
    "volume prune": ([_f("-f --force", "force", "bool"), _f("-a --all", "all", "bool"), _f("--filter", "filter", "list")],
                     True, 0, 0, ""),
    "system df": ([_f("-v --verbose", "verbose", "bool"), _f("--format", "format")], True, 0, 0, ""),
    "system prune": ([_f("-a --all", "all", "bool"), _f("-f --force", "force", "bool"), _f("--volumes", "volumes", "bool"),
                      _f("--filter", "filter", "list")], True, 0, 0, ""),
    "system info": ([_FORMAT], True, 0, 0, ""),
    "system check": ([_f("--repair", "repair", "bool")], True, 0, 0, ""),
    "system events": ([_f("--since", "since"), _f("--until", "until"), _FILTER, _f("--format", "format")], True, 0, 0, ""),
    "version": ([_FORMAT], True, 0, 0, ""),
    "network create": ([_f("-d --driver", "driver"), _f("--subnet", "subnet", "list"), _f("--gateway", "gateway", "list"),
                        _f("--internal", "internal", "bool"), _f("--label", "label", "list"), _f("-o --opt", "opt", "list"),
                        _f("--ip-range", "ip_range", "list"), _f("--attachable", "attachable", "bool"),
                        _f("--ipv6", "ipv6", "bool")], True, 1, 1, "NETWORK"),
    "network ls": ([_f("-q --quiet", "quiet", "bool"), _FILTER, _f("--format", "format"),
                    _f("--no-trunc", "no_trunc", "bool")], True, 0, 0, ""),
    "network inspect": ([_FORMAT, _f("-v --verbose", "verbose", "bool")], True, 1, None, "NETWORK [NETWORK...]"),
    "network rm": ([_f("-f --force", "force", "bool")], True, 1, None, "NETWORK [NETWORK...]"),
    "network prune": ([_f("-f --force", "force", "bool"), _f("--filter", "filter", "list")], True, 0, 0, ""),
    "network connect": ([_f("--alias", "alias", "list"), _f("--ip", "ip"), _f("--link", "link", "list")],
                        True, 2, 2, "NETWORK CONTAINER"),
    "network disconnect": ([_f("-f --force", "force", "bool")], True, 2, 2, "NETWORK CONTAINER"),
}

ALIASES = {
    "info": "system info", "events": "system events", "container ls": "ps", "container list": "ps",
    "image ls": "images", "image list": "images", "image rm": "rmi", "image inspect": "inspect",
    "image save": "save", "image load": "load", "image tag": "tag", "image history": "history",
    "image import": "import", "container inspect": "inspect", "volume list": "volume ls",
    "container rm": "rm", "network list": "network ls", "network remove": "network rm",
}
for _name in ("run", "create", "start", "stop", "restart", "kill", "wait", "logs", "exec", "top", "pause",
              "unpause", "rename", "port", "cp", "commit", "export", "stats"):
    ALIASES[f"container {_name}"] = _name
GROUPS = ("volume", "system", "container", "image", "network")


class Parsed:
    """A parsed command line: the command, its flag values and operands."""

    __slots__ = ("command", "opts", "args")

    def __init__(self, command: str, opts: dict, args: list[str]):
        self.command, self.opts, self.args = command, opts, args


def _invalid(flag: Flag, value: str, reason: str) -> ContainerError:
    return ContainerError(f'invalid argument "{value}" for "{flag.label}" flag: {reason}')


def _bool(flag: Flag, value: str) -> bool:
    if value.lower() in ("true", "1", "t"):
        return True
    if value.lower() in ("false", "0", "f"):
        return False
    raise _invalid(flag, value, 'strconv.ParseBool: parsing "%s": invalid syntax' % value)


def parse_command(command: str, argv: list[str]) -> Parsed:
    """Parse the flags of ``command`` (a key of :data:`COMMANDS`) from ``argv``."""
    flags, interspersed, min_args, max_args, usage = COMMANDS[command]
    by_name = {name: flag for flag in flags for name in flag.names}
    opts = {f.dest: ([] if f.kind == "list" else f.default) for f in flags}
    args: list[str] = []

    def store(flag: Flag, value: str | None) -> None:
        if flag.kind == "bool":
            opts[flag.dest] = True if value is None else _bool(flag, value)
            return
        converted = value
        if flag.convert:
            try:
                converted = flag.convert(value)
            except ValueError as exc:
                raise _invalid(flag, value, str(exc)) from None
        if flag.kind == "list":
            opts[flag.dest].append(converted)
        else:
            opts[flag.dest] = converted

    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            args.extend(argv[i:])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg.partition("=")
            flag = by_name.get(name)
            if flag is None:
                if name == "--help":
                    raise ContainerError(f"usage: refengine {command} [OPTIONS] {usage}".rstrip())
                raise ContainerError(f"unknown flag: {name}")
            if flag.kind == "bool":
                store(flag, value if eq else None)
                continue
            if not eq:
                if i >= len(argv):
                    raise ContainerError(f"flag needs an argument: {name}")
                value, i = argv[i], i + 1
            store(flag, value)
        elif arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                short = "-" + arg[j]
                flag = by_name.get(short)
                if flag is None:
                    raise ContainerError(f"unknown shorthand flag: '{arg[j]}' in {arg}")
                rest = arg[j + 1:]
                if flag.kind == "bool":
                    if rest.startswith("="):
                        store(flag, rest[1:])
                        break
                    store(flag, None)
                    j += 1
                    continue
                if rest:
                    store(flag, rest[1:] if rest.startswith("=") else rest)
                elif i < len(argv):
                    store(flag, argv[i])
                    i += 1
                else:
                    raise ContainerError(f"flag needs an argument: '{arg[j]}' in {arg}")
                break
        else:
            args.append(arg)
            if not interspersed:
                args.extend(argv[i:])
                break
    if len(args) < min_args:
        need = "exactly" if max_args == min_args else "at least"
        plural = "s" if min_args != 1 else ""
        raise ContainerError(f'"refengine {command}" requires {need} {min_args} argument{plural}. '
                             f"Usage: refengine {command} [OPTIONS] {usage}".rstrip())
    if max_args is not None and len(args) > max_args:
        if max_args == 0:
            raise ContainerError(f'"refengine {command}" accepts no arguments. Usage: refengine {command} [OPTIONS]')
        raise ContainerError(f'"refengine {command}" requires at most {max_args} argument{"s" if max_args != 1 else ""}. '
                             f"Usage: refengine {command} [OPTIONS] {usage}")
    return Parsed(command, opts, args)


def register(commands: dict) -> None:
    """Add commands to the one table :func:`parse_command` reads (the builder's: ``build``,
    ``image prune``, ``builder prune``), as ``name: (flags, interspersed, min, max, usage)``."""
    COMMANDS.update(commands)


def split_command(argv: list[str]) -> tuple[str, list[str]]:
    """``["volume", "ls", "-q"]`` -> ``("volume ls", ["-q"])``, resolving aliases."""
    if not argv:
        raise ContainerError("no command given; try: refengine run|ps|images|inspect|... (see refengine --help)")
    name = argv[0]
    rest = argv[1:]
    if name in GROUPS:
        if not rest or rest[0].startswith("-"):
            raise ContainerError(f'"refengine {name}" requires a subcommand')
        name, rest = f"{name} {rest[0]}", rest[1:]
    name = ALIASES.get(name, name)
    if name not in COMMANDS:
        raise ContainerError(f"unknown command: \"{name}\"; see refengine --help")
    return name, rest
