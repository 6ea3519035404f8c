"""The container commands: run, create, start, stop, restart, kill, wait,
logs, ps, inspect, rm, pause, unpause, rename, port. Each takes the state root and
the parsed command line and returns the exit status; errors are raised as
:class:`RefError` for cli.main to map. Image, volume, system, exec and cp
commands live in their own modules and load only when used.
"""

from __future__ import annotations

import os
import sys
import time

from ..errors import ContainerError, RefError
from . import runtime, statuspipe
from .flags import Parsed, parse_signal
from .signals import PROXIED
from .state import Root, alive, parse_rfc3339, process_start


def dispatch(root: Root, p: Parsed) -> int:
    """Run ``p.command`` through :data:`HANDLERS`."""
    module, handler = HANDLERS[p.command]
    if module == "commands":
        return globals()[handler](root, p)
    import importlib

    root.ensure()
    function = getattr(importlib.import_module(f"{__package__}.{module}"), handler)
    if module == "imagecmds":  # the image commands work on the store
        from pathlib import Path

        from ..image.store import ImageStore

        return function(root, ImageStore(Path(root.image)), p)
    return function(root, p)


def _out(text: str) -> None:
    sys.stdout.write(text)


def _each(refs: list[str], action) -> int:
    """docker's multi-container commands: go on after an error, exit 1 at the end."""
    failed = False
    for ref in refs:
        try:
            action(ref)
        except RefError as exc:
            sys.stderr.write(f"refengine: {exc}\n")
            failed = True
    sys.stdout.flush()
    return 1 if failed else 0


# -- run / create / start ------------------------------------------------------


def cmd_create(root: Root, p: Parsed) -> int:
    cid = runtime.create(root, p.opts, p.args)
    _out(cid + "\n")
    return 0


class _Proxy:
    """Forwards the signals an attached CLI receives to the container (docker's sig-proxy)."""

    SIGNALS = PROXIED

    def __init__(self) -> None:
        self.pid = self.start = 0

    def install(self) -> None:
        import _signal

        for sig in self.SIGNALS:
            _signal.signal(sig, self.forward)

    def forward(self, sig, _frame) -> None:
        if self.pid and process_start(self.pid) == self.start:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


def _follow_status(fd: int, proxy: _Proxy | None, attached: bool) -> tuple[str, int, str]:
    """Read the supervisor's status pipe: ("started", pid, "") when detached, else
    ("exit", code, "") / ("error", code, message); ("lost", 0, "") if the supervisor died."""
    buf = b""
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                return statuspipe.LOST, 0, ""
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                kind, number, message = statuspipe.decode(line)
                if kind == statuspipe.STARTED:
                    if proxy is not None:
                        proxy.pid, proxy.start = number, process_start(number)
                    if not attached:
                        return kind, number, ""
                elif kind in (statuspipe.EXIT, statuspipe.ERROR):
                    return kind, number, message
    finally:
        os.close(fd)


def _start_one(root: Root, cid: str, *, attach: bool, interactive: bool, sig_proxy: bool = True) -> int:
    proxy = _Proxy() if attach and sig_proxy else None
    if proxy is not None:
        proxy.install()
    fd = runtime.start(root, cid, attach=attach, interactive=interactive)
    if fd < 0:
        if attach:
            return runtime.wait(root, cid)
        return 0
    kind, code, message = _follow_status(fd, proxy, attach)
    if kind == statuspipe.ERROR:
        sys.stderr.write(f"refengine: {message}\n")
        raise _StartFailed(code)
    if kind == statuspipe.LOST:
        try:
            state = _after_supervisor(root, cid)
        except ContainerError:
            raise ContainerError(f"the supervisor of {cid[:12]} died") from None
        if not attach:
            # died before it said "started" (a container it started dies with it): the start failed
            raise ContainerError(f"the supervisor of {cid[:12]} died before the container started "
                                 f"(it is {state['Status']})")
        return state["ExitCode"]
    return code if kind == statuspipe.EXIT else 0


def _after_supervisor(root: Root, cid: str) -> dict:
    """The state once the supervisor that closed its status pipe is gone: the pipe's EOF
    comes while the process is still exiting, before /proc shows it dead."""
    deadline = time.monotonic() + 5
    while True:
        state = root.read_state(cid)
        sup = state.get("Supervisor") or {}
        if not alive(sup.get("Pid", 0), sup.get("Start", 0)) or time.monotonic() > deadline:
            return runtime.reconcile(root, cid, state)
        time.sleep(0.005)


