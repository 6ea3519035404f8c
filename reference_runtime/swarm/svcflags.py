"""docker's swarm command lines, pure: a pflag-like parser that remembers which
flags were given (docker's ``flags.Changed``), the flag tables of ``service
create`` and ``service update``, and the ServiceSpec they make.

:func:`service_spec` is docker CLI's ``ToService`` (cli/command/service/opts.go,
v20.10): the JSON it sends, Go's ``omitempty`` included, fields in the Go
structs' order; the daemon fills its defaults later (``service inspect``
shows them). :func:`update_spec` is ``updateService`` (update.go): the flags of
``service update`` applied to the spec the daemon returned.

Errors are :class:`FlagError` (a flag or its value: docker exits 125) or
:class:`SpecError` (the flags contradict each other: docker exits 1).

>>> flags = parse(SERVICE_CREATE, ["--replicas", "2", "--name", "web", "img", "sh"])
>>> service_spec(flags)["Mode"], flags.args
({'Replicated': {'Replicas': 2}}, ['img', 'sh'])
"""

from __future__ import annotations

import copy
import csv
import ipaddress
import os
import shlex
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

from ..engine.flags import parse_bytes, parse_duration_ns
from ..errors import RefError


class FlagError(RefError):
    """A flag that does not parse (unknown, missing or bad value): docker's 125."""


class SpecError(RefError):
    """Flags that parse but do not make a spec: docker's client error, status 1."""


# -- values: each converter raises ValueError with Go's wording ---------------------------


def go_uint(value: str) -> int:
    """strconv.ParseUint(s, 0, 64): decimal, 0x, 0o or 0b.

    >>> go_uint("3"), go_uint("0x10")
    (3, 16)
    """
    try:
        number = int(value, 0) if value[:2].lower() in ("0x", "0o", "0b") else int(value, 10)
    except ValueError:
        number = -1
    if number < 0 or value.strip() != value or value.startswith(("+", "-")) or "_" in value:
        raise ValueError(f'strconv.ParseUint: parsing "{value}": invalid syntax')
    if number >= 1 << 64:
        raise ValueError(f'strconv.ParseUint: parsing "{value}": value out of range')
    return number


def go_int(value: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def go_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{value}": invalid syntax') from None


def duration(value: str) -> int:
    """A Go time.Duration flag in nanoseconds (``1m30s`` -> 90000000000).

    >>> duration("1m30s"), duration("250ms"), duration("0")
    (90000000000, 250000000, 0)
    """
    return parse_duration_ns(value)


def positive_duration(value: str) -> int:
    ns = parse_duration_ns(value)
    if ns < 0:
        raise ValueError("duration cannot be negative")
    return ns


def nano_cpus(value: str) -> int:
    """opts.NanoCPUs: a rational number of CPUs in billionths.

    >>> nano_cpus("0.5"), nano_cpus("2")
    (500000000, 2000000000)
    """
    try:
        cpus = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {value} as a rational number") from None
    nano = cpus * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


def shell_words(value: str) -> list[str]:
    """ShlexOpt (``--entrypoint``, ``--args``): shell words.

    >>> shell_words("sh -c 'echo hi'")
    ['sh', '-c', 'echo hi']
    """
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def env_entry(value: str) -> str:
    """opts.ValidateEnv: ``KEY`` alone takes the caller's value when it has one."""
    key, eq, _ = value.partition("=")
    if not key:
        raise ValueError(f"invalid environment variable: {value}")
    if not eq and key in os.environ:
        return f"{key}={os.environ[key]}"
    return value


_WHITESPACE = " \t\n\v\f\r"


def label_entry(value: str) -> str:
    key = value.split("=", 1)[0].lstrip(_WHITESPACE)
    if not key:
        raise ValueError(f"invalid label '{value}': empty name")
    if any(c in key for c in _WHITESPACE):
        raise ValueError(f"label '{key}' contains whitespaces")
    return value


def ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value} is not an ip address") from None


def extra_host(value: str) -> str:
    name, colon, ip = value.partition(":")
    if not colon or not name:
        raise ValueError(f'bad format for add-host: "{value}"')
    if ip != "host-gateway":
        try:
            ip_address(ip)
        except ValueError:
            raise ValueError(f'invalid IP address in add-host: "{ip}"') from None
    return value


def dns_search(value: str) -> str:
    value = value.strip(" ")
    if value != "." and (not value or not any(c.isalpha() for c in value) or len(value) >= 255):
        raise ValueError(f"{value} is not a valid domain")
    return value


def ulimit(value: str) -> dict:
    """go-units ParseUlimit: ``nofile=1024[:2048]``.

    >>> ulimit("nofile=1024:2048")
    {'Name': 'nofile', 'Hard': 2048, 'Soft': 1024}
    """
    name, eq, limits = value.partition("=")
    if not eq:
        raise ValueError(f"invalid ulimit argument: {value}")
    soft_text, colon, hard_text = limits.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if colon else soft
    except ValueError:
        raise ValueError(f"invalid ulimit argument: {value}") from None
    if soft > hard:
        raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def placement_pref(value: str) -> dict:
    fields = value.split("=")
    if len(fields) != 2:
        raise ValueError('placement preference must be of the format "<strategy>=<arg>"')
    if fields[0] != "spread":
        raise ValueError(f"unsupported placement preference {fields[0]} (only spread is supported)")
    return {"Spread": {"SpreadDescriptor": fields[1]}}


def _csv_fields(value: str) -> list[str]:
    return next(csv.reader([value]), [])


def _long_syntax(value: str) -> bool:
    # docker's regexp `\w+=\w+(,\w+=\w+)*`, unanchored: any word=word pair
    import re

    return re.search(r"\w+=\w+", value) is not None


