"""The first half of the run pipeline: what a container is asked to be.

    run/create flags + image ──from_flags──> ContainerSpec ──validate──> (checks only)
    build's RUN step ─────────for_run_step──┘         │
                                             to_config │  reads other containers, writes nothing
                                                       v
                               config.json (docker's container config) ──plan.make──> ContainerPlan

:func:`from_flags` reads what docker's *client* reads (``--env-file``, a
``seccomp=FILE`` profile) and nothing else; :data:`CHECKS` are small named
checks that only look at the spec (docker's daemon-side validation of a
create request); :func:`to_config` resolves the names the spec refers to
(``--network container:X``, ``--volumes-from``) and returns the config the
runtime stores. Nothing on the host is created before all of this passed:
the container's directory, name, volumes and missing ``-v`` host directories
are made by :func:`runtime.create` afterwards.

A plain class with ``__slots__``, no dataclasses: this runs on every
``refengine run`` and importing ``dataclasses`` costs milliseconds.
"""

from __future__ import annotations

import os

from ..errors import ContainerError
from . import health
from .etcfiles import DEFAULT_PATH_ENV
from .flags import parse_signal, tmpfs_mount_options
from .state import rfc3339
from .volumes import valid_name as valid_volume_name

_ADJ = ("admiring", "brave", "clever", "dreamy", "eager", "festive", "gifted", "happy", "jolly", "keen",
        "lucid", "modest", "nifty", "quirky", "relaxed", "serene", "tender", "upbeat", "vibrant", "zealous")
_NOUN = ("turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "dijkstra", "liskov",
         "hamilton", "curie", "noether", "shannon", "babbage", "wozniak", "goldberg", "kay", "lamport")

_VOLUME_MODES = ("ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private",
                 "rprivate", "consistent", "cached", "delegated")


class ContainerSpec:
    """A container as asked for: the image (``image`` is the ``config`` section of its OCI
    config) and docker's ``run`` flags, nothing resolved or checked yet."""

    __slots__ = ("cid", "ref", "image_id", "image", "layers", "name", "command", "entrypoint", "env",
                 "user", "workdir", "hostname", "network", "memory", "memory_swap", "pids_limit",
                 "restart", "auto_remove", "stop_signal", "stop_timeout", "pull", "cap_add", "cap_drop",
                 "privileged", "read_only", "security_opt", "labels", "volumes", "mounts", "volumes_from",
                 "tmpfs", "init", "interactive", "tty", "detach", "publish", "publish_all", "expose",
                 "network_alias", "ip", "dns", "links", "healthcheck")

    #: The default of every field: a container of the image's own command, docker's defaults.
    DEFAULTS = {
        "ref": "", "image_id": "", "image": {}, "layers": [], "name": None, "command": [],
        "entrypoint": None, "env": [], "user": "", "workdir": "", "hostname": "", "network": "default",
        "memory": 0, "memory_swap": 0, "pids_limit": None, "restart": ("no", 0), "auto_remove": False,
        "stop_signal": None, "stop_timeout": None, "pull": None, "cap_add": [], "cap_drop": [],
        "privileged": False, "read_only": False, "security_opt": [], "labels": [], "volumes": [], "mounts": [],
        "volumes_from": [], "tmpfs": [], "init": False, "interactive": False, "tty": False, "detach": False,
        "publish": [], "publish_all": False, "expose": [], "network_alias": [], "ip": "", "dns": [], "links": [],
        "healthcheck": None,
    }

    def __init__(self, cid: str, **fields):
        self.cid = cid
        for key, default in self.DEFAULTS.items():
            value = fields.pop(key, default)
            if value is default and isinstance(default, (list, dict)):
                value = type(default)()  # never share a default list or dict between specs
            setattr(self, key, value)
        if fields:
            raise TypeError(f"unknown ContainerSpec fields: {sorted(fields)}")

    # -- what the spec asks for, with the image's defaults filled in ---------
    def entrypoint_and_cmd(self) -> tuple[list[str], list[str]]:
        """docker's rule: ``--entrypoint`` replaces the image's and drops its Cmd."""
        if self.entrypoint is not None:
            if isinstance(self.entrypoint, list):  # the API's array (refengine compose's entrypoint: [a, b])
                return list(self.entrypoint), list(self.command)
            return ([self.entrypoint] if self.entrypoint else []), list(self.command)
        return list(self.image.get("Entrypoint") or []), list(self.command) or list(self.image.get("Cmd") or [])

    def effective_workdir(self) -> str:
        return self.workdir or self.image.get("WorkingDir") or ""

    def effective_stop_signal(self) -> str | None:
        return self.stop_signal or self.image.get("StopSignal") or None


