"""Containers: create (flags + image -> config.json), start (hand-off to a
supervisor), stop, kill, wait, pause, remove, and the reconciliation that
turns a dead supervisor into a truthful "exited" state.

The pipeline is runc's: CLI flags -> :class:`spec.ContainerSpec` ->
:func:`spec.validate` (named checks that touch nothing) -> config.json
(:func:`spec.to_config`, written by :func:`create`) -> at each start a
:class:`plan.ContainerPlan` (:func:`plan.container_plan`, in the supervisor)
-> :mod:`process` in the new namespaces.
"""

from __future__ import annotations

import os
import sys
import time

from ..errors import ContainerError
from . import etcfiles, health, jsonio
from . import volumes as vol
from .flags import parse_signal
from .removal import purge, remove_files, volumes_in_use  # noqa: F401 - storecheck and rm use them from here
from .signals import SIGKILL, SIGUSR1, pidfd_send_signal
from .spec import from_flags, to_config, valid_container_name, validate
from .state import ACTIVE, Root, alive, fault, new_state, process_start, rfc3339, trace



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
    """``create``: resolve the image, check the spec, then write config + state; returns the id.

    The pipeline (see :mod:`.spec` and :mod:`.plan`): flags -> ContainerSpec ->
    validate -> config.json; each start turns the config into a ContainerPlan.
    Nothing is created on the host before the spec passed every check.
    """
    ref = args[0]
    image = resolve_image(root, ref)
    trace("cli: image resolved")
    cid = os.urandom(32).hex()
    spec = from_flags(opts, args, image, cid)
    validate(spec)
    if spec.network == "host" and (spec.publish or spec.publish_all):
        sys.stderr.write("WARNING: Published ports are discarded when using host network mode\n")
    config = to_config(root, spec)
    root.ensure()
    name = config["Name"][1:]
    cdir = root.container_dir(cid)
    os.makedirs(cdir, mode=0o710)
    try:
        name = _reserve(root, name, cid, generated=not spec.name)
    except BaseException:  # not only a taken name: also OSError (a name the filesystem refuses)
        os.rmdir(cdir)
        raise
    config["Name"] = "/" + name
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
    root.container_event("create", cid, config)
    trace("cli: container created")
    return cid


def _reserve(root: Root, name: str, cid: str, *, generated: bool) -> str:
    """Reserve the container's name; a generated one that is taken gets a digit appended,
    as docker's name generator does on retry (400 adjective_noun pairs collide soon)."""
    for attempt in range(10 if generated else 1):
        candidate = f"{name}{os.urandom(1)[0] % 10}" if attempt else name
        try:
            root.reserve_name(candidate, cid)
            return candidate
        except ContainerError:
            if not generated or attempt == 9:
                raise
    raise AssertionError("unreachable")


def _prepare_dir(root: Root, cdir: str, config: dict) -> None:
    """The container's directories and /etc files, its volumes, and the missing host
    directories of its ``-v`` binds (docker's daemon creates those; ``--mount`` refuses them)."""
    prepare_layout(cdir)
    host = config["HostConfig"]
    mode = host["NetworkMode"]
    resolver = ""
    if mode not in ("default", "none", "host") and not mode.startswith("container:"):
        from ..net.netstore import NetworkStore, gateway

        resolver = gateway(NetworkStore(root.path).find(mode))  # the network's embedded DNS server
    etcfiles.write(cdir, mode, config["Config"]["Hostname"], host.get("Dns") or [], resolver)
    for m in config["Mounts"]:
        if m["Type"] == "volume":
            vol.create(root.path, m["Name"], anonymous=bool(m.get("Anonymous")))
            m["Source"] = os.path.join(vol.path_of(root.path, m["Name"]), "_data")
        elif m["Type"] == "bind" and not os.path.exists(m["Source"]):
            os.makedirs(m["Source"], exist_ok=True)


def prepare_layout(cdir: str) -> None:
    """A container's directories: overlay upper/work/merged and the init layer's mount points."""
    for sub in ("upper", "work", "merged", "init/proc", "init/sys", "init/dev", "init/etc"):
        os.makedirs(os.path.join(cdir, sub), exist_ok=True)


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
        pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _kill_with_event(root: Root, cid: str, config: dict, state: dict, sig: int) -> bool:
    """docker's kill event (attribute ``signal``), then the signal: logged first, the kill
    always precedes the die that the supervisor logs once the signal has done its work."""
    root.container_event("kill", cid, config, signal=str(sig))
    return signal_container(root, state, sig)


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
        health.stopped(current)
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
    _kill_with_event(root, cid, config, state, sig)  # docker's stop: kill (signal), [kill 9], die, stop
    if state["Paused"]:
        _freeze(root, cid, False)
    if timeout < 0:
        wait_exit(root, cid, state["Pid"], state["PidStart"], None)
    elif not wait_exit(root, cid, state["Pid"], state["PidStart"], float(timeout)):
        _kill_with_event(root, cid, config, state, SIGKILL)
        if not wait_exit(root, cid, state["Pid"], state["PidStart"], 30.0):
            raise ContainerError(f"cannot stop container: {cid[:12]}: it did not exit after SIGKILL")
    root.container_event("stop", cid, config)


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
                os.kill(sup["Pid"], SIGUSR1)  # wake from the back-off and exit
            return None
        root.write_state(cid, state)
        return state