class _StartFailed(Exception):
    def __init__(self, code: int):
        self.code = code


def _raw_terminal(wanted: bool) -> list | None:
    """-it on a terminal: the caller's terminal goes raw, so every key reaches the
    container's terminal untranslated and that one echoes, edits lines and turns
    ^C into SIGINT (docker's CLI does the same). Returns what to restore."""
    if not wanted or not os.isatty(0):
        return None
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)
    return saved


def _restore_terminal(saved: list | None) -> None:
    if saved is not None:
        import termios

        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def cmd_run(root: Root, p: Parsed) -> int:
    detach = bool(p.opts.get("detach"))
    tty = bool(p.opts.get("tty"))
    interactive = bool(p.opts.get("interactive"))
    if tty and interactive and not detach and not os.isatty(0):
        sys.stderr.write("the input device is not a TTY\n")  # docker's CLI, before anything is created
        return 1
    cid = runtime.create(root, p.opts, p.args)
    if p.opts.get("cidfile"):
        with open(p.opts["cidfile"], "x") as f:
            f.write(cid)
    saved = _raw_terminal(tty and interactive and not detach)
    try:
        # docker proxies signals in non-TTY mode only: on a terminal, ^C is the container's terminal's
        code = _start_one(root, cid, attach=not detach, interactive=interactive,
                          sig_proxy=p.opts.get("sig_proxy", True) and not tty)
    except _StartFailed as exc:
        return exc.code
    finally:
        _restore_terminal(saved)
    if detach:
        _out(cid + "\n")
        return 0
    from .state import trace

    trace("cli: exit status received")
    return code


def cmd_start(root: Root, p: Parsed) -> int:
    if p.opts.get("attach"):
        if len(p.args) > 1:
            raise ContainerError("you cannot start and attach multiple containers at once")
        cid = root.find(p.args[0])
        interactive = bool(p.opts.get("interactive"))
        saved = _raw_terminal(interactive and root.read_config(cid)["Config"].get("Tty", False))
        try:
            return _start_one(root, cid, attach=True, interactive=interactive)
        except _StartFailed as exc:
            return exc.code
        finally:
            _restore_terminal(saved)

    def one(ref: str) -> None:
        cid = root.find(ref)
        try:
            _start_one(root, cid, attach=False, interactive=False)
        except _StartFailed:
            raise ContainerError(f"failed to start containers: {ref}") from None
        _out(ref + "\n")

    return _each(p.args, one)


def cmd_stop(root: Root, p: Parsed) -> int:
    def one(ref: str) -> None:
        runtime.stop(root, root.find(ref), p.opts.get("time"))
        _out(ref + "\n")

    return _each(p.args, one)


def cmd_restart(root: Root, p: Parsed) -> int:
    def one(ref: str) -> None:
        cid = root.find(ref)
        runtime.stop(root, cid, p.opts.get("time"))
        try:
            _start_one(root, cid, attach=False, interactive=False)
        except _StartFailed:
            raise ContainerError(f"failed to restart container: {ref}") from None
        root.container_event("restart", cid)  # docker: kill, die, stop, start, then restart
        _out(ref + "\n")

    return _each(p.args, one)


def cmd_kill(root: Root, p: Parsed) -> int:
    try:
        sig = parse_signal(p.opts.get("signal") or "KILL")
    except ValueError as exc:
        raise ContainerError(str(exc)) from None

    def one(ref: str) -> None:
        runtime.kill(root, root.find(ref), sig)
        _out(ref + "\n")

    return _each(p.args, one)


def cmd_wait(root: Root, p: Parsed) -> int:
    def one(ref: str) -> None:
        code = runtime.wait(root, root.find(ref))
        _out(f"{code}\n")
        sys.stdout.flush()

    return _each(p.args, one)


def cmd_rm(root: Root, p: Parsed) -> int:
    def one(ref: str) -> None:
        runtime.remove(root, root.find(ref), force=bool(p.opts.get("force")), volumes=bool(p.opts.get("volumes")))
        _out(ref + "\n")

    return _each(p.args, one)