def from_flags(opts: dict, args: list[str], image: dict, cid: str) -> ContainerSpec:
    """``run``/``create``'s parsed flags and resolved image (``{"id", "config", "layers"}``)
    as a spec. Reads ``--env-file`` files and ``seccomp=FILE`` profiles, as docker's client does."""
    restart = opts.get("restart") or ("no", 0)
    return ContainerSpec(
        cid, ref=args[0], image_id=image["id"], image=image["config"], layers=image["layers"],
        name=opts.get("name"), command=args[1:], entrypoint=opts.get("entrypoint"), env=env_flags(opts),
        user=opts.get("user") or "", workdir=opts.get("workdir") or "", hostname=opts.get("hostname") or "",
        network=opts.get("network") or "default", memory=opts.get("memory") or 0,
        memory_swap=opts.get("memory_swap") or 0, pids_limit=opts.get("pids_limit"),
        restart=restart, auto_remove=bool(opts.get("rm")), stop_signal=opts.get("stop_signal"),
        stop_timeout=opts.get("stop_timeout"), pull=opts.get("pull"), cap_add=opts.get("cap_add") or [],
        cap_drop=opts.get("cap_drop") or [], privileged=bool(opts.get("privileged")),
        read_only=bool(opts.get("read_only")), security_opt=load_security_opts(opts.get("security_opt") or []),
        labels=opts.get("label") or [], volumes=opts.get("volume") or [], mounts=opts.get("mount") or [],
        volumes_from=opts.get("volumes_from") or [], tmpfs=opts.get("tmpfs") or [], init=bool(opts.get("init")),
        interactive=bool(opts.get("interactive")), tty=bool(opts.get("tty")), detach=bool(opts.get("detach")),
        publish=opts.get("publish") or [], publish_all=bool(opts.get("publish_all")), expose=opts.get("expose") or [],
        network_alias=opts.get("network_alias") or [], ip=opts.get("ip") or "", dns=opts.get("dns") or [],
        links=opts.get("link") or [], healthcheck=health.from_flags(opts),
    )


def for_run_step(cid: str, layers: list[str], argv: list[str], env: list[str], *, user: str, workdir: str,
                 volumes: dict[str, str] | None = None) -> ContainerSpec:
    """A build's RUN step as docker's classic builder creates its container: the command
    as the whole argv (no entrypoint), the stage's Env, User and WorkingDir, the image's
    VOLUMEs bound to *volumes* (container path -> host directory), every other setting
    ``run``'s default (default network, capabilities and seccomp profile)."""
    return ContainerSpec(
        cid, layers=list(layers), image={"Env": list(env), "User": user, "WorkingDir": workdir},
        command=list(argv), entrypoint="",
        mounts=[{"Type": "bind", "Source": src, "Target": dst} for dst, src in sorted((volumes or {}).items())],
    )


# -- client-side reading of flags --------------------------------------------


def env_flags(opts: dict) -> list[str]:
    """``--env-file`` then ``-e`` entries, as docker's client expands them."""
    env: list[str] = []
    for path in opts.get("env_file") or []:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise ContainerError(f"open {path}: {exc.strerror.lower()}") from None
        for line in lines:
            line = line.lstrip()  # docker trims the left only: a value keeps its trailing blanks, as with -e
            if line and not line.startswith("#"):
                env.append(_env_entry(line))
    for e in opts.get("env") or []:
        env.append(_env_entry(e))
    return [e for e in env if e is not None]