def kill(root: Root, cid: str, sig: int) -> None:
    config = root.read_config(cid)
    stop_sig = parse_signal(config["Config"].get("StopSignal") or "SIGTERM")
    if sig in (SIGKILL, stop_sig):
        state = _mark_manual(root, cid)
        if state is None:
            raise ContainerError(f"Cannot kill container: {cid[:12]}: Container {cid} is not running")
    else:
        state = reconcile(root, cid, root.read_state(cid))
    if not state["Running"] or not state["Pid"]:
        raise ContainerError(f"Cannot kill container: {cid[:12]}: Container {cid} is not running")
    if not _kill_with_event(root, cid, config, state, sig):
        raise ContainerError(f"Cannot kill container: {cid[:12]}: Container {cid} is not running")
    if state["Paused"] and sig == SIGKILL:
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
        if frozen:
            health.stopped(state)  # docker stops the probes of a paused container
        root.write_state(cid, state)
    root.container_event("pause" if frozen else "unpause", cid)


def rename(root: Root, cid: str, new_name: str) -> None:
    """``docker rename``: the new name is reserved before the old one is let go,
    so a taken name leaves the container as it was, and no moment exists in
    which it has neither."""
    name = new_name[1:] if new_name.startswith("/") else new_name
    if not name:
        raise ContainerError("Neither old nor new names may be empty")
    if not valid_container_name(name):
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
    root.container_event("rename", cid, oldName=f"/{old}")


def remove(root: Root, cid: str, *, force: bool, volumes: bool) -> None:
    config = root.read_config(cid)  # for the events: the container is gone when destroy is told
    state = reconcile(root, cid, root.read_state(cid))
    if state["Status"] in ACTIVE:
        if not force:
            raise ContainerError(f"You cannot remove a {state['Status']} container {cid}. "
                                 "Stop the container before attempting removal or force remove")
        marked = _mark_manual(root, cid)
        if marked is not None and marked["Pid"]:
            _kill_with_event(root, cid, config, marked, SIGKILL)
            if marked["Paused"]:
                _freeze(root, cid, False)
            wait_exit(root, cid, marked["Pid"], marked["PidStart"], 10.0)
    with root.lock(cid):
        state = root.read_state(cid)
        if state["Status"] in ACTIVE:
            sup = state.get("Supervisor") or {}
            if alive(sup.get("Pid", 0), sup.get("Start", 0)):
                os.kill(sup["Pid"], SIGKILL)
            state["Supervisor"] = {"Pid": 0, "Start": 0}
            state["Status"] = "removing"
        trash = remove_files(root, cid, volumes=volumes)
    if os.path.isdir(os.path.join(root.path, "networks")):
        from ..net.endpoints import forget

        forget(root.path, cid)  # what a killed supervisor could not undo: its endpoints and port rules
    purge(trash)
    root.container_event("destroy", cid, config)


def container_records(root: Root) -> list[tuple[dict, dict]]:
    """(config, state) of every container, newest first, states reconciled."""
    out = []
    for cid in root.container_ids():
        try:
            config = root.read_config(cid)
            state = reconcile(root, cid, root.read_state(cid))
        except (ContainerError, ValueError):
            continue  # being created or removed
        out.append((config, state))
    out.sort(key=lambda cs: cs[0]["Created"], reverse=True)
    return out


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
    if network not in ("none", "host") and not network.startswith("container:"):
        from ..net.endpoints import network_settings as bridge_settings

        network_settings.update(bridge_settings(root.path, config, state))
    elif network in ("none", "host"):
        network_settings["Networks"] = {network: {"NetworkID": network, "EndpointID": "", "Gateway": "",
                                                  "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}}
    public_state = {k: state[k] for k in ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
                                          "ExitCode", "Error", "StartedAt", "FinishedAt")}
    if state.get("Health"):  # docker shows Health once the probes of a healthcheck have started
        public_state["Health"] = state["Health"]
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