def cmd_pause(root: Root, p: Parsed) -> int:
    frozen = p.command == "pause"

    def one(ref: str) -> None:
        runtime.pause(root, root.find(ref), frozen)
        _out(ref + "\n")

    return _each(p.args, one)


def cmd_rename(root: Root, p: Parsed) -> int:
    runtime.rename(root, root.find(p.args[0]), p.args[1])
    return 0


def _host_port(binding: dict) -> str:
    """Go's net.JoinHostPort: an IPv6 address in brackets."""
    host = binding.get("HostIp") or ""
    return f"[{host}]:{binding['HostPort']}" if ":" in host else f"{host}:{binding['HostPort']}"


def cmd_port(root: Root, p: Parsed) -> int:
    """``docker port``: the container's published ports, "80/tcp -> 0.0.0.0:8080" each,
    or the host addresses of one private port."""
    ref = p.args[0]
    cid = root.find(ref)
    config = root.read_config(cid)
    ports = runtime.inspect_document(root, config, runtime.reconcile(root, cid, root.read_state(cid)))[
        "NetworkSettings"]["Ports"] or {}
    if len(p.args) > 1:
        private = p.args[1] if "/" in p.args[1] else f"{p.args[1]}/tcp"  # docker's default protocol
        bindings = ports.get(private) or []
        if not bindings:
            raise ContainerError(f"No public port '{private}' published for {ref}")
        _out("".join(_host_port(b) + "\n" for b in bindings))
        return 0
    lines = [f"{port} -> {_host_port(b)}" for port, bindings in ports.items() for b in bindings or []]
    _out("".join(line + "\n" for line in sorted(lines)))
    return 0


# -- logs ----------------------------------------------------------------------------


def cmd_logs(root: Root, p: Parsed) -> int:
    from . import logs
    from .flags import parse_timestamp

    cid = root.find(p.args[0])
    now = time.time()
    try:
        since = parse_timestamp(p.opts["since"], now) if p.opts.get("since") else None
        until = parse_timestamp(p.opts["until"], now) if p.opts.get("until") else None
        tail = logs.parse_tail(p.opts.get("tail"))
    except ValueError as exc:
        raise ContainerError(str(exc)) from None
    path = os.path.join(root.container_dir(cid), f"{cid}-json.log")
    stamps = bool(p.opts.get("timestamps"))

    def emit(records: list[dict]) -> None:
        for r in records:
            stream = sys.stdout if r.get("stream") != "stderr" else sys.stderr
            text = r["log"]
            if stamps:
                text = f"{r['time']} {text}"
            stream.buffer.write(text.encode())
        sys.stdout.flush()
        sys.stderr.flush()

    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        records = [r for r in (logs.parse(line) for line in f.read().splitlines()) if r]
        emit(logs.select(records, since=since, until=until, tail=tail, time_of=parse_rfc3339))
        if not p.opts.get("follow"):
            return 0
        pending = b""
        while True:
            chunk = f.read()
            if chunk:
                pending += chunk
                lines = pending.split(b"\n")
                pending = lines.pop()
                recs = [r for r in (logs.parse(line) for line in lines) if r]
                emit(logs.select(recs, since=since, until=until, time_of=parse_rfc3339))
                if until is not None and time.time() > until:
                    return 0
                continue
            try:
                state = runtime.reconcile(root, cid, root.read_state(cid))
            except ContainerError:
                return 0
            if not state["Running"]:
                time.sleep(0.05)
                rest = pending + f.read()
                recs = [r for r in (logs.parse(line) for line in rest.split(b"\n")) if r]
                emit(logs.select(recs, since=since, until=until, time_of=parse_rfc3339))
                return 0
            time.sleep(0.1)


# -- ps ------------------------------------------------------------------------------

_PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
               "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS",
               "Mounts": "MOUNTS", "Networks": "NETWORKS", "State": "STATE", "Size": "SIZE",
               "LocalVolumes": "LOCAL VOLUMES"}