def _env_entry(e: str) -> str | None:
    if not e or e.startswith("="):
        raise ContainerError(f"invalid environment variable: {e}")
    if "=" in e:
        return e
    return f"{e}={os.environ[e]}" if e in os.environ else None


def load_security_opts(values: list[str]) -> list[str]:
    """``--security-opt``: a seccomp profile file is replaced by its JSON text, as docker's
    client sends it (later edits of the file do not matter)."""
    out = []
    for value in values:
        key, sep, path = value.partition("=")
        if key == "seccomp" and sep and path != "unconfined":
            import json  # only when a profile file is given: json is not on run's hot path

            try:
                with open(path) as f:
                    text = f.read()
            except OSError as exc:
                raise ContainerError(f"opening seccomp profile ({path}) failed: open {path}: "
                                     f"{exc.strerror.lower()}") from None
            try:
                json.loads(text)
            except ValueError as exc:
                raise ContainerError(f"compacting json for seccomp profile ({path}) failed: {exc}") from None
            value = f"seccomp={text}"
        out.append(value)
    return out


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """Image Env overridden/extended by ``-e``: same keys replaced in place. Pure.

    >>> merge_env(["PATH=/bin", "A=1"], ["A=2", "B=3"])
    ['PATH=/bin', 'A=2', 'B=3']
    """
    out = list(base)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(out)}
    for e in extra:
        key = e.split("=", 1)[0]
        if key in index:
            out[index[key]] = e
        else:
            index[key] = len(out)
            out.append(e)
    return out


#: A name is a file under names/ (state.py): NAME_MAX bytes at most.
MAX_NAME_LENGTH = 255


def valid_container_name(name: str) -> bool:
    """docker's ``[a-zA-Z0-9][a-zA-Z0-9_.-]+`` (ASCII only: ``isalnum`` alone takes "é").

    >>> valid_container_name("web-1"), valid_container_name("caf\u00e9"), valid_container_name("-x")
    (True, False, False)
    """
    return (1 < len(name) <= MAX_NAME_LENGTH and name.isascii() and name[0].isalnum()
            and all(c.isalnum() or c in "_.-" for c in name))


def parse_volume_spec(spec: str) -> tuple[str | None, str, str]:
    """``-v``: (source or None for anonymous, destination, mode). Pure.

    >>> parse_volume_spec("/host:/ctr:ro"), parse_volume_spec("data:/d"), parse_volume_spec("/anon")
    (('/host', '/ctr', 'ro'), ('data', '/d', ''), (None, '/anon', ''))
    """
    parts = spec.split(":")
    if len(parts) == 1:
        src, dst, mode = None, parts[0], ""
    elif len(parts) == 2:
        src, dst, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise ContainerError(f"invalid volume specification: '{spec}'")
    if not dst.startswith("/") or dst == "" or (src is not None and src == ""):
        raise ContainerError(f"invalid volume specification: '{spec}': invalid mount config for type "
                             f"\"{'bind' if src and src.startswith('/') else 'volume'}\": invalid mount path: "
                             f"'{dst}' mount path must be absolute")
    for m in mode.split(",") if mode else []:
        if m not in _VOLUME_MODES:
            raise ContainerError(f"invalid mode: {m} in volume specification '{spec}'")
    return src, os.path.normpath(dst), mode


# -- validation: each check looks at the spec only ----------------------------


def check_name(spec: ContainerSpec) -> None:
    if spec.name is not None and len(spec.name) > MAX_NAME_LENGTH:
        raise ContainerError(f"Invalid container name ({spec.name[:40]}...): longer than {MAX_NAME_LENGTH} characters")
    if spec.name is not None and not valid_container_name(spec.name):
        raise ContainerError(f"Invalid container name ({spec.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")


