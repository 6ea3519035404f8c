"""Containers: create (flags + image -> config.json), start (hand-off to a
supervisor), stop, kill, wait, pause, remove, and the reconciliation that
turns a dead supervisor into a truthful "exited" state.

The pipeline is runc's: CLI flags -> :func:`build_config` (a docker-shaped
config, validated) -> :func:`container_plan` (what the container process
needs, computed at each start) -> :mod:`process` in the new namespaces.
"""

from __future__ import annotations

import os
import time

from ..errors import ContainerError
from . import jsonio
from . import syscalls as sc
from .flags import parse_signal
from .state import ACTIVE, Root, alive, fault, new_state, process_start, rfc3339, trace

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
NETWORK_NOTE = ("refengine: the default network is a private network namespace with loopback only "
                "(bridge networking is not implemented yet)")
_ADJ = ("admiring", "brave", "clever", "dreamy", "eager", "festive", "gifted", "happy", "jolly", "keen",
        "lucid", "modest", "nifty", "quirky", "relaxed", "serene", "tender", "upbeat", "vibrant", "zealous")
_NOUN = ("turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "dijkstra", "liskov",
         "hamilton", "curie", "noether", "shannon", "babbage", "wozniak", "goldberg", "kay", "lamport")


def _random_name(cid: str) -> str:
    n = int(cid[:8], 16)
    return f"{_ADJ[n % len(_ADJ)]}_{_NOUN[(n // 97) % len(_NOUN)]}"


def _valid_container_name(name: str) -> bool:
    return len(name) > 1 and name[0].isalnum() and all(c.isalnum() or c in "_.-" for c in name)


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


def _env_flags(opts: dict) -> list[str]:
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
        if m not in ("ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private",
                     "rprivate", "consistent", "cached", "delegated"):
            raise ContainerError(f"invalid mode: {m} in volume specification '{spec}'")
    return src, os.path.normpath(dst), mode