def _matches(config: dict, state: dict, filters: list[str]) -> bool:
    groups: dict[str, list[str]] = {}
    for f in filters:
        key, sep, value = f.partition("=")
        if not sep:
            raise ContainerError(f"bad format of filter (expected name=value): {f}")
        groups.setdefault(key.lower(), []).append(value)
    for key, values in groups.items():
        if key == "label":
            labels = config["Config"].get("Labels") or {}
            for v in values:
                k, eq, val = v.partition("=")
                if k not in labels or (eq and labels[k] != val):
                    return False
        elif key == "name":
            name = config["Name"][1:]
            if not any(v.lstrip("/") in name for v in values):
                return False
        elif key == "id":
            if not any(config["Id"].startswith(v) for v in values):
                return False
        elif key == "status":
            valid = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}
            for v in values:
                if v not in valid:
                    raise ContainerError(f"Invalid filter 'status={v}'")
            if state["Status"] not in values:
                return False
        elif key == "exited":
            if state["Status"] != "exited" or str(state["ExitCode"]) not in values:
                return False
        elif key == "ancestor":
            if not any(v in (config["Config"]["Image"], config["Image"]) or config["Image"][7:].startswith(v)
                       for v in values):
                return False
        elif key == "volume":
            if not any(m.get("Name") == v or m["Destination"] == v for m in config["Mounts"] for v in values):
                return False
        elif key == "health":
            from .health import HEALTH_FILTER_VALUES, status_of

            for v in values:
                if v not in HEALTH_FILTER_VALUES:
                    raise ContainerError(f"Unrecognised filter value for health: {v}")
            if status_of(state) not in values:
                return False
        else:
            raise ContainerError(f"Invalid filter '{key}'")
    return True


def _ports_column(config: dict, state: dict) -> str:
    exposed = list(config["Config"].get("ExposedPorts") or {})
    published = state.get("Ports") or {} if state["Running"] else {}
    if not exposed and not published:
        return ""
    from ..net.ports import column

    return column(exposed, published)


def _network_names(config: dict) -> list[str]:
    mode = config["HostConfig"]["NetworkMode"]
    names = ["bridge" if mode == "default" else mode]
    return list(dict.fromkeys([*names, *((config.get("NetworkingConfig") or {}).get("EndpointsConfig") or {})]))


def ps_row(config: dict, state: dict, now: float, no_trunc: bool) -> dict:
    from .format import container_status, human_duration, ps_command

    created = parse_rfc3339(config["Created"])
    labels = config["Config"].get("Labels") or {}
    return {
        "ID": config["Id"] if no_trunc else config["Id"][:12],
        "Image": config["Config"]["Image"],
        "Command": ps_command(config["Path"], config["Args"], trunc=not no_trunc),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created)),
        "RunningFor": human_duration(now - created) + " ago",
        "Status": container_status(state, now, parse_rfc3339(state["StartedAt"]), parse_rfc3339(state["FinishedAt"])),
        "State": state["Status"],
        "Ports": _ports_column(config, state),
        "Names": config["Name"][1:],
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        # a method in docker's template data: {{.Label "k"}}
        "Label": lambda key: labels.get(key, ""),
        "Mounts": ",".join(m.get("Name", m["Source"])[:15] for m in config["Mounts"]),
        "Networks": ",".join(_network_names(config)),
        "LocalVolumes": str(sum(1 for m in config["Mounts"] if m["Type"] == "volume")),
        "Size": "",
    }


def cmd_ps(root: Root, p: Parsed) -> int:
    records = runtime.container_records(root)
    opts = p.opts
    if not (opts.get("all") or opts.get("latest") or (opts.get("last") or -1) > 0):
        records = [(c, s) for c, s in records if s["Status"] in ("running", "paused", "restarting")]
    records = [(c, s) for c, s in records if _matches(c, s, opts.get("filter") or [])]
    if opts.get("latest"):
        records = records[:1]
    elif (opts.get("last") or -1) > 0:
        records = records[: opts["last"]]
    now = time.time()
    if opts.get("quiet"):
        _out("".join((c["Id"] if opts.get("no_trunc") else c["Id"][:12]) + "\n" for c, _ in records))
        return 0
    rows = [ps_row(c, s, now, bool(opts.get("no_trunc"))) for c, s in records]
    from .format import format_rows

    template = opts.get("format") or "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    lines = format_rows(template, rows, _PS_HEADERS)
    _out("".join(line + "\n" for line in lines))
    return 0


# -- inspect -------------------------------------------------------------------------