def check_command(spec: ContainerSpec) -> None:
    entrypoint, cmd = spec.entrypoint_and_cmd()
    if not entrypoint + cmd:
        raise ContainerError("No command specified")


def check_no_nul(spec: ContainerSpec) -> None:
    """A NUL byte (possible through the API or a Compose file, never from a shell) cannot
    reach execve, sethostname or a path: refused at create, not as a failed start."""
    entrypoint, cmd = spec.entrypoint_and_cmd()
    for what, values in (("command", entrypoint + cmd), ("environment variable", spec.env),
                         ("user", [spec.user]), ("working directory", [spec.workdir]),
                         ("hostname", [spec.hostname])):
        for value in values:
            if "\0" in value:
                raise ContainerError(f"invalid {what} {value!r}: contains a NUL byte")


def check_memory(spec: ContainerSpec) -> None:
    memory, swap = spec.memory, spec.memory_swap
    if memory and memory < 6 * 1024 * 1024:
        raise ContainerError("Minimum memory limit allowed is 6MB")
    if swap and swap != -1 and memory and swap < memory:
        raise ContainerError("Minimum memoryswap limit should be larger than memory limit, see usage")


def check_restart(spec: ContainerSpec) -> None:
    if spec.auto_remove and spec.restart[0] not in ("no", ""):
        raise ContainerError("Conflicting options: --restart and --rm")


def check_stop_signal(spec: ContainerSpec) -> None:
    stop_signal = spec.effective_stop_signal()
    if stop_signal:
        try:
            parse_signal(stop_signal)
        except ValueError:
            raise ContainerError(f"Invalid signal: {stop_signal}") from None