def build_config(root: Root, opts: dict, args: list[str], image_id: str, img: dict, layer_dirs: list[str],
                 cid: str) -> dict:
    """docker's container config from ``run``/``create`` flags and the image (its ID and
    the ``config`` section of its OCI config). Validates everything it can before
    anything is written."""
    ref = args[0]
    command = args[1:]
    if opts.get("entrypoint") is not None:
        entrypoint = [opts["entrypoint"]] if opts["entrypoint"] else []
        cmd = command
    else:
        entrypoint = list(img.get("Entrypoint") or [])
        cmd = command or list(img.get("Cmd") or [])
    argv = entrypoint + cmd
    if not argv:
        raise ContainerError("No command specified")
    memory = opts.get("memory") or 0
    if memory and memory < 6 * 1024 * 1024:
        raise ContainerError("Minimum memory limit allowed is 6MB")
    swap = opts.get("memory_swap") or 0
    if memory and not swap:
        swap = 2 * memory
    elif swap and swap != -1 and memory and swap < memory:
        raise ContainerError("Minimum memoryswap limit should be larger than memory limit, see usage")
    pids = opts.get("pids_limit")
    restart_name, retries = opts.get("restart") or ("no", 0)
    if opts.get("rm") and restart_name not in ("no", ""):
        raise ContainerError("Conflicting options: --restart and --rm")
    stop_signal = opts.get("stop_signal") or img.get("StopSignal") or None
    if stop_signal:
        try:
            parse_signal(stop_signal)
        except ValueError:
            raise ContainerError(f"Invalid signal: {stop_signal}") from None
    workdir = opts.get("workdir") or img.get("WorkingDir") or ""
    if workdir and not workdir.startswith("/"):
        raise ContainerError(f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
    if opts.get("pull") not in (None, "never", "missing", "always"):
        raise ContainerError(f'invalid pull option: \'{opts["pull"]}\': must be one of "always", "missing" or "never"')
    from .process import capability_mask

    try:
        capability_mask(opts.get("cap_add") or [], opts.get("cap_drop") or [])
    except ValueError as exc:
        raise ContainerError(str(exc)) from None
    security_opt = _security_opt(opts.get("security_opt") or [])
    network = opts.get("network") or "default"
    if network == "bridge":
        network = "default"
    if network.startswith("container:"):
        other = root.find(network.split(":", 1)[1])
        network = f"container:{other}"
    elif network not in ("default", "none", "host"):
        raise ContainerError(f"network {network} not found")
    labels = dict(img.get("Labels") or {})
    for label in opts.get("label") or []:
        key, _, value = label.partition("=")
        if not key:
            raise ContainerError(f"invalid label: '{label}'")
        labels[key] = value
    env = merge_env(list(img.get("Env") or []), _env_flags(opts))
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    hostname = opts.get("hostname") or cid[:12]
    if network == "host" and not opts.get("hostname"):
        hostname = os.uname().nodename
    mounts, binds, config_volumes = _mounts(root, opts, img, cid)
    tmpfs = _tmpfs_flags(opts.get("tmpfs") or [])
    created = rfc3339()
    config_section = {
        "Hostname": hostname, "Domainname": "", "User": opts.get("user") or img.get("User") or "",
        "AttachStdin": bool(opts.get("interactive")), "AttachStdout": not opts.get("detach"),
        "AttachStderr": not opts.get("detach"), "Tty": bool(opts.get("tty")), "OpenStdin": bool(opts.get("interactive")),
        "StdinOnce": False, "Env": env, "Cmd": cmd or None, "Image": ref, "Volumes": config_volumes or None,
        "WorkingDir": workdir, "Entrypoint": entrypoint or None, "OnBuild": None, "Labels": labels,
    }
    if stop_signal:
        config_section["StopSignal"] = stop_signal
    if opts.get("stop_timeout") is not None:
        config_section["StopTimeout"] = opts["stop_timeout"]
    return {
        "Id": cid, "Created": created, "Path": argv[0], "Args": argv[1:],
        "Image": image_id, "Name": "/" + (opts.get("name") or _random_name(cid)),
        "Layers": layer_dirs,
        "Config": config_section,
        "HostConfig": {
            "Binds": binds or None, "NetworkMode": network,
            "RestartPolicy": {"Name": restart_name or "no", "MaximumRetryCount": retries},
            "AutoRemove": bool(opts.get("rm")), "VolumesFrom": opts.get("volumes_from") or None,
            "CapAdd": opts.get("cap_add") or None, "CapDrop": opts.get("cap_drop") or None,
            "Privileged": bool(opts.get("privileged")), "ReadonlyRootfs": bool(opts.get("read_only")),
            "SecurityOpt": security_opt or None,
            "Memory": memory, "MemorySwap": swap, "PidsLimit": pids if pids and pids > 0 else None,
            "Init": True if opts.get("init") else None, "LogConfig": {"Type": "json-file", "Config": {}},
            **({"Tmpfs": tmpfs} if tmpfs else {}), **({"Mounts": opts["mount"]} if opts.get("mount") else {}),
        },
        "Mounts": mounts,
    }


def _security_opt(values: list[str]) -> list[str]:
    """``--security-opt`` checked; a seccomp profile file is replaced by its JSON
    text, as docker's client sends it (later edits of the file do not matter)."""
    import json

    from .seccomp import ProfileError, security_opts

    out = []
    for value in values:
        key, sep, path = value.partition("=")
        if key == "seccomp" and sep and path != "unconfined":
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
    try:
        security_opts(out)
    except ProfileError as exc:
        raise ContainerError(str(exc)) from None
    return out


def _mounts(root: Root, opts: dict, img: dict, cid: str) -> tuple[list[dict], list[str], dict]:
    from . import volumes

    mounts: list[dict] = []
    binds: list[str] = []
    config_volumes: dict = {}
    seen: set[str] = set()

    def add(m: dict) -> None:
        if m["Destination"] in seen:
            raise ContainerError(f"Duplicate mount point: {m['Destination']}")
        seen.add(m["Destination"])
        mounts.append(m)

    for spec in opts.get("volume") or []:
        src, dst, mode = parse_volume_spec(spec)
        rw = "ro" not in mode.split(",")
        if src is None:
            config_volumes[dst] = {}
            continue
        binds.append(spec)
        if src.startswith("/"):
            add({"Type": "bind", "Source": os.path.normpath(src), "Destination": dst, "Mode": mode, "RW": rw,
                 "Propagation": "rprivate"})
        else:
            if not volumes._valid_name(src):
                raise ContainerError(f'create {src}: "{src}" includes invalid characters for a local volume name, '
                                     f'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                                     f"directory, use absolute path")
            add({"Type": "volume", "Name": src, "Source": "", "Destination": dst, "Driver": "local",
                 "Mode": mode or "z", "RW": rw, "Propagation": "", "Fill": "nocopy" not in mode})
    for spec in opts.get("mount") or []:
        add(_mount_flag(spec))
    for spec in opts.get("volumes_from") or []:
        ref, _, mode = spec.partition(":")
        other = root.read_config(root.find(ref))
        for m in other["Mounts"]:
            if m["Destination"] in seen:
                continue
            copy = dict(m)
            if mode:
                copy["RW"] = mode != "ro"
            add(copy)
    for dst in list((img.get("Volumes") or {}).keys()) + list(config_volumes.keys()):
        dst = os.path.normpath(dst)
        config_volumes.setdefault(dst, {})
        if dst in seen:
            continue
        add({"Type": "volume", "Name": os.urandom(32).hex(), "Source": "", "Destination": dst, "Driver": "local",
             "Mode": "", "RW": True, "Propagation": "", "Anonymous": True})
    for m in mounts:
        if m["Type"] == "bind" and not os.path.exists(m["Source"]):
            os.makedirs(m["Source"], exist_ok=True)  # docker -v creates a missing host directory
    return mounts, binds, config_volumes


def _mount_flag(spec: dict) -> dict:
    """One ``--mount`` (parsed by flags.parse_mount) as a container mount, checked as
    docker's daemon checks it: unlike ``-v``, a missing bind source is an error."""
    from . import volumes

    kind, src, dst = spec["Type"], spec.get("Source", ""), spec["Target"]
    where = f'invalid mount config for type "{kind}"'
    if kind not in ("bind", "volume", "tmpfs"):
        raise ContainerError(f"{where}: mount type unknown")
    for path in (dst, src) if kind == "bind" else (dst,):
        if path and not path.startswith("/"):
            raise ContainerError(f"{where}: invalid mount path: '{path}' mount path must be absolute")
    dst, rw = os.path.normpath(dst), not spec.get("ReadOnly")
    if kind == "bind":
        if not src:
            raise ContainerError(f"{where}: field Source must not be empty")
        if not os.path.exists(src):
            raise ContainerError(f"{where}: bind source path does not exist: {src}")
        propagation = (spec.get("BindOptions") or {}).get("Propagation") or "rprivate"
        return {"Type": "bind", "Source": os.path.normpath(src), "Destination": dst, "Mode": "", "RW": rw,
                "Propagation": propagation}
    if kind == "tmpfs":
        if src:
            raise ContainerError(f"{where}: field Source must not be specified")
        opts = spec.get("TmpfsOptions") or {}
        options = [f"size={opts['SizeBytes']}"] if opts.get("SizeBytes") else []
        options += [f"mode={opts['Mode']:o}"] if opts.get("Mode") else []
        return {"Type": "tmpfs", "Source": "", "Destination": dst, "Mode": "", "RW": rw, "Propagation": "",
                "Options": ",".join(options + ([] if rw else ["ro"]))}
    nocopy = bool((spec.get("VolumeOptions") or {}).get("NoCopy"))
    if not src:
        return {"Type": "volume", "Name": os.urandom(32).hex(), "Source": "", "Destination": dst, "Driver": "local",
                "Mode": "", "RW": rw, "Propagation": "", "Anonymous": True, "Fill": not nocopy}
    if not volumes._valid_name(src):
        raise ContainerError(f'create {src}: "{src}" includes invalid characters for a local volume name, '
                             f'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed')
    return {"Type": "volume", "Name": src, "Source": "", "Destination": dst, "Driver": "local", "Mode": "z",
            "RW": rw, "Propagation": "", "Fill": not nocopy}


def _tmpfs_flags(specs: list[str]) -> dict[str, str]:
    """``--tmpfs PATH[:OPTIONS]`` as docker's HostConfig.Tmpfs (path -> options), checked."""
    from .flags import tmpfs_mount_options

    tmpfs: dict[str, str] = {}
    for spec in specs:
        path, _, options = spec.partition(":")
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


def plan_mounts(config: dict) -> list[dict]:
    """Every mount of a start: the container's Mounts plus its ``--tmpfs`` ones, in
    docker's order (by depth of the destination, so /a is mounted before /a/b). Pure."""
    mounts = list(config["Mounts"])
    for path, options in (config["HostConfig"].get("Tmpfs") or {}).items():
        mounts.append({"Type": "tmpfs", "Source": "", "Destination": path, "RW": True, "Options": options})
    return sorted(mounts, key=lambda m: m["Destination"].rstrip("/").count("/"))


def _index_key(index_path: str) -> str:
    try:
        st = os.stat(index_path)
    except FileNotFoundError:
        return ""
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def resolve_image(root: Root, ref: str) -> dict:
    """``{"id", "config", "layers"}`` of ``ref`` (layers top first, for overlay's lowerdir).

    The answer is cached in ROOT/resolve-cache.json under the identity (inode,
    mtime, size) of the store's index.json, which the store replaces on every
    change: an unchanged index gives the same answer, and ``run`` does not
    pay for importing the store (milliseconds of every start).
    """
    index_path = os.path.join(root.image, "index.json")
    cache_path = os.path.join(root.path, "resolve-cache.json")
    key = _index_key(index_path)
    try:
        cache = jsonio.read(cache_path)
    except (OSError, ValueError):
        cache = {}
    entry = cache.get("refs", {}).get(ref) if key and cache.get("key") == key else None
    if entry is not None and all(os.path.isdir(d) for d in entry["layers"]):
        return entry
    trace("cli: resolve cache miss")
    from ..image.store import ImageStore

    store = ImageStore(root.image)
    image = store.resolve(ref)
    entry = {"id": image.id, "config": image.config.get("config") or {},
             "layers": [str(d) for d in reversed(store.layer_dirs(image))]}
    if key and _index_key(index_path) == key:  # the index did not change while we read it
        if cache.get("key") != key:
            cache = {"key": key, "refs": {}}
        cache["refs"][ref] = entry
        try:
            jsonio.write_atomic(cache_path, cache)
        except OSError:
            pass
    return entry


def create(root: Root, opts: dict, args: list[str]) -> str:
    """``create``: resolve the image, write config + state; returns the id."""
    root.ensure()
    ref = args[0]
    image = resolve_image(root, ref)
    trace("cli: image resolved")
    cid = os.urandom(32).hex()
    if opts.get("name") is not None and not _valid_container_name(opts["name"]):
        raise ContainerError(f"Invalid container name ({opts['name']}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    config = build_config(root, opts, args, image["id"], image["config"], image["layers"], cid)
    name = config["Name"][1:]
    cdir = root.container_dir(cid)
    os.makedirs(cdir, mode=0o710)
    try:
        root.reserve_name(name, cid)
    except ContainerError:
        os.rmdir(cdir)
        raise
    try:
        fault("create:after-dir")
        _prepare_dir(root, cdir, config)
        fault("create:after-prepare")
        jsonio.write_atomic(os.path.join(cdir, "config.json"), config)
        fault("create:after-config")
        root.write_state(cid, new_state())
    except BaseException:
        root.release_name(name, cid)
        import shutil

        shutil.rmtree(cdir, ignore_errors=True)
        raise
    root.event("container", "create", cid, {"name": name, "image": ref})
    trace("cli: container created")
    return cid


def _prepare_dir(root: Root, cdir: str, config: dict) -> None:
    from . import volumes

    for sub in ("upper", "work", "merged", "init/proc", "init/sys", "init/dev", "init/etc"):
        os.makedirs(os.path.join(cdir, sub), exist_ok=True)
    for name in ("hostname", "hosts", "resolv.conf"):
        open(os.path.join(cdir, "init/etc", name), "w").close()
    network = config["HostConfig"]["NetworkMode"]
    hostname = config["Config"]["Hostname"]
    hosts = HOSTS
    if network == "host":
        hosts = _read("/etc/hosts") or HOSTS
    elif network == "default":
        hosts = HOSTS + f"127.0.1.1\t{hostname}\n"
    resolv = _read("/etc/resolv.conf")
    if network != "host":
        lines = [ln for ln in resolv.splitlines()
                 if not (ln.startswith("nameserver") and (" 127." in ln or " ::1" in ln))]
        if not any(ln.startswith("nameserver") for ln in lines):
            lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
        resolv = "\n".join(lines) + "\n"
    for name, text in (("hostname", hostname + "\n"), ("hosts", hosts), ("resolv.conf", resolv)):
        with open(os.path.join(cdir, name), "w") as f:
            f.write(text)
    for m in config["Mounts"]:
        if m["Type"] == "volume":
            volumes.create(root.path, m["Name"], anonymous=bool(m.get("Anonymous")))
            m["Source"] = os.path.join(volumes.path_of(root.path, m["Name"]), "_data")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def container_plan(root: Root, config: dict, cgroup) -> dict:
    """What the container process needs at this start (see process.container_main)."""
    from . import seccomp
    from .process import capability_mask, capability_names

    cid = config["Id"]
    cdir = root.container_dir(cid)
    host = config["HostConfig"]
    network = host["NetworkMode"]
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID
    netns = None
    if network in ("default", "none"):
        flags |= sc.CLONE_NEWNET
    elif network.startswith("container:"):
        other = network.split(":", 1)[1]
        try:
            state = root.read_state(other)
        except ContainerError:
            raise ContainerError(f"cannot join network of a non running container: {other[:12]}") from None
        if not state["Running"] or not state["Pid"]:
            raise ContainerError(f"cannot join network of a non running container: {other[:12]}")
        netns = f"/proc/{state['Pid']}/ns/net"
    cfg = config["Config"]
    env = {}
    for e in cfg["Env"]:
        k, _, v = e.partition("=")
        env[k] = v
    env.setdefault("HOSTNAME", cfg["Hostname"])
    if cfg.get("Tty"):
        env.setdefault("TERM", "xterm")
    caps = capability_mask(host.get("CapAdd") or [], host.get("CapDrop") or [], host.get("Privileged", False))
    try:
        no_new_privs = seccomp.security_opts(host.get("SecurityOpt") or [])[1]
        bpf = seccomp.filter_for(root.path, host, capability_names(caps))
    except (seccomp.ProfileError, OSError) as exc:
        raise ContainerError(str(exc)) from None
    return {
        "clone_flags": flags, "netns": netns,
        "net": "private" if flags & sc.CLONE_NEWNET else network,
        "uts": True, "hostname": cfg["Hostname"],
        "merged": os.path.join(cdir, "merged"), "upper": os.path.join(cdir, "upper"),
        "work": os.path.join(cdir, "work"), "lowers": [os.path.join(cdir, "init"), *config["Layers"]],
        "etc": {n: os.path.join(cdir, n) for n in ("hostname", "hosts", "resolv.conf")},
        "mounts": plan_mounts(config), "root": root.path, "cgroup": cgroup,
        "env": env, "user": cfg["User"] or "0", "workdir": cfg["WorkingDir"],
        "caps": caps, "no_new_privs": no_new_privs, "seccomp": bpf,
        "argv": [config["Path"], *config["Args"]], "init": bool(host.get("Init")),
        "read_only": bool(host.get("ReadonlyRootfs")), "tty": bool(cfg.get("Tty")),
    }


# -- lifecycle ----------------------------------------------------------------


def start(root: Root, cid: str, *, attach: bool, interactive: bool = False) -> int:
    """Hand the container to a new supervisor; returns the status pipe to read
    (``started PID`` / ``exit N`` / ``error N MSG``). -1 if already running."""
    from .supervisor import spawn

    lock = root.lock(cid)
    lock.__enter__()
    try:
        state = reconcile(root, cid, root.read_state(cid), locked=True)
        if state["Status"] == "paused":
            raise ContainerError(f"cannot start a paused container {cid[:12]}, try unpause instead")
        if state["Status"] in ("running", "restarting"):
            return -1
        fault("start:locked")
        status_fd = spawn(root, cid, lock.fd, attach=attach, interactive=interactive)
        fault("start:after-spawn")
        return status_fd
    finally:
        lock.__exit__()


def signal_container(root: Root, state: dict, sig: int) -> bool:
    """Send ``sig`` to the container's PID 1 if it is still that process."""
    pid, start_ = state.get("Pid", 0), state.get("PidStart", 0)
    if not pid:
        return False
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if process_start(pid) != start_:
            return False
        import signal as _sig

        _sig.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def wait_exit(root: Root, cid: str, pid: int, pid_start: int, timeout: float | None) -> bool:
    """Wait until process ``pid`` has ended and the supervisor recorded it; False on timeout."""
    import select

    deadline = None if timeout is None else time.monotonic() + timeout
    if pid:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                if process_start(pid) == pid_start:
                    p = select.poll()
                    p.register(fd, select.POLLIN)
                    ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
                    if not p.poll(ms):
                        return False
            finally:
                os.close(fd)
    for _ in range(2000):  # the supervisor records the exit right after reaping
        try:
            state = root.read_state(cid)
        except ContainerError:
            return True
        state = reconcile(root, cid, state)
        if state["Pid"] != pid or not state["Running"] or state["Status"] == "restarting":
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return False


def reconcile(root: Root, cid: str, state: dict, *, locked: bool = False) -> dict:
    """If the supervisor of an active container is dead, kill what is left and record "exited"."""
    if state["Status"] not in ACTIVE:
        return state
    sup = state.get("Supervisor") or {}
    if alive(sup.get("Pid", 0), sup.get("Start", 0)):
        return state

    def fix() -> dict:
        current = root.read_state(cid)
        sup2 = current.get("Supervisor") or {}
        if current["Status"] not in ACTIVE or alive(sup2.get("Pid", 0), sup2.get("Start", 0)):
            return current
        from .cgroups import Cgroup

        Cgroup(cid).destroy()
        was_running = current["Pid"] != 0
        current.update(Status="exited", Running=False, Paused=False, Restarting=False, Pid=0, PidStart=0,
                       ExitCode=137 if was_running else current["ExitCode"],
                       Error=f"supervisor (pid {sup2.get('Pid', 0)}) died; the container was killed",
                       FinishedAt=rfc3339())
        root.write_state(cid, current)
        return current

    if locked:
        return fix()
    try:
        with root.lock(cid):
            return fix()
    except FileNotFoundError:
        return state


def stop(root: Root, cid: str, timeout: int | None) -> None:
    config = root.read_config(cid)
    if timeout is None:
        timeout = config["Config"].get("StopTimeout")
    if timeout is None:
        timeout = 10
    sig = parse_signal(config["Config"].get("StopSignal") or "SIGTERM")
    state = _mark_manual(root, cid)
    if state is None or not state["Pid"]:
        return
    signal_container(root, state, sig)
    if state["Paused"]:
        _freeze(root, cid, False)
    if timeout < 0:
        wait_exit(root, cid, state["Pid"], state["PidStart"], None)
        return
    if not wait_exit(root, cid, state["Pid"], state["PidStart"], float(timeout)):
        signal_container(root, state, 9)
        if not wait_exit(root, cid, state["Pid"], state["PidStart"], 30.0):
            raise ContainerError(f"cannot stop container: {cid[:12]}: it did not exit after SIGKILL")


def _mark_manual(root: Root, cid: str) -> dict | None:
    """Record a manual stop; a container waiting to restart is stopped right here."""
    with root.lock(cid):
        state = reconcile(root, cid, root.read_state(cid), locked=True)
        if state["Status"] not in ACTIVE:
            return None
        state["ManualStop"] = True
        if state["Status"] == "restarting":
            state.update(Status="exited", Running=False, Restarting=False)
            root.write_state(cid, state)
            sup = state.get("Supervisor") or {}
            if alive(sup.get("Pid", 0), sup.get("Start", 0)):
                os.kill(sup["Pid"], 10)  # SIGUSR1: wake from the back-off and exit
            return None
        root.write_state(cid, state)
        return state


def kill(root: Root, cid: str, sig: int) -> None:
    config = root.read_config(cid)
    stop_sig = parse_signal(config["Config"].get("StopSignal") or "SIGTERM")
    if sig in (9, stop_sig):
        state = _mark_manual(root, cid)
        if state is None:
            raise ContainerError(f"Cannot kill container: {cid[:12]}: Container {cid} is not running")
    else:
        state = reconcile(root, cid, root.read_state(cid))
    if not state["Running"] or not state["Pid"]:
        raise ContainerError(f"Cannot kill container: {cid[:12]}: Container {cid} is not running")
    if not signal_container(root, state, sig):
        raise ContainerError(f"Cannot kill container: {cid[:12]}: Container {cid} is not running")
    if state["Paused"] and sig == 9:
        _freeze(root, cid, False)


def wait(root: Root, cid: str) -> int:
    while True:
        state = reconcile(root, cid, root.read_state(cid))
        if not state["Running"]:
            return state["ExitCode"]
        if state["Pid"]:
            wait_exit(root, cid, state["Pid"], state["PidStart"], None)
        else:
            time.sleep(0.05)


def _freeze(root: Root, cid: str, frozen: bool) -> None:
    from .cgroups import Cgroup

    Cgroup(cid).freeze(frozen)


def pause(root: Root, cid: str, frozen: bool) -> None:
    with root.lock(cid):
        state = reconcile(root, cid, root.read_state(cid), locked=True)
        if frozen:
            if state["Status"] == "paused":
                raise ContainerError(f"Container {cid} is already paused")
            if state["Status"] != "running":
                raise ContainerError(f"Container {cid} is not running")
        elif state["Status"] != "paused":
            raise ContainerError(f"Container {cid} is not paused")
        _freeze(root, cid, frozen)
        state.update(Paused=frozen, Status="paused" if frozen else "running")
        root.write_state(cid, state)
    root.event("container", "pause" if frozen else "unpause", cid)


def rename(root: Root, cid: str, new_name: str) -> None:
    """``docker rename``: the new name is reserved before the old one is let go,
    so a taken name leaves the container as it was, and no moment exists in
    which it has neither."""
    name = new_name[1:] if new_name.startswith("/") else new_name
    if not name:
        raise ContainerError("Neither old nor new names may be empty")
    if not _valid_container_name(name):
        raise ContainerError(f"Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    with root.lock(cid):
        config = root.read_config(cid)
        old = config["Name"][1:]
        if name == old:
            raise ContainerError("Renaming a container with the same name as its current name")
        try:
            root.reserve_name(name, cid)
        except ContainerError as exc:
            raise ContainerError(f"Error when allocating new name: {exc}") from None
        try:
            # the one rewrite of config.json: atomic, so readers see either name
            jsonio.write_atomic(os.path.join(root.container_dir(cid), "config.json"), {**config, "Name": f"/{name}"})
        except BaseException:
            root.release_name(name, cid)
            raise
        root.release_name(old, cid)
    root.event("container", "rename", cid, {"name": name, "oldName": f"/{old}"})


def remove(root: Root, cid: str, *, force: bool, volumes: bool) -> None:
    state = reconcile(root, cid, root.read_state(cid))
    if state["Status"] in ACTIVE:
        if not force:
            raise ContainerError(f"You cannot remove a {state['Status']} container {cid}. "
                                 "Stop the container before attempting removal or force remove")
        marked = _mark_manual(root, cid)
        if marked is not None and marked["Pid"]:
            signal_container(root, marked, 9)
            if marked["Paused"]:
                _freeze(root, cid, False)
            wait_exit(root, cid, marked["Pid"], marked["PidStart"], 10.0)
    with root.lock(cid):
        state = root.read_state(cid)
        if state["Status"] in ACTIVE:
            sup = state.get("Supervisor") or {}
            if alive(sup.get("Pid", 0), sup.get("Start", 0)):
                os.kill(sup["Pid"], 9)
            state["Supervisor"] = {"Pid": 0, "Start": 0}
            state["Status"] = "removing"
        trash = remove_files(root, cid, volumes=volumes)
    purge(trash)
    root.event("container", "destroy", cid)


def purge(path: str) -> None:
    """Delete a directory tree without following symlinks, best effort; any depth (a container
    may make directories deeper than Python's recursion limit and paths longer than PATH_MAX)."""
    from ..image.fstree import remove_tree

    try:
        remove_tree(path)
    except OSError:
        pass


def remove_files(root: Root, cid: str, *, volumes: bool, cgroups: bool = True) -> str:
    """Everything of a stopped container: name, cgroup, anonymous volumes (``volumes``); its
    directory is renamed away and returned for :func:`purge` (the container is gone already)."""
    from . import volumes as vol
    from .cgroups import Cgroup

    config = root.read_config(cid)
    if cgroups:
        Cgroup(cid).destroy()
    root.release_name(config["Name"][1:], cid)
    cdir = root.container_dir(cid)
    # config.json goes first: a half-removed container is not listed any more.
    os.unlink(os.path.join(cdir, "config.json"))
    fault("rm:after-config-unlink")
    trash = f"{root.containers}/.trash-{cid}"
    os.rename(cdir, trash)
    fault("rm:after-rename")
    if volumes:
        for m in config["Mounts"]:
            if m["Type"] == "volume" and m.get("Anonymous"):
                if not volumes_in_use(root, m["Name"]):
                    try:
                        vol.remove(root.path, m["Name"], [])
                    except ContainerError:
                        pass
    return trash


def volumes_in_use(root: Root, name: str) -> list[str]:
    users = []
    for cid in root.container_ids():
        try:
            config = root.read_config(cid)
        except ContainerError:
            continue
        if any(m["Type"] == "volume" and m.get("Name") == name for m in config["Mounts"]):
            users.append(cid)
    return users


# -- inspect ------------------------------------------------------------------


def inspect_document(root: Root, config: dict, state: dict) -> dict:
    """``docker inspect`` of a container: docker's key names for what we fill. Pure but for paths."""
    cid = config["Id"]
    cdir = root.container_dir(cid)
    host = dict(config["HostConfig"])
    network = host["NetworkMode"]
    mounts = []
    for m in config["Mounts"]:
        doc = {"Type": m["Type"], "Source": m["Source"], "Destination": m["Destination"], "Mode": m.get("Mode", ""),
               "RW": m["RW"], "Propagation": m.get("Propagation", "")}
        if m["Type"] == "volume":
            doc = {"Type": "volume", "Name": m["Name"], **{k: v for k, v in doc.items() if k != "Type"},
                   "Driver": "local"}
        mounts.append(doc)
    network_settings = {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": {}, "SandboxKey": f"/proc/{state['Pid']}/ns/net" if state["Pid"] else "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "", "Networks": {},
    }
    if network == "default":
        network_settings["Note"] = NETWORK_NOTE
    elif network in ("none", "host"):
        network_settings["Networks"] = {network: {"NetworkID": network, "EndpointID": "", "Gateway": "",
                                                  "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}}
    public_state = {k: state[k] for k in ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
                                          "ExitCode", "Error", "StartedAt", "FinishedAt")}
    return {
        "Id": cid, "Created": config["Created"], "Path": config["Path"], "Args": config["Args"],
        "State": public_state, "Image": config["Image"],
        "ResolvConfPath": os.path.join(cdir, "resolv.conf"), "HostnamePath": os.path.join(cdir, "hostname"),
        "HostsPath": os.path.join(cdir, "hosts"), "LogPath": os.path.join(cdir, f"{cid}-json.log"),
        "Name": config["Name"], "RestartCount": state["RestartCount"], "Driver": "overlay", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": host,
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": ":".join([os.path.join(cdir, "init"), *config["Layers"]]),
            "UpperDir": os.path.join(cdir, "upper"), "WorkDir": os.path.join(cdir, "work"),
            "MergedDir": os.path.join(cdir, "merged")}},
        "Mounts": mounts, "Config": config["Config"], "NetworkSettings": network_settings,
    }