def cmd_inspect(root: Root, p: Parsed) -> int:
    kind = p.opts.get("type")
    if kind not in (None, "container", "image", "volume", "network", "node", "service", "task"):
        raise ContainerError(f'"{kind}" is not a valid value for --type')
    docs = []
    errors = []
    for ref in p.args:
        doc = None
        if kind in (None, "container"):
            try:
                cid = root.find(ref)
                config = root.read_config(cid)
                state = runtime.reconcile(root, cid, root.read_state(cid))
                doc = runtime.inspect_document(root, config, state)
            except ContainerError:
                doc = None
        if doc is None and kind in (None, "image"):
            try:
                from ..image.store import ImageStore

                doc = ImageStore(root.image).inspect(ref)
            except RefError:
                doc = None
        if doc is None and kind in (None, "volume"):
            from . import volumes

            try:
                doc = volumes.inspect(root.path, ref)
            except ContainerError:
                doc = None
        if doc is None and kind in (None, "network"):
            from .netcmds import network_document

            try:
                doc = network_document(root, ref)
            except ContainerError:
                doc = None
        for swarm_kind in ("node", "service", "task"):  # swarm objects: asked of this node's swarmd
            if doc is None and kind in (None, swarm_kind):
                from ..swarm.cli import swarm_document

                doc = swarm_document(root.path, swarm_kind, ref)
        if doc is None:
            errors.append(f"No such {kind or 'object'}: {ref}")
        else:
            docs.append(doc)
    from .format import documents

    _out(documents(p.opts.get("format"), docs))
    for e in errors:
        sys.stderr.write(f"Error: {e}\n")
    return 1 if errors else 0


#: The one table of refengine's commands: name (a key of flags.COMMANDS) -> (module of this
#: package, handler). The builder's commands are handed to build.cli before (see cli.run).
#: Modules other than this one are imported on first use: ``run`` loads none of them.
HANDLERS = {
    "run": ("commands", "cmd_run"), "create": ("commands", "cmd_create"), "start": ("commands", "cmd_start"),
    "stop": ("commands", "cmd_stop"), "restart": ("commands", "cmd_restart"), "kill": ("commands", "cmd_kill"),
    "wait": ("commands", "cmd_wait"), "rm": ("commands", "cmd_rm"), "pause": ("commands", "cmd_pause"),
    "unpause": ("commands", "cmd_pause"), "logs": ("commands", "cmd_logs"), "ps": ("commands", "cmd_ps"),
    "inspect": ("commands", "cmd_inspect"), "rename": ("commands", "cmd_rename"), "port": ("commands", "cmd_port"),
    "exec": ("inside", "cmd_exec"), "cp": ("inside", "cmd_cp"), "commit": ("inside", "cmd_commit"),
    "export": ("inside", "cmd_export"), "top": ("inside", "cmd_top"),
    "stats": ("stats", "cmd_stats"),
    "volume create": ("systemcmds", "cmd_volume_create"), "volume ls": ("systemcmds", "cmd_volume_ls"),
    "volume inspect": ("systemcmds", "cmd_volume_inspect"), "volume rm": ("systemcmds", "cmd_volume_rm"),
    "volume prune": ("systemcmds", "cmd_volume_prune"), "system df": ("systemcmds", "cmd_system_df"),
    "system prune": ("systemcmds", "cmd_system_prune"), "system info": ("systemcmds", "cmd_system_info"),
    "system events": ("systemcmds", "cmd_system_events"), "system check": ("systemcmds", "cmd_system_check"),
    "version": ("systemcmds", "cmd_version"),
    "network create": ("netcmds", "cmd_network_create"), "network ls": ("netcmds", "cmd_network_ls"),
    "network inspect": ("netcmds", "cmd_network_inspect"), "network rm": ("netcmds", "cmd_network_rm"),
    "network prune": ("netcmds", "cmd_network_prune"), "network connect": ("netcmds", "cmd_network_connect"),
    "network disconnect": ("netcmds", "cmd_network_disconnect"),
    "load": ("imagecmds", "cmd_load"), "save": ("imagecmds", "cmd_save"), "images": ("imagecmds", "cmd_images"),
    "rmi": ("imagecmds", "cmd_rmi"), "tag": ("imagecmds", "cmd_tag"), "history": ("imagecmds", "cmd_history"),
    "import": ("imagecmds", "cmd_import"),
}