def check_workdir(spec: ContainerSpec) -> None:
    workdir = spec.effective_workdir()
    if workdir and not workdir.startswith("/"):
        raise ContainerError(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")


def check_pull(spec: ContainerSpec) -> None:
    if spec.pull not in (None, "never", "missing", "always"):
        raise ContainerError(f"invalid pull option: '{spec.pull}': must be one of \"always\", \"missing\" or \"never\"")


def check_capabilities(spec: ContainerSpec) -> None:
    from .process import capability_mask

    try:
        capability_mask(spec.cap_add, spec.cap_drop)
    except ValueError as exc:
        raise ContainerError(str(exc)) from None


def check_security_opt(spec: ContainerSpec) -> None:
    from .seccomp import ProfileError, security_opts

    try:
        security_opts(spec.security_opt)
    except ProfileError as exc:
        raise ContainerError(str(exc)) from None


def check_network(spec: ContainerSpec) -> None:
    """What docker's daemon refuses before looking the network up (that is :func:`to_config`'s)."""
    network = spec.network
    predefined = network in ("default", "bridge", "none", "host") or network.startswith("container:")
    if spec.network_alias and predefined:
        raise ContainerError("network-scoped alias is supported only for containers in user defined networks")
    if spec.ip and predefined:
        raise ContainerError("user specified IP address is supported on user defined networks only")
    if (spec.publish or spec.publish_all) and (network in ("none",) or network.startswith("container:")):
        raise ContainerError("conflicting options: port publishing and the container type network mode")
    if spec.links and (network in ("none", "host") or network.startswith("container:")):
        raise ContainerError("conflicting options: container type network can't be used with links")
    for item in spec.links:
        other, _, alias = item.partition(":")
        if not valid_container_name(other.lstrip("/")) or (alias and not valid_container_name(alias)):
            raise ContainerError(f"invalid link {item!r}: NAME[:ALIAS], each a container name")
    if spec.dns:
        import ipaddress

        for server in spec.dns:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise ContainerError(f"{server} is not an ip address") from None
    from ..net import ports

    try:
        for item in spec.publish:
            ports.parse_publish(item)
        for item in spec.expose:
            ports.parse_expose(item)
    except ports.PortSpecError as exc:
        raise ContainerError(str(exc)) from None


def check_labels(spec: ContainerSpec) -> None:
    for label in spec.labels:
        if not label.partition("=")[0]:
            raise ContainerError(f"invalid label: '{label}'")


def check_volumes(spec: ContainerSpec) -> None:
    for item in spec.volumes:
        src, _, _ = parse_volume_spec(item)
        if src is not None and not src.startswith("/") and not valid_volume_name(src):
            raise ContainerError(f'create {src}: "{src}" includes invalid characters for a local volume name, '
                                 f'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                                 f"directory, use absolute path")


def check_mounts(spec: ContainerSpec) -> None:
    for item in spec.mounts:
        mount_flag(item)


def check_tmpfs(spec: ContainerSpec) -> None:
    tmpfs_flags(spec.tmpfs)


def check_healthcheck(spec: ContainerSpec) -> None:
    health.check(spec.healthcheck)


#: Every check of a spec, in the order docker reports the errors they find.
CHECKS = (check_name, check_command, check_no_nul, check_memory, check_restart, check_stop_signal, check_workdir, check_pull,
          check_capabilities, check_security_opt, check_network, check_labels, check_volumes, check_mounts,
          check_tmpfs, check_healthcheck)


def validate(spec: ContainerSpec) -> None:
    """Run every check; the first failure raises :class:`ContainerError`. Touches nothing."""
    for check in CHECKS:
        check(spec)


# -- construction: the container config docker stores --------------------------


def to_config(root, spec: ContainerSpec) -> dict:
    """docker's container config (config.json) of a validated spec. Reads the containers
    that ``--network container:X`` and ``--volumes-from`` name (in ``root``, a
    :class:`state.Root`); writes nothing."""
    cid, img = spec.cid, spec.image
    entrypoint, cmd = spec.entrypoint_and_cmd()
    argv = entrypoint + cmd
    memory, swap = spec.memory, spec.memory_swap
    if memory and not swap:
        swap = 2 * memory
    restart_name, retries = spec.restart
    stop_signal = spec.effective_stop_signal()
    network = _network_mode(root, spec.network)
    labels = dict(img.get("Labels") or {})
    for label in spec.labels:
        key, _, value = label.partition("=")
        labels[key] = value
    env = merge_env(list(img.get("Env") or []), spec.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH_ENV)
    hostname = spec.hostname or cid[:12]
    if network == "host" and not spec.hostname:
        hostname = os.uname().nodename
    mounts, binds, config_volumes = _mounts(root, spec)
    tmpfs = tmpfs_flags(spec.tmpfs)
    exposed, port_bindings, endpoints, links = _networking(root, spec, network)
    config_section = {
        "Hostname": hostname, "Domainname": "", "User": spec.user or img.get("User") or "",
        "AttachStdin": spec.interactive, "AttachStdout": not spec.detach,
        "AttachStderr": not spec.detach, "Tty": spec.tty, "OpenStdin": spec.interactive,
        "StdinOnce": False, "Env": env, "Cmd": cmd or None, "Image": spec.ref, "Volumes": config_volumes or None,
        "WorkingDir": spec.effective_workdir(), "Entrypoint": entrypoint or None, "OnBuild": None, "Labels": labels,
    }
    if exposed:
        config_section["ExposedPorts"] = exposed
    if stop_signal:
        config_section["StopSignal"] = stop_signal
    if spec.stop_timeout is not None:
        config_section["StopTimeout"] = spec.stop_timeout
    healthcheck = health.merge(spec.healthcheck, img.get("Healthcheck"))
    if healthcheck:
        config_section["Healthcheck"] = healthcheck
    pids = spec.pids_limit
    return {
        "Id": cid, "Created": rfc3339(), "Path": argv[0], "Args": argv[1:],
        "Image": spec.image_id, "Name": "/" + (spec.name or random_name(cid)),
        "Layers": list(spec.layers),
        "Config": config_section,
        "HostConfig": {
            "Binds": binds or None, "NetworkMode": network,
            "RestartPolicy": {"Name": restart_name or "no", "MaximumRetryCount": retries},
            "AutoRemove": spec.auto_remove, "VolumesFrom": spec.volumes_from or None,
            "CapAdd": spec.cap_add or None, "CapDrop": spec.cap_drop or None,
            "Privileged": spec.privileged, "ReadonlyRootfs": spec.read_only,
            "SecurityOpt": spec.security_opt or None,
            "Memory": memory, "MemorySwap": swap, "PidsLimit": pids if pids and pids > 0 else None,
            "Init": True if spec.init else None, "LogConfig": {"Type": "json-file", "Config": {}},
            **({"Tmpfs": tmpfs} if tmpfs else {}), **({"Mounts": spec.mounts} if spec.mounts else {}),
            "PortBindings": port_bindings, "PublishAllPorts": spec.publish_all, "Dns": list(spec.dns),
            "Links": links or None,
        },
        "NetworkingConfig": {"EndpointsConfig": endpoints},
        "Mounts": mounts,
    }


def random_name(cid: str) -> str:
    n = int(cid[:8], 16)
    return f"{_ADJ[n % len(_ADJ)]}_{_NOUN[(n // 97) % len(_NOUN)]}"


def _networking(root, spec: ContainerSpec, network: str) -> tuple[dict, dict, dict, list[str]]:
    """(Config.ExposedPorts, HostConfig.PortBindings, NetworkingConfig.EndpointsConfig,
    HostConfig.Links): the image's EXPOSE and ``--expose``, ``-p``/``-P``, the network's
    endpoint settings (``--ip``, ``--network-alias``) and the ``--link``ed containers,
    which must exist (docker checks at create)."""
    from ..net import ports

    exposed = {key: {} for key in (spec.image.get("ExposedPorts") or {})}
    for item in spec.expose:
        exposed.update({key: {} for key in ports.parse_expose(item)})
    for item in spec.publish:
        exposed.update({key: {} for key, _ in ports.parse_publish(item)})
    bindings = ports.bindings(spec.publish, spec.publish_all, list(exposed))
    endpoints: dict = {}
    if network not in ("none", "host") and not network.startswith("container:"):
        name = "bridge"
        if network != "default":
            from ..net.netstore import NetworkStore

            name = NetworkStore(root.path).find(network)["Name"]
        settings: dict = {"Aliases": list(spec.network_alias) or None}
        if spec.ip:
            settings["IPAMConfig"] = {"IPv4Address": spec.ip}
        endpoints[name] = settings
    links = []
    name = "/" + (spec.name or random_name(spec.cid))
    for item in spec.links:
        other, _, alias = item.partition(":")
        try:
            cid = root.find(other)
        except ContainerError:
            raise ContainerError(f"could not get container for {other}") from None
        other_name = root.read_config(cid)["Name"]
        links.append(f"{other_name}:{name}/{alias or other_name.lstrip('/')}")
    return exposed, bindings, endpoints, links


def _network_mode(root, network: str) -> str:
    if network == "bridge":
        return "default"
    if network.startswith("container:"):
        return f"container:{root.find(network.split(':', 1)[1])}"
    return network


def _mounts(root, spec: ContainerSpec) -> tuple[list[dict], list[str], dict]:
    mounts: list[dict] = []
    binds: list[str] = []
    config_volumes: dict = {}
    seen: set[str] = set()

    def add(m: dict) -> None:
        if m["Destination"] in seen:
            raise ContainerError(f"Duplicate mount point: {m['Destination']}")
        seen.add(m["Destination"])
        mounts.append(m)

    for item in spec.volumes:
        src, dst, mode = parse_volume_spec(item)
        rw = "ro" not in mode.split(",")
        if src is None:
            config_volumes[dst] = {}
            continue
        binds.append(item)
        if src.startswith("/"):
            add({"Type": "bind", "Source": os.path.normpath(src), "Destination": dst, "Mode": mode, "RW": rw,
                 "Propagation": "rprivate"})
        else:
            add({"Type": "volume", "Name": src, "Source": "", "Destination": dst, "Driver": "local",
                 "Mode": mode or "z", "RW": rw, "Propagation": "", "Fill": "nocopy" not in mode})
    for item in spec.mounts:
        add(mount_flag(item))
    for item in spec.volumes_from:
        ref, _, mode = item.partition(":")
        other = root.read_config(root.find(ref))
        for m in other["Mounts"]:
            if m["Destination"] in seen:
                continue
            copy = dict(m)
            if mode:
                copy["RW"] = mode != "ro"
            add(copy)
    for dst in list((spec.image.get("Volumes") or {}).keys()) + list(config_volumes.keys()):
        dst = os.path.normpath(dst)
        config_volumes.setdefault(dst, {})
        if dst in seen:
            continue
        add({"Type": "volume", "Name": os.urandom(32).hex(), "Source": "", "Destination": dst, "Driver": "local",
             "Mode": "", "RW": True, "Propagation": "", "Anonymous": True})
    return mounts, binds, config_volumes


def mount_flag(item: dict) -> dict:
    """One ``--mount`` (parsed by flags.parse_mount) as a container mount, checked as
    docker's daemon checks it: unlike ``-v``, a missing bind source is an error."""
    kind, src, dst = item["Type"], item.get("Source", ""), item["Target"]
    where = f'invalid mount config for type "{kind}"'
    if kind not in ("bind", "volume", "tmpfs"):
        raise ContainerError(f"{where}: mount type unknown")
    for path in (dst, src) if kind == "bind" else (dst,):
        if path and not path.startswith("/"):
            raise ContainerError(f"{where}: invalid mount path: '{path}' mount path must be absolute")
    dst, rw = os.path.normpath(dst), not item.get("ReadOnly")
    if kind == "bind":
        if not src:
            raise ContainerError(f"{where}: field Source must not be empty")
        if not os.path.exists(src):
            raise ContainerError(f"{where}: bind source path does not exist: {src}")
        propagation = (item.get("BindOptions") or {}).get("Propagation") or "rprivate"
        return {"Type": "bind", "Source": os.path.normpath(src), "Destination": dst, "Mode": "", "RW": rw,
                "Propagation": propagation}
    if kind == "tmpfs":
        if src:
            raise ContainerError(f"{where}: field Source must not be specified")
        opts = item.get("TmpfsOptions") or {}
        options = [f"size={opts['SizeBytes']}"] if opts.get("SizeBytes") else []
        options += [f"mode={opts['Mode']:o}"] if opts.get("Mode") else []
        return {"Type": "tmpfs", "Source": "", "Destination": dst, "Mode": "", "RW": rw, "Propagation": "",
                "Options": ",".join(options + ([] if rw else ["ro"]))}
    nocopy = bool((item.get("VolumeOptions") or {}).get("NoCopy"))
    if not src:
        return {"Type": "volume", "Name": os.urandom(32).hex(), "Source": "", "Destination": dst, "Driver": "local",
                "Mode": "", "RW": rw, "Propagation": "", "Anonymous": True, "Fill": not nocopy}
    if not valid_volume_name(src):
        raise ContainerError(f'create {src}: "{src}" includes invalid characters for a local volume name, '
                             f'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    return {"Type": "volume", "Name": src, "Source": "", "Destination": dst, "Driver": "local", "Mode": "z",
            "RW": rw, "Propagation": "", "Fill": not nocopy}


def tmpfs_flags(items: list[str]) -> dict[str, str]:
    """``--tmpfs PATH[:OPTIONS]`` as docker's HostConfig.Tmpfs (path -> options), checked."""
    tmpfs: dict[str, str] = {}
    for item in items:
        path, _, options = item.partition(":")
        if not path.startswith("/"):
            raise ContainerError(f"invalid mount path: '{path}' mount path must be absolute")
        try:
            tmpfs_mount_options(options)
        except ValueError as exc:
            raise ContainerError(str(exc)) from None
        path = os.path.normpath(path)
        if path in tmpfs:
            raise ContainerError(f"Duplicate mount point: {path}")
        tmpfs[path] = options
    return tmpfs