def mount(value: str) -> dict:
    """opts.MountOpt for a service: a mount.Mount in the Go struct's field order.

    >>> mount("type=bind,src=/h,dst=/c,ro")
    {'Type': 'bind', 'Source': '/h', 'Target': '/c', 'ReadOnly': True}
    >>> mount("target=/data")
    {'Type': 'volume', 'Target': '/data'}
    """
    m: dict[str, Any] = {"Type": "volume"}
    volume: dict[str, Any] | None = None
    bind: dict[str, Any] | None = None
    tmpfs: dict[str, Any] | None = None

    def volume_options() -> dict:
        nonlocal volume
        if volume is None:
            volume = {"Labels": {}, "DriverConfig": {}}
        return volume

    def parse_bool(key: str, text: str) -> bool:
        truth = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
                 "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}.get(text)
        if truth is None:
            raise ValueError(f"invalid value for {key}: {text}")
        return truth

    for item in _csv_fields(value):
        key, eq, val = item.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m["ReadOnly"] = True
                continue
            if key == "volume-nocopy":
                volume_options()["NoCopy"] = True
                continue
            if key == "bind-nonrecursive":
                bind = bind or {}
                bind["NonRecursive"] = True
                continue
            raise ValueError(f"invalid field '{item}' must be a key=value pair")
        if key == "type":
            m["Type"] = val.lower()
        elif key in ("source", "src"):
            m["Source"] = val
        elif key in ("target", "dst", "destination"):
            m["Target"] = val
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = parse_bool(key, val)
        elif key == "consistency":
            m["Consistency"] = val.lower()
        elif key == "bind-propagation":
            bind = bind or {}
            bind["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            bind = bind or {}
            bind["NonRecursive"] = parse_bool(key, val)
        elif key == "volume-nocopy":
            try:
                volume_options()["NoCopy"] = parse_bool(key, val)
            except ValueError:
                raise ValueError(f"invalid value for volume-nocopy: {val}") from None
        elif key == "volume-label":
            k, _, v = val.partition("=")
            volume_options()["Labels"][k] = v
        elif key == "volume-driver":
            volume_options()["DriverConfig"]["Name"] = val
        elif key == "volume-opt":
            k, _, v = val.partition("=")
            volume_options()["DriverConfig"].setdefault("Options", {})[k] = v
        elif key == "tmpfs-size":
            try:
                size = parse_bytes(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
            tmpfs = tmpfs or {}
            tmpfs["SizeBytes"] = size
        elif key == "tmpfs-mode":
            try:
                mode = int(val, 8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
            tmpfs = tmpfs or {}
            tmpfs["Mode"] = mode
        else:
            raise ValueError(f"unexpected key '{key}' in '{item}'")
    if not m.get("Type"):
        raise ValueError("type is required")
    if not m.get("Target"):
        raise ValueError("target is required")
    for options, kind in ((volume, "volume"), (bind, "bind"), (tmpfs, "tmpfs")):
        if options is not None and m["Type"] != kind:
            raise ValueError(f"cannot mix '{kind}-*' options with mount type '{m['Type']}'")
    ordered = {k: m[k] for k in ("Type", "Source", "Target", "ReadOnly", "Consistency") if m.get(k)}
    if bind is not None:
        ordered["BindOptions"] = {k: bind[k] for k in ("Propagation", "NonRecursive") if bind.get(k)}
    if volume is not None:
        options = {k: volume[k] for k in ("NoCopy", "Labels") if volume.get(k)}
        driver = {k: volume["DriverConfig"][k] for k in ("Name", "Options") if volume["DriverConfig"].get(k)}
        options["DriverConfig"] = driver
        ordered["VolumeOptions"] = options
    if tmpfs is not None:
        ordered["TmpfsOptions"] = {k: tmpfs[k] for k in ("SizeBytes", "Mode") if tmpfs.get(k)}
    return ordered


def _port_number(text: str) -> int:
    try:
        number = int(text, 10)
    except ValueError:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax') from None
    if not 0 <= number <= 65535:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return number


def _port_range(text: str) -> tuple[int, int]:
    start, dash, end = text.partition("-")
    try:
        first = int(start, 10)
        last = int(end, 10) if dash else first
    except ValueError:
        raise ValueError(f"Invalid port: {text}" if not dash else f"Invalid range specified for port: {text}") from None
    if not (0 <= first <= 65535 and 0 <= last <= 65535) or last < first:
        raise ValueError(f"Invalid range specified for port: {text}")
    return first, last


def ports(value: str) -> list[dict]:
    """opts.PortOpt: ``published=8080,target=80[,protocol=udp][,mode=host]`` or
    ``[PUBLISHED:]TARGET[/PROTO]`` (ranges too), each a PortConfig.

    >>> ports("8080:80")
    [{'Protocol': 'tcp', 'TargetPort': 80, 'PublishedPort': 8080, 'PublishMode': 'ingress'}]
    >>> ports("target=53,published=53,protocol=udp,mode=host")
    [{'Protocol': 'udp', 'TargetPort': 53, 'PublishedPort': 53, 'PublishMode': 'host'}]
    """
    if _long_syntax(value):
        config: dict[str, Any] = {}
        for item in _csv_fields(value):
            key, eq, val = item.partition("=")
            if not eq:
                raise ValueError(f"invalid field {item}")
            key, val = key.lower(), val.lower()
            if key == "protocol":
                if val not in ("tcp", "udp", "sctp"):
                    raise ValueError(f"invalid protocol value {val}")
                config["Protocol"] = val
            elif key == "mode":
                if val not in ("ingress", "host"):
                    raise ValueError(f"invalid publish mode value {val}")
                config["PublishMode"] = val
            elif key == "target":
                config["TargetPort"] = _port_number(val)
            elif key == "published":
                config["PublishedPort"] = _port_number(val)
            else:
                raise ValueError(f"invalid field key {key}")
        if not config.get("TargetPort"):
            raise ValueError('missing mandatory field "target"')
        return [_port_config(config.get("Protocol") or "tcp", config["TargetPort"], config.get("PublishedPort", 0),
                             config.get("PublishMode") or "ingress")]
    # nat.ParsePortSpecs: [ip:]published:target[/proto], either side a range
    spec, slash, proto = value.rpartition("/") if "/" in value else (value, "", "tcp")
    proto = proto.lower() or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"invalid proto: {proto}")
    parts = spec.split(":")
    if len(parts) > 3:
        raise ValueError(f"invalid port format: {value}")
    if len(parts) == 3:
        if parts[0]:
            raise ValueError("hostip is not supported")
        parts = parts[1:]
    if len(parts) == 1:
        # a target without a published port: swarm picks one (PublishedPort 0)
        first, last = _port_range(parts[0])
        return [_port_config(proto, port, 0, "ingress") for port in range(first, last + 1)]
    published, target = parts
    t_first, t_last = _port_range(target)
    if published:
        p_first, p_last = _port_range(published)
        if t_last - t_first != p_last - p_first and p_last != p_first:
            raise ValueError(f"Invalid ranges specified for container and host Ports: {target} and {published}")
    configs = []
    for offset, port in enumerate(range(t_first, t_last + 1)):
        if not published:
            configs.append(_port_config(proto, port, 0, "ingress"))
        elif p_first == p_last and t_first != t_last:
            configs.append(_port_config(proto, port, p_first, "ingress"))
        else:
            configs.append(_port_config(proto, port, p_first + offset, "ingress"))
    return configs


def _port_config(protocol: str, target: int, published: int, mode: str) -> dict:
    config: dict[str, Any] = {"Protocol": protocol, "TargetPort": target}
    if published:
        config["PublishedPort"] = published
    config["PublishMode"] = mode
    return config


def network(value: str) -> dict:
    """opts.NetworkOpt: ``NAME`` or ``name=NAME,alias=A,driver-opt=K=V`` as a
    NetworkAttachmentConfig (the target stays a name: refengine's swarm resolves it)."""
    if not _long_syntax(value):
        return {"Target": value}
    attachment: dict[str, Any] = {"Target": "", "Aliases": []}
    for item in _csv_fields(value):
        key, eq, val = item.partition("=")
        if not eq:
            raise ValueError(f"invalid field {item}")
        key, val = key.strip().lower(), val.strip().lower()
        if key == "name":
            attachment["Target"] = val
        elif key == "alias":
            attachment["Aliases"].append(val)
        elif key in ("ip", "ip6"):
            pass  # docker's CLI parses them but a service's attachment has no place for them
        elif key == "driver-opt":
            k, eq2, v = val.partition("=")
            if not eq2:
                raise ValueError("invalid key value pair format in driver options")
            attachment.setdefault("DriverOpts", {})[k.strip()] = v.strip()
        else:
            raise ValueError(f"invalid field key {key}")
    if not attachment["Target"]:
        raise ValueError("network name/id is not specified")
    if not attachment["Aliases"]:
        del attachment["Aliases"]
    return attachment


# -- the parser ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Opt:
    """One flag: its long name (docker's flag constant, the key of :class:`Flags`),
    shorthand, kind (``bool``, ``value``, ``list``, ``extend``: a list flag whose
    converter returns several items) and converter."""

    name: str
    short: str = ""
    kind: str = "value"
    convert: Callable[[str], Any] | None = None
    default: Any = None

    @property
    def label(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"


@dataclass
class Flags:
    """Parsed flags: values by long name, the names given (``changed``), the arguments."""

    values: dict[str, Any]
    changed: set[str] = field(default_factory=set)
    args: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def given(self, *names: str) -> bool:
        """docker's anyChanged."""
        return any(n in self.changed for n in names)


@dataclass(frozen=True)
class Table:
    """A command's flags; ``interspersed`` False stops at the first argument
    (``service create IMAGE --flag`` passes ``--flag`` to the container)."""

    opts: tuple[Opt, ...]
    interspersed: bool = True

    def extended(self, *more: Opt, interspersed: bool | None = None) -> "Table":
        return Table(self.opts + more, self.interspersed if interspersed is None else interspersed)


def _go_bool(opt: Opt, value: str) -> bool:
    truth = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
             "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}.get(value)
    if truth is None:
        raise FlagError(f'invalid argument "{value}" for "{opt.label}" flag: '
                        f'strconv.ParseBool: parsing "{value}": invalid syntax')
    return truth


def parse(table: Table, argv: list[str]) -> Flags:
    """pflag's parsing of ``argv`` against ``table``.

    >>> f = parse(Table((Opt("quiet", "q", "bool"), Opt("filter", "f", "list"))), ["-qf", "a=b", "x"])
    >>> f["quiet"], f["filter"], sorted(f.changed), f.args
    (True, ['a=b'], ['filter', 'quiet'], ['x'])
    """
    by_long = {o.name: o for o in table.opts}
    by_short = {o.short: o for o in table.opts if o.short}
    values: dict[str, Any] = {o.name: ([] if o.kind in ("list", "extend") else o.default) for o in table.opts}
    flags = Flags(values)

    def store(opt: Opt, value: str | None) -> None:
        flags.changed.add(opt.name)
        if opt.kind == "bool":
            values[opt.name] = True if value is None else _go_bool(opt, value)
            return
        assert value is not None
        converted: Any = value
        if opt.convert is not None:
            try:
                converted = opt.convert(value)
            except ValueError as exc:
                raise FlagError(f'invalid argument "{value}" for "{opt.label}" flag: {exc}') from None
        if opt.kind == "list":
            values[opt.name].append(converted)
        elif opt.kind == "extend":
            values[opt.name].extend(converted)
        else:
            values[opt.name] = converted

    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            flags.args.extend(argv[i:])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            opt = by_long.get(name)
            if opt is None:
                raise FlagError(f"unknown flag: --{name}")
            if opt.kind == "bool":
                store(opt, value if eq else None)
            elif eq:
                store(opt, value)
            elif i < len(argv):
                store(opt, argv[i])
                i += 1
            else:
                raise FlagError(f"flag needs an argument: --{name}")
        elif arg.startswith("-") and len(arg) > 1:
            j = 1
            while j < len(arg):
                opt = by_short.get(arg[j])
                if opt is None:
                    raise FlagError(f"unknown shorthand flag: '{arg[j]}' in {arg}")
                rest = arg[j + 1:]
                if opt.kind == "bool":
                    if rest.startswith("="):
                        store(opt, rest[1:])
                        break
                    store(opt, None)
                    j += 1
                    continue
                if rest:
                    store(opt, rest[1:] if rest.startswith("=") else rest)
                elif i < len(argv):
                    store(opt, argv[i])
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: '{arg[j]}' in {arg}")
                break
        else:
            flags.args.append(arg)
            if not table.interspersed:
                flags.args.extend(argv[i:])
                break
    return flags


# -- the flag tables (cli/command/service/opts.go addServiceFlags, create.go, update.go) --------

#: The update and rollback flags' names, in the order of UpdateConfig's fields.
_UPDATE_KEYS = ("parallelism", "delay", "monitor", "failure-action", "max-failure-ratio", "order")


def _common(defaults: bool) -> tuple[Opt, ...]:
    """addServiceFlags: the flags of both create and update; ``defaults``: create's
    flag defaults (update has none, so an unset flag reads as Go's zero)."""
    return (
        Opt("detach", "d", "bool", default=False), Opt("quiet", "q", "bool", default=False),
        Opt("workdir", "w", default=""), Opt("user", "u", default=""), Opt("hostname", default=""),
        Opt("entrypoint", convert=shell_words, default=[]),
        Opt("cap-add", kind="list"), Opt("cap-drop", kind="list"),
        Opt("limit-cpu", convert=nano_cpus, default=0), Opt("limit-memory", convert=parse_bytes, default=0),
        Opt("reserve-cpu", convert=nano_cpus, default=0), Opt("reserve-memory", convert=parse_bytes, default=0),
        Opt("limit-pids", convert=go_int, default=0),
        Opt("stop-grace-period", convert=duration), Opt("replicas", convert=go_uint),
        Opt("max-concurrent", convert=go_uint), Opt("replicas-max-per-node", convert=go_uint, default=0),
        Opt("restart-condition", default=""), Opt("restart-delay", convert=duration),
        Opt("restart-max-attempts", convert=go_uint), Opt("restart-window", convert=duration),
        Opt("update-parallelism", convert=go_uint, default=1 if defaults else 0),
        Opt("update-delay", convert=duration, default=0), Opt("update-monitor", convert=duration, default=0),
        Opt("update-failure-action", default=""), Opt("update-max-failure-ratio", convert=go_float, default=0.0),
        Opt("update-order", default=""),
        Opt("rollback-parallelism", convert=go_uint, default=1 if defaults else 0),
        Opt("rollback-delay", convert=duration, default=0), Opt("rollback-monitor", convert=duration, default=0),
        Opt("rollback-failure-action", default=""), Opt("rollback-max-failure-ratio", convert=go_float, default=0.0),
        Opt("rollback-order", default=""),
        Opt("endpoint-mode", default="vip" if defaults else ""),
        Opt("with-registry-auth", kind="bool", default=False), Opt("no-resolve-image", kind="bool", default=False),
        Opt("log-driver", default=""), Opt("log-opt", kind="list", convert=env_entry),
        Opt("health-cmd", default=""), Opt("health-interval", convert=positive_duration),
        Opt("health-timeout", convert=positive_duration), Opt("health-retries", convert=go_int, default=0),
        Opt("health-start-period", convert=positive_duration), Opt("no-healthcheck", kind="bool", default=False),
        Opt("tty", "t", "bool", default=False), Opt("read-only", kind="bool", default=False),
        Opt("stop-signal", default=""), Opt("isolation", default=""),
    )


SERVICE_CREATE = Table(_common(True) + (
    Opt("mode", default="replicated"), Opt("name", default=""),
    Opt("label", "l", "list", label_entry), Opt("container-label", kind="list", convert=label_entry),
    Opt("env", "e", "list", env_entry), Opt("env-file", kind="list"), Opt("mount", kind="list", convert=mount),
    Opt("constraint", kind="list"), Opt("placement-pref", kind="list", convert=placement_pref),
    Opt("network", kind="list", convert=network), Opt("publish", "p", "extend", ports),
    Opt("group", kind="list"), Opt("dns", kind="list", convert=ip_address), Opt("dns-option", kind="list"),
    Opt("dns-search", kind="list", convert=dns_search), Opt("host", kind="list", convert=extra_host),
    Opt("init", kind="bool", default=False), Opt("sysctl", kind="list"), Opt("ulimit", kind="list", convert=ulimit),
), interspersed=False)

SERVICE_UPDATE = Table(_common(False) + (
    Opt("image", default=""), Opt("args", convert=shell_words, default=[]),
    Opt("rollback", kind="bool", default=False), Opt("force", kind="bool", default=False),
    Opt("env-rm", kind="list"), Opt("group-rm", kind="list"), Opt("label-rm", kind="list"),
    Opt("container-label-rm", kind="list"), Opt("mount-rm", kind="list"),
    Opt("publish-rm", kind="extend", convert=ports), Opt("constraint-rm", kind="list"),
    Opt("dns-rm", kind="list"), Opt("dns-option-rm", kind="list"), Opt("dns-search-rm", kind="list"),
    Opt("host-rm", kind="list"),
    Opt("label-add", kind="list", convert=label_entry), Opt("container-label-add", kind="list", convert=label_entry),
    Opt("env-add", kind="list", convert=env_entry), Opt("mount-add", kind="list", convert=mount),
    Opt("constraint-add", kind="list"), Opt("placement-pref-add", kind="list", convert=placement_pref),
    Opt("placement-pref-rm", kind="list", convert=placement_pref),
    Opt("network-add", kind="list", convert=network), Opt("network-rm", kind="list"),
    Opt("publish-add", kind="extend", convert=ports), Opt("group-add", kind="list"),
    Opt("dns-add", kind="list", convert=ip_address), Opt("dns-option-add", kind="list"),
    Opt("dns-search-add", kind="list", convert=dns_search), Opt("host-add", kind="list", convert=extra_host),
    Opt("init", kind="bool", default=False), Opt("sysctl-add", kind="list"), Opt("sysctl-rm", kind="list"),
    Opt("ulimit-add", kind="list", convert=ulimit), Opt("ulimit-rm", kind="list"),
))


# -- swarmkit's defaults (api/defaults/service.go), which the CLI copies in when a flag
# -- of a group is given -------------------------------------------------------------------

SECOND = 1_000_000_000
DEFAULT_RESTART = {"Condition": "any", "Delay": 5 * SECOND, "MaxAttempts": 0}
DEFAULT_UPDATE = {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * SECOND, "MaxFailureRatio": 0,
                  "Order": "stop-first"}
DEFAULT_STOP_GRACE_PERIOD = 10 * SECOND


def _update_config(flags: Flags, prefix: str, current: dict | None) -> dict:
    """The UpdateConfig (or RollbackConfig) with ``--PREFIX-*`` applied; Delay and
    Monitor are omitempty (0 omitted), the rest always present."""
    config = dict(current) if current is not None else dict(DEFAULT_UPDATE)
    fields = dict(zip(_UPDATE_KEYS, ("Parallelism", "Delay", "Monitor", "FailureAction", "MaxFailureRatio", "Order")))
    for key, name in fields.items():
        if f"{prefix}-{key}" in flags.changed:
            config[name] = flags[f"{prefix}-{key}"]
    ordered = {"Parallelism": config.get("Parallelism", 0)}
    for name in ("Delay", "FailureAction", "Monitor"):
        if config.get(name):
            ordered[name] = config[name]
    ordered["MaxFailureRatio"] = config.get("MaxFailureRatio", 0)
    ordered["Order"] = config.get("Order", "")
    return ordered


def _kv_map(entries: list[str]) -> dict[str, str]:
    """opts.ConvertKVStringsToMap."""
    result: dict[str, str] = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        result[key] = value
    return result


def _omit(pairs: list[tuple[str, Any]]) -> dict:
    """A Go struct with ``omitempty`` on every field: zero values left out."""
    return {k: v for k, v in pairs if v not in (None, "", 0, False, [], {}) or v is True}


def read_env_file(path: str) -> list[str]:
    """opts.ParseEnvFile (``--env-file``): KEY=VALUE lines; KEY alone takes the caller's value."""
    entries = []
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise SpecError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from None
    except UnicodeDecodeError:
        raise SpecError(f"env file {path} contains invalid utf8 bytes") from None
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        key = key.lstrip(_WHITESPACE)
        if any(c in key for c in _WHITESPACE):
            raise SpecError(f"variable '{key}' contains whitespaces")
        if not key:
            raise SpecError(f"no variable name on line '{line}'")
        if eq:
            entries.append(f"{key}={value}")
        elif line.strip() in os.environ:
            entries.append(f"{line.strip()}={os.environ[line.strip()]}")
    return entries


def _environment(flags: Flags) -> list[str]:
    """makeEnv: env files then -e, a later KEY replacing an earlier one."""
    variables = [e for path in flags["env-file"] for e in read_env_file(path)] + flags["env"]
    current: list[str] = []
    for entry in variables:
        key = entry.split("=", 1)[0]
        current = [c for c in current if c == entry or not c.startswith(key + "=")]
        current.append(entry)
    return current


def _healthcheck(flags: Flags) -> dict | None:
    """toHealthConfig: ``--no-healthcheck`` or the ``--health-*`` flags."""
    has_settings = bool(flags["health-cmd"]) or flags["health-interval"] is not None or \
        flags["health-timeout"] is not None or flags["health-retries"] != 0
    if flags["no-healthcheck"]:
        if has_settings:
            raise SpecError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not has_settings:
        return None
    return _omit([("Test", ["CMD-SHELL", flags["health-cmd"]] if flags["health-cmd"] else None),
                  ("Interval", flags["health-interval"] or 0), ("Timeout", flags["health-timeout"] or 0),
                  ("StartPeriod", flags["health-start-period"] or 0), ("Retries", flags["health-retries"])])


def _mode(flags: Flags) -> dict:
    """ToServiceMode."""
    mode, replicas, concurrent = flags["mode"], flags["replicas"], flags["max-concurrent"]
    per_node = flags["replicas-max-per-node"]
    if mode == "global":
        if replicas is not None:
            raise SpecError("replicas can only be used with replicated or replicated-job mode")
        if per_node:
            raise SpecError("replicas-max-per-node can only be used with replicated or replicated-job mode")
        if concurrent is not None:
            raise SpecError("max-concurrent can only be used with replicated-job mode")
        return {"Global": {}}
    if mode == "replicated":
        if concurrent is not None:
            raise SpecError("max-concurrent can only be used with replicated-job mode")
        return {"Replicated": {} if replicas is None else {"Replicas": replicas}}
    if mode == "replicated-job":
        job = {}
        if (concurrent if concurrent is not None else replicas) is not None:
            job["MaxConcurrent"] = concurrent if concurrent is not None else replicas
        if replicas is not None:
            job["TotalCompletions"] = replicas
        return {"ReplicatedJob": job}
    if mode == "global-job":
        if per_node:
            raise SpecError("replicas-max-per-node can only be used with replicated or replicated-job mode")
        if concurrent is not None:
            raise SpecError("max-concurrent can only be used with replicated-job mode")
        if replicas is not None:
            raise SpecError("replicas can only be used with replicated or replicated-job mode")
        return {"GlobalJob": {}}
    raise SpecError(f"Unknown mode: {mode}, only replicated and global supported")


def _restart_policy(flags: Flags, current: dict | None) -> dict | None:
    names = ("restart-condition", "restart-delay", "restart-max-attempts", "restart-window")
    if not flags.given(*names):
        return current
    policy = dict(current) if current is not None else dict(DEFAULT_RESTART)
    for flag_name, key in zip(names, ("Condition", "Delay", "MaxAttempts", "Window")):
        if flag_name in flags.changed:
            policy[key] = flags[flag_name]
    return {k: policy[k] for k in ("Condition", "Delay", "MaxAttempts", "Window") if k in policy and
            (k != "Condition" or policy[k])}


def effective_caps(add: list[str], drop: list[str]) -> tuple[list[str], list[str]]:
    """opts.EffectiveCapAddCapDrop: normalized (CAP_ prefix), add wins over drop, sorted.

    >>> effective_caps(["net_admin"], ["chown", "NET_ADMIN"])
    (['CAP_NET_ADMIN'], ['CAP_CHOWN'])
    """
    add_set, drop_set = {_cap(c) for c in add}, {_cap(c) for c in drop}
    if "ALL" in add_set:
        add_set = {"ALL"}
    if "ALL" in drop_set:
        drop_set = {"ALL"}
    cap_drop = sorted(c for c in drop_set if c not in add_set and c != "RESET")
    cap_add = sorted(c for c in add_set if c != "RESET")
    return cap_add, cap_drop


def _cap(name: str) -> str:
    name = name.strip().upper()
    if name in ("ALL", "RESET") or name.startswith("CAP_"):
        return name
    return "CAP_" + name


def service_spec(flags: Flags) -> dict:
    """``service create``'s ServiceSpec (docker CLI's ToService); ``flags.args`` is
    IMAGE [COMMAND [ARG...]]. SpecError for contradictory flags.

    >>> spec = service_spec(parse(SERVICE_CREATE, ["--name", "s", "busybox"]))
    >>> spec["TaskTemplate"]["ContainerSpec"], spec["EndpointSpec"]
    ({'Image': 'busybox', 'Init': False, 'DNSConfig': {}}, {'Mode': 'vip'})
    """
    image, args = flags.args[0], flags.args[1:]
    env = _environment(flags)
    health = _healthcheck(flags)
    mode = _mode(flags)
    update = _update_config(flags, "update", None) if flags.given(*(f"update-{k}" for k in _UPDATE_KEYS)) else None
    rollback = _update_config(flags, "rollback", None) \
        if flags.given(*(f"rollback-{k}" for k in _UPDATE_KEYS)) else None
    if ("ReplicatedJob" in mode or "GlobalJob" in mode) and (update or rollback):
        raise SpecError("update and rollback configuration is not supported for jobs")
    networks = sorted(flags["network"], key=lambda n: n["Target"])
    cap_add, cap_drop = effective_caps(flags["cap-add"], flags["cap-drop"])
    container = _omit([
        ("Image", image), ("Labels", _kv_map(flags["container-label"])), ("Command", flags["entrypoint"]),
        ("Args", args), ("Hostname", flags["hostname"]), ("Env", env), ("Dir", flags["workdir"]),
        ("User", flags["user"]), ("Groups", flags["group"]),
    ])
    container["Init"] = flags["init"]  # a *bool: present even when false
    container.update(_omit([
        ("StopSignal", flags["stop-signal"]), ("TTY", flags["tty"]), ("ReadOnly", flags["read-only"]),
        ("Mounts", flags["mount"]),
    ]))
    if "stop-grace-period" in flags.changed:
        container["StopGracePeriod"] = flags["stop-grace-period"]
    if health is not None:
        container["Healthcheck"] = health
    container.update(_omit([("Hosts", [f"{h.split(':', 1)[1]} {h.split(':', 1)[0]}" for h in flags["host"]])]))
    container["DNSConfig"] = _omit([("Nameservers", flags["dns"]), ("Search", flags["dns-search"]),
                                    ("Options", flags["dns-option"])])
    container.update(_omit([
        ("Isolation", flags["isolation"]), ("Sysctls", _kv_map(flags["sysctl"])), ("CapabilityAdd", cap_add),
        ("CapabilityDrop", cap_drop), ("Ulimits", sorted(flags["ulimit"], key=lambda u: u["Name"])),
    ]))
    task: dict[str, Any] = {"ContainerSpec": container}
    task["Resources"] = {
        "Limits": _omit([("NanoCPUs", flags["limit-cpu"]), ("MemoryBytes", flags["limit-memory"]),
                         ("Pids", flags["limit-pids"])]),
        "Reservations": _omit([("NanoCPUs", flags["reserve-cpu"]), ("MemoryBytes", flags["reserve-memory"])]),
    }
    restart = _restart_policy(flags, None)
    if restart is not None:
        task["RestartPolicy"] = restart
    task["Placement"] = _omit([("Constraints", flags["constraint"]), ("Preferences", flags["placement-pref"]),
                               ("MaxReplicas", flags["replicas-max-per-node"])])
    if networks:
        task["Networks"] = networks
    if flags["log-driver"]:
        task["LogDriver"] = _omit([("Name", flags["log-driver"]), ("Options", _kv_map(flags["log-opt"]))])
    task["ForceUpdate"] = 0
    spec: dict[str, Any] = {}
    if flags["name"]:
        spec["Name"] = flags["name"]
    spec["Labels"] = _kv_map(flags["label"])
    spec["TaskTemplate"] = task
    spec["Mode"] = mode
    if update is not None:
        spec["UpdateConfig"] = update
    if rollback is not None:
        spec["RollbackConfig"] = rollback
    spec["EndpointSpec"] = _omit([("Mode", flags["endpoint-mode"].lower()), ("Ports", flags["publish"])])
    return spec


# -- service update ------------------------------------------------------------------------


def check_rollback_alone(flags: Flags) -> None:
    """``--rollback`` takes no other flag but ``--detach`` and ``--quiet``."""
    if flags["rollback"] and flags.changed - {"rollback", "detach", "quiet"}:
        raise SpecError("other flags may not be combined with --rollback")


def update_spec(current: dict, flags: Flags) -> dict:
    """``service update``'s new spec: ``current`` (the daemon's Spec, untouched) with
    the flags applied as docker's updateService does.

    >>> old = {"Name": "s", "Labels": {}, "TaskTemplate": {"ContainerSpec": {"Image": "a", "Env": ["A=1"]}},
    ...        "Mode": {"Replicated": {"Replicas": 1}}}
    >>> new = update_spec(old, parse(SERVICE_UPDATE, ["--env-add", "B=2", "--replicas", "3", "s"]))
    >>> new["TaskTemplate"]["ContainerSpec"]["Env"], new["Mode"]
    (['A=1', 'B=2'], {'Replicated': {'Replicas': 3}})
    """
    spec = copy.deepcopy(current)
    task = spec.setdefault("TaskTemplate", {})
    cspec = task.setdefault("ContainerSpec", {})
    changed = flags.changed

    def set_or_drop(target: dict, key: str, value: Any) -> None:
        if value in (None, "", [], {}):
            target.pop(key, None)
        else:
            target[key] = value

    spec["Labels"] = _update_map(spec.get("Labels"), flags, "label-add", "label-rm")
    labels = _update_map(cspec.get("Labels"), flags, "container-label-add", "container-label-rm")
    set_or_drop(cspec, "Labels", labels)
    for flag_name, key in (("image", "Image"), ("workdir", "Dir"), ("user", "User"), ("hostname", "Hostname"),
                           ("isolation", "Isolation"), ("stop-signal", "StopSignal")):
        if flag_name in changed:
            set_or_drop(cspec, key, flags[flag_name])
    for flag_name, key in (("args", "Args"), ("entrypoint", "Command")):
        if flag_name in changed:
            set_or_drop(cspec, key, flags[flag_name])
    set_or_drop(cspec, "Env", _update_env(cspec.get("Env") or [], flags))
    if "init" in changed:
        cspec["Init"] = flags["init"]
    if flags.given("mount-add", "mount-rm") or cspec.get("Mounts"):
        set_or_drop(cspec, "Mounts", _update_mounts(cspec.get("Mounts") or [], flags))
    sysctls = _update_map(cspec.get("Sysctls"), flags, "sysctl-add", "sysctl-rm")
    set_or_drop(cspec, "Sysctls", sysctls)
    if flags.given("ulimit-add", "ulimit-rm") or cspec.get("Ulimits"):
        limits = {u["Name"]: u for u in cspec.get("Ulimits") or []}
        for name in _kv_map(flags["ulimit-rm"]):
            limits.pop(name, None)
        for u in flags["ulimit-add"]:
            limits[u["Name"]] = u
        set_or_drop(cspec, "Ulimits", [limits[k] for k in sorted(limits)])

    if flags.given("limit-cpu", "limit-memory", "limit-pids"):
        limits = _resources(task)["Limits"]
        for flag_name, key in (("limit-cpu", "NanoCPUs"), ("limit-memory", "MemoryBytes"), ("limit-pids", "Pids")):
            if flag_name in changed:
                set_or_drop(limits, key, flags[flag_name])
    if flags.given("reserve-cpu", "reserve-memory"):
        reservations = _resources(task)["Reservations"]
        for flag_name, key in (("reserve-cpu", "NanoCPUs"), ("reserve-memory", "MemoryBytes")):
            if flag_name in changed:
                set_or_drop(reservations, key, flags[flag_name])
    if "stop-grace-period" in changed:
        cspec["StopGracePeriod"] = flags["stop-grace-period"]
    restart = _restart_policy(flags, task.get("RestartPolicy"))
    if restart is not None:
        task["RestartPolicy"] = restart
    if flags.given("constraint-add", "constraint-rm"):
        placement = task.setdefault("Placement", {})
        removed = set(flags["constraint-rm"])
        constraints = sorted(c for c in (placement.get("Constraints") or []) + flags["constraint-add"]
                             if c not in removed)
        set_or_drop(placement, "Constraints", constraints)
    if flags.given("placement-pref-add", "placement-pref-rm"):
        placement = task.setdefault("Placement", {})
        removed = {p["Spread"]["SpreadDescriptor"] for p in flags["placement-pref-rm"]}
        prefs = [p for p in placement.get("Preferences") or []
                 if not (p.get("Spread") and p["Spread"].get("SpreadDescriptor") in removed)]
        set_or_drop(placement, "Preferences", prefs + flags["placement-pref-add"])
    if flags.given("network-add", "network-rm"):
        _update_networks(spec, flags)
    if "replicas" in changed:
        if "Replicated" not in (spec.get("Mode") or {}):
            raise SpecError("replicas can only be used with replicated mode")
        spec["Mode"]["Replicated"] = {"Replicas": flags["replicas"]}
    if "replicas-max-per-node" in changed:
        set_or_drop(task.setdefault("Placement", {}), "MaxReplicas", flags["replicas-max-per-node"])
    for prefix, key in (("update", "UpdateConfig"), ("rollback", "RollbackConfig")):
        if flags.given(*(f"{prefix}-{k}" for k in _UPDATE_KEYS)):
            spec[key] = _update_config(flags, prefix, spec.get(key))
    if "endpoint-mode" in changed:
        spec.setdefault("EndpointSpec", {})["Mode"] = flags["endpoint-mode"]
    if flags.given("group-add", "group-rm"):
        removed = set(flags["group-rm"])
        set_or_drop(cspec, "Groups", sorted(g for g in (cspec.get("Groups") or []) + flags["group-add"]
                                            if g not in removed))
    if flags.given("publish-add", "publish-rm"):
        endpoint = spec.setdefault("EndpointSpec", {})
        set_or_drop(endpoint, "Ports", _update_ports(endpoint.get("Ports") or [], flags))
    if flags.given("dns-add", "dns-rm", "dns-option-add", "dns-option-rm", "dns-search-add", "dns-search-rm"):
        dns = cspec.get("DNSConfig") or {}
        new_dns = {}
        for key, add, rm in (("Nameservers", "dns-add", "dns-rm"), ("Search", "dns-search-add", "dns-search-rm"),
                             ("Options", "dns-option-add", "dns-option-rm")):
            removed = set(flags[rm])
            entries = sorted(e for e in dict.fromkeys((dns.get(key) or []) + flags[add]) if e not in removed)
            if entries:
                new_dns[key] = entries
        cspec["DNSConfig"] = new_dns
    if flags.given("host-add", "host-rm"):
        set_or_drop(cspec, "Hosts", _update_hosts(cspec.get("Hosts") or [], flags))
    if "log-driver" in changed and flags["log-driver"]:
        task["LogDriver"] = _omit([("Name", flags["log-driver"]), ("Options", _kv_map(flags["log-opt"]))])
    if flags["force"]:
        task["ForceUpdate"] = task.get("ForceUpdate", 0) + 1
    _update_healthcheck(cspec, flags)
    if "tty" in changed:
        set_or_drop(cspec, "TTY", flags["tty"] or None)
    if "read-only" in changed:
        set_or_drop(cspec, "ReadOnly", flags["read-only"] or None)
    if flags.given("cap-add", "cap-drop"):
        _update_capabilities(cspec, flags)
    return spec


def _update_map(current: dict | None, flags: Flags, add: str, remove: str) -> dict | None:
    """updateLabels/updateContainerLabels/updateSysCtls: remove keys, then add."""
    result = dict(current) if current is not None else None
    if result is not None and remove in flags.changed:
        for key in _kv_map(flags[remove]):
            result.pop(key, None)
    if add in flags.changed:
        result = result if result is not None else {}
        result.update(_kv_map(flags[add]))
    return result


def _update_env(env: list[str], flags: Flags) -> list[str]:
    """updateEnvironment; docker rebuilds the list from a Go map (random order), this
    keeps the current order and appends new keys, for a stable spec."""
    removed = set(flags["env-rm"])
    env = [e for e in env if e.split("=", 1)[0] not in removed]
    if "env-add" in flags.changed:
        by_key = {e.split("=", 1)[0]: e for e in env}
        for entry in flags["env-add"]:
            by_key[entry.split("=", 1)[0]] = entry
        env = list(by_key.values())
    return env


def _update_mounts(mounts: list[dict], flags: Flags) -> list[dict]:
    by_target: dict[str, dict] = {}
    for m in flags["mount-add"]:
        if m["Target"] in by_target:
            raise SpecError("duplicate mount target")
        by_target[m["Target"]] = m
    for m in mounts:
        by_target.setdefault(m.get("Target", ""), m)
    removed = set(flags["mount-rm"])
    kept = [m for m in by_target.values() if m.get("Target", "") not in removed]
    return sorted(kept, key=lambda m: (m.get("Source", ""), m.get("Target", "")))


def _port_key(port: dict) -> str:
    return (f"{port.get('PublishedPort', 0)}:{port.get('TargetPort', 0)}/{port.get('Protocol', '')}/"
            f"{port.get('PublishMode', '')}")


def _update_ports(current: list[dict], flags: Flags) -> list[dict]:
    """updatePorts: drop ports matching a ``--publish-rm`` (target, protocol, mode), add
    ``--publish-add`` ones not there yet, sorted by their string form."""
    existing = {_port_key(p): p for p in current}
    kept = []
    for port in existing.values():
        if any((port.get("Protocol") or "tcp") == (r.get("Protocol") or "tcp")
               and port.get("TargetPort") == r.get("TargetPort")
               and (port.get("PublishMode") or "ingress") == (r.get("PublishMode") or "ingress")
               for r in flags["publish-rm"]):
            continue
        kept.append(port)
    for port in flags["publish-add"]:
        if _port_key(port) not in existing:
            kept.append(port)
    return sorted(kept, key=_port_key)


def _update_networks(spec: dict, flags: Flags) -> None:
    task = spec["TaskTemplate"]
    networks = task.get("Networks") or spec.get("Networks") or []
    spec.pop("Networks", None)
    removed = set(flags["network-rm"])
    kept = [n for n in networks if n.get("Target") not in removed]
    targets = {n.get("Target") for n in kept}
    for attachment in flags["network-add"]:
        if attachment["Target"] in targets:
            raise SpecError(f"service is already attached to network {attachment['Target']}")
        kept.append(attachment)
        targets.add(attachment["Target"])
    kept.sort(key=lambda n: n.get("Target", ""))
    if kept:
        task["Networks"] = kept
    else:
        task.pop("Networks", None)


def _update_hosts(hosts: list[str], flags: Flags) -> list[str]:
    """updateHosts: remove ``host`` or ``host:ip`` mappings, append the new ones."""
    removals = [(h.split(":", 1) + [""])[:2] for h in flags["host-rm"]]
    result = []
    for entry in hosts:
        parts = entry.split()
        if not parts:
            continue
        ip, names = parts[0], parts[1:]
        for name, rm_ip in removals:
            if rm_ip and rm_ip != ip:
                continue
            names = [n for n in names if n != name]
        if names:
            result.append(f"{ip} {' '.join(names)}")
    result += [f"{h.split(':', 1)[1]} {h.split(':', 1)[0]}" for h in flags["host-add"]]
    return list(dict.fromkeys(result))


def _update_healthcheck(cspec: dict, flags: Flags) -> None:
    names = ("health-cmd", "health-interval", "health-retries", "health-timeout", "health-start-period")
    if not flags.given("no-healthcheck", *names):
        return
    health = dict(cspec.get("Healthcheck") or {})
    if flags["no-healthcheck"]:
        if flags.given(*names):
            raise SpecError("--no-healthcheck conflicts with --health-* options")
        cspec["Healthcheck"] = {"Test": ["NONE"]}
        return
    if (health.get("Test") or [""])[0] == "NONE":
        health.pop("Test", None)
    for flag_name, key in (("health-interval", "Interval"), ("health-timeout", "Timeout"),
                           ("health-start-period", "StartPeriod"), ("health-retries", "Retries")):
        if flag_name in flags.changed:
            health[key] = flags[flag_name]
    if "health-cmd" in flags.changed:
        if flags["health-cmd"]:
            health["Test"] = ["CMD-SHELL", flags["health-cmd"]]
        else:
            health.pop("Test", None)
    order = ("Test", "Interval", "Timeout", "StartPeriod", "Retries")
    cspec["Healthcheck"] = {k: health[k] for k in order if health.get(k)}


def _update_capabilities(cspec: dict, flags: Flags) -> None:
    """updateCapabilities: add wins; adding a dropped one un-drops it, and the reverse."""
    cap_add = {_cap(c) for c in cspec.get("CapabilityAdd") or []}
    cap_drop = {_cap(c) for c in cspec.get("CapabilityDrop") or []}
    to_add = {_cap(c) for c in flags["cap-add"]}
    to_drop = {_cap(c) for c in flags["cap-drop"]}
    if "RESET" in to_add:
        cap_add, to_add = set(), to_add - {"RESET"}
    if "RESET" in to_drop:
        cap_drop, to_drop = set(), to_drop - {"RESET"}
    for c in to_drop:
        if c not in to_add:
            if c in cap_add:
                cap_add.discard(c)
            else:
                cap_drop.add(c)
    for c in to_add:
        if c in cap_drop:
            cap_drop.discard(c)
        else:
            cap_add.add(c)

    def caps_list(caps: set[str]) -> list[str]:
        return ["ALL"] if "ALL" in caps else sorted(caps)

    for key, caps in (("CapabilityAdd", cap_add), ("CapabilityDrop", cap_drop)):
        if caps:
            cspec[key] = caps_list(caps)
        else:
            cspec.pop(key, None)


def _resources(task: dict) -> dict:
    resources = task.get("Resources") or {}
    resources.setdefault("Limits", {})
    resources.setdefault("Reservations", {})
    task["Resources"] = resources
    return resources
