"""Volume and system commands: volume create|ls|inspect|rm|prune,
system df|prune|info|events|check, version."""

from __future__ import annotations

import json
import os
import sys
import time

from ..errors import ContainerError, RefError
from . import volumes
from .removal import volume_users
from .flags import Parsed
from .state import Root, parse_rfc3339


def _print_format(template: str | None, docs: list[dict]) -> None:
    from .format import documents

    sys.stdout.write(documents(template, docs))


def _labels(items: list[str]) -> dict:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def cmd_volume_create(root: Root, p: Parsed) -> int:
    if p.opts.get("driver") not in (None, "local"):
        raise ContainerError(f"error looking up volume plugin {p.opts['driver']}: plugin not found")
    name = p.args[0] if p.args else (p.opts.get("name") or os.urandom(32).hex())
    volumes.create(root.path, name, labels=_labels(p.opts.get("label") or []), options=_labels(p.opts.get("opt") or []))
    sys.stdout.write(name + "\n")
    return 0


def _volume_filter(root: Root, names: list[str], filters: list[str]) -> list[str]:
    users = None
    for f in filters:
        key, _, value = f.partition("=")
        if key == "dangling":
            users = users if users is not None else volume_users(root)
            want = value.lower() in ("true", "1")
            names = [n for n in names if (n not in users) == want]
        elif key == "name":
            names = [n for n in names if value in n]
        elif key == "label":
            k, eq, v = value.partition("=")
            kept = []
            for n in names:
                labels = volumes.inspect(root.path, n)["Labels"]
                if k in labels and (not eq or labels[k] == v):
                    kept.append(n)
            names = kept
        elif key == "driver":
            names = names if value == "local" else []
        else:
            raise ContainerError(f"Invalid filter '{key}'")
    return names


def cmd_volume_ls(root: Root, p: Parsed) -> int:
    names = _volume_filter(root, volumes.names(root.path), p.opts.get("filter") or [])
    if p.opts.get("quiet"):
        sys.stdout.write("".join(n + "\n" for n in names))
        return 0
    from .format import format_rows

    docs = [volumes.inspect(root.path, n) for n in names]
    template = p.opts.get("format") or "table {{.Driver}}\t{{.Name}}"
    headers = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE", "Labels": "LABELS"}
    rows = [{**d, "Labels": ",".join(f"{k}={v}" for k, v in d["Labels"].items())} for d in docs]
    sys.stdout.write("".join(line + "\n" for line in format_rows(template, rows, headers)))
    return 0


def cmd_volume_inspect(root: Root, p: Parsed) -> int:
    docs, failed = [], False
    for name in p.args:
        try:
            docs.append(volumes.inspect(root.path, name))
        except ContainerError as exc:
            sys.stderr.write(f"Error: {exc}\n")
            failed = True
    _print_format(p.opts.get("format"), docs)
    return 1 if failed else 0


def cmd_volume_rm(root: Root, p: Parsed) -> int:
    users = volume_users(root)
    failed = False
    for name in p.args:
        try:
            if not volumes.exists(root.path, name):
                if p.opts.get("force"):
                    continue
                raise ContainerError(f"get {name}: no such volume")
            volumes.remove(root.path, name, users.get(name, []))
            sys.stdout.write(name + "\n")
        except ContainerError as exc:
            sys.stderr.write(f"refengine: {exc}\n")
            failed = True
    return 1 if failed else 0


def _dir_size(path: str) -> int:
    total = 0
    for dirpath, dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def prune_volumes(root: Root, all_volumes: bool, filters: list[str]) -> tuple[list[str], int]:
    users = volume_users(root)
    names = _volume_filter(root, volumes.names(root.path), [f for f in filters if not f.startswith("all")])
    removed, space = [], 0
    for name in names:
        if name in users:
            continue
        if not all_volumes and not volumes.is_anonymous(root.path, name):
            continue  # docker 23+: prune takes anonymous volumes only unless --all
        space += _dir_size(os.path.join(volumes.path_of(root.path, name), "_data"))
        try:
            volumes.remove(root.path, name, [])
            removed.append(name)
        except ContainerError:
            pass
    return removed, space


def cmd_volume_prune(root: Root, p: Parsed) -> int:
    from .format import human_size

    removed, space = prune_volumes(root, bool(p.opts.get("all")), p.opts.get("filter") or [])
    if removed:
        sys.stdout.write("Deleted Volumes:\n" + "".join(n + "\n" for n in removed) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(space)}\n")
    return 0


def cmd_system_prune(root: Root, p: Parsed) -> int:
    from pathlib import Path

    from ..image.store import ImageStore
    from . import runtime
    from .runtime import container_records
    from .format import human_size

    space = 0
    deleted = []
    for config, state in container_records(root):
        if state["Status"] in ("exited", "created", "dead"):
            space += _dir_size(os.path.join(root.container_dir(config["Id"]), "upper"))
            runtime.remove(root, config["Id"], force=False, volumes=False)
            deleted.append(config["Id"])
    if deleted:
        sys.stdout.write("Deleted Containers:\n" + "".join(c + "\n" for c in deleted) + "\n")
    if os.path.isdir(os.path.join(root.path, "networks")):  # docker's prune takes unused networks too
        from .netcmds import prune_networks

        networks = prune_networks(root)
        if networks:
            sys.stdout.write("Deleted Networks:\n" + "".join(n + "\n" for n in networks) + "\n")
    if p.opts.get("volumes"):
        removed, vspace = prune_volumes(root, False, [])
        space += vspace
        if removed:
            sys.stdout.write("Deleted Volumes:\n" + "".join(n + "\n" for n in removed) + "\n")
    from .imagecmds import images_in_use

    lines, ispace = ImageStore(Path(root.image)).prune_report(dangling_only=not p.opts.get("all"),
                                                             in_use=images_in_use(root))
    space += ispace
    if lines:
        sys.stdout.write("Deleted Images:\n" + "".join(line + "\n" for line in lines) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(space)}\n")
    return 0


def cmd_system_df(root: Root, p: Parsed) -> int:
    from pathlib import Path

    from ..image.store import ImageStore
    from .runtime import container_records
    from .format import format_rows, human_size

    images = ImageStore(Path(root.image)).images()
    records = container_records(root)
    used_images = {c["Image"] for c, _ in records}
    image_size = sum(i.size for i in images)
    image_reclaim = sum(i.size for i in images if i.id not in used_images)
    csizes = {c["Id"]: _dir_size(os.path.join(root.container_dir(c["Id"]), "upper")) for c, _ in records}
    active_c = sum(1 for _, s in records if s["Running"])
    users = volume_users(root)
    vnames = volumes.names(root.path)
    vsizes = {n: _dir_size(os.path.join(volumes.path_of(root.path, n), "_data")) for n in vnames}

    def pct(part: int, whole: int) -> str:
        return f"{human_size(part)} ({int(100 * part / whole) if whole else 0}%)"

    rows = [
        {"Type": "Images", "TotalCount": str(len(images)), "Active": str(sum(1 for i in images if i.id in used_images)),
         "Size": human_size(image_size), "Reclaimable": pct(image_reclaim, image_size)},
        {"Type": "Containers", "TotalCount": str(len(records)), "Active": str(active_c),
         "Size": human_size(sum(csizes.values())),
         "Reclaimable": pct(sum(v for c, s in records if not s["Running"] for v in [csizes[c["Id"]]]), sum(csizes.values()))},
        {"Type": "Local Volumes", "TotalCount": str(len(vnames)), "Active": str(sum(1 for n in vnames if n in users)),
         "Size": human_size(sum(vsizes.values())),
         "Reclaimable": pct(sum(v for n, v in vsizes.items() if n not in users), sum(vsizes.values()))},
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
    ]
    if p.opts.get("verbose"):
        _df_verbose(p.opts.get("format"), images, records, csizes, users, vsizes)
        return 0
    template = p.opts.get("format") or "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
    headers = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
    sys.stdout.write("".join(line + "\n" for line in format_rows(template, rows, headers)))
    return 0


def _df_verbose(template: str | None, images: list, records: list[tuple[dict, dict]], csizes: dict[str, int],
                users: dict[str, list[str]], vsizes: dict[str, int]) -> None:
    """``system df -v``: docker's four sections, a row per image, container, volume (the
    build cache is always empty: the builder keeps its cache as images)."""
    from .commands import ps_row
    from .format import human_duration, human_size, render, table

    now = time.time()
    layer_users: dict[str, int] = {}
    for img in images:
        for chain in set(img.chain_ids):
            layer_users[chain] = layer_users.get(chain, 0) + 1
    image_rows = []
    for img in images:
        shared = sum(size for chain, size in zip(img.chain_ids, img.layer_sizes) if layer_users[chain] > 1)
        created = parse_rfc3339(img.created) if img.created else 0
        for tag in img.repo_tags or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            image_rows.append({
                "Repository": repo, "Tag": t, "ID": img.short_id,
                "CreatedSince": (human_duration(now - created) + " ago") if created else "N/A",
                "Size": human_size(img.size), "SharedSize": human_size(shared),
                "UniqueSize": human_size(img.size - shared),
                "Containers": str(sum(1 for c, _ in records if c["Image"] == img.id))})
    container_rows = [{**ps_row(c, s, now, False), "Size": human_size(csizes[c["Id"]])} for c, s in records]
    volume_rows = [{"Name": n, "Links": str(len(users.get(n, []))), "Size": human_size(v)} for n, v in vsizes.items()]
    if template:
        doc = {"Images": image_rows, "Containers": container_rows, "Volumes": volume_rows, "BuildCache": []}
        sys.stdout.write(render(template.replace("\\t", "\t"), doc) + "\n")
        return

    def section(title: str, header: list[str], keys: list[str], rows: list[dict]) -> str:
        lines = table([header] + [[r[k] for k in keys] for r in rows], min_width=10)
        return f"{title}\n\n" + "".join(line + "\n" for line in lines) + "\n"

    sys.stdout.write(
        section("Images space usage:",
                ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"],
                ["Repository", "Tag", "ID", "CreatedSince", "Size", "SharedSize", "UniqueSize", "Containers"],
                image_rows)
        + section("Containers space usage:",
                  ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"],
                  ["ID", "Image", "Command", "LocalVolumes", "Size", "RunningFor", "Status", "Names"], container_rows)
        + section("Local Volumes space usage:", ["VOLUME NAME", "LINKS", "SIZE"], ["Name", "Links", "Size"],
                  volume_rows)
        + section("Build cache usage: 0B", ["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE",
                                            "SHARED"], [], []).rstrip("\n") + "\n")


def _info(root: Root) -> dict:
    from pathlib import Path

    from ..image.store import ImageStore
    from .cgroups import unified
    from .version import VERSION
    from .runtime import container_records

    records = container_records(root)
    try:
        n_images = len(ImageStore(Path(root.image)).images())
    except RefError:
        n_images = 0
    uname = os.uname()
    return {
        "ID": "", "Containers": len(records),
        "ContainersRunning": sum(1 for _, s in records if s["Status"] == "running"),
        "ContainersPaused": sum(1 for _, s in records if s["Status"] == "paused"),
        "ContainersStopped": sum(1 for _, s in records if s["Status"] not in ("running", "paused")),
        "Images": n_images, "Driver": "overlay", "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
        "KernelMemory": False, "CpuCfsPeriod": False, "CpuCfsQuota": False, "PidsLimit": True,
        "OomKillDisable": False, "IPv4Forwarding": _ip_forwarding(), "Debug": False, "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": "2" if unified() else "1",
        "KernelVersion": uname.release, "OperatingSystem": _os_name(), "OSType": "linux",
        "Architecture": uname.machine, "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(),
        "DockerRootDir": root.path, "Name": uname.nodename, "Labels": [], "ServerVersion": VERSION,
        "DefaultRuntime": "refengine", "Runtimes": {"refengine": {"path": "refengine"}},
        "LiveRestoreEnabled": False, "Isolation": "", "InitBinary": "refengine (built-in init)",
        "SecurityOptions": ["name=no-new-privileges"], "Warnings": [], "Swarm": _swarm(root),
    }


def _swarm(root: Root) -> dict:
    """docker info's Swarm section, from this node's swarmd when it runs."""
    from ..swarm.cli import info_section

    return info_section(root.path)


def _ip_forwarding() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def cmd_system_info(root: Root, p: Parsed) -> int:
    info = _info(root)
    if p.opts.get("format"):
        _print_format(p.opts["format"], [info])
        return 0
    lines = [
        "Client:", " Context:    default", " Debug Mode: false", "",
        "Server:", f" Containers: {info['Containers']}", f"  Running: {info['ContainersRunning']}",
        f"  Paused: {info['ContainersPaused']}", f"  Stopped: {info['ContainersStopped']}",
        f" Images: {info['Images']}", f" Server Version: {info['ServerVersion']}",
        f" Storage Driver: {info['Driver']}", f" Logging Driver: {info['LoggingDriver']}",
        f" Cgroup Driver: {info['CgroupDriver']}", f" Cgroup Version: {info['CgroupVersion']}",
        " Plugins:", "  Volume: local", "  Network: bridge host none", "  Log: json-file",
        f" Swarm: {info['Swarm'].get('LocalNodeState', 'inactive')}",
        f" Runtimes: {info['DefaultRuntime']}", f" Default Runtime: {info['DefaultRuntime']}",
        f" Init Binary: {info['InitBinary']}", f" Kernel Version: {info['KernelVersion']}",
        f" Operating System: {info['OperatingSystem']}", f" OSType: {info['OSType']}",
        f" Architecture: {info['Architecture']}", f" CPUs: {info['NCPU']}",
        f" Total Memory: {info['MemTotal'] / (1 << 30):.2f}GiB", f" Name: {info['Name']}",
        f" Docker Root Dir: {info['DockerRootDir']}", " Live Restore Enabled: false", "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    for w in info["Warnings"]:
        sys.stderr.write(f"WARNING: {w}\n")
    return 0


def cmd_system_check(root: Root, p: Parsed) -> int:
    """One line per problem (storecheck.py); 1 if any, or with --repair if any could not be repaired."""
    from .storecheck import check

    def report(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    left = check(root, repair=bool(p.opts.get("repair")), report=report)
    return 1 if left else 0


def cmd_version(root: Root, p: Parsed) -> int:
    from .version import API_VERSION, VERSION

    doc = {"Client": {"Version": VERSION, "ApiVersion": API_VERSION, "Os": "linux", "Arch": os.uname().machine},
           "Server": {"Version": VERSION, "ApiVersion": API_VERSION, "Os": "linux", "Arch": os.uname().machine,
                      "KernelVersion": os.uname().release,
                      "Components": [{"Name": "refengine", "Version": VERSION}]}}
    if p.opts.get("format"):
        from .format import render

        sys.stdout.write(render(p.opts["format"], doc) + "\n")
        return 0
    py = sys.version.split()[0]
    sys.stdout.write(
        f"Client:\n Version:           {VERSION}\n API version:       {API_VERSION}\n Python version:    {py}\n"
        f" OS/Arch:           linux/{os.uname().machine}\n\nServer: refengine (daemonless)\n Engine:\n"
        f"  Version:          {VERSION}\n  API version:      {API_VERSION}\n  Kernel Version:   {os.uname().release}\n")
    return 0


def _stamp(line: bytes) -> float:
    """An event line's time in seconds, read without parsing the JSON (``timeNano`` is its
    last key, as :meth:`.state.Root.event` writes it); infinity when it cannot be read."""
    at = line.rfind(b'"timeNano":')
    try:
        return int(line[at + 11:].rstrip(b"} \r")) / 1e9 if at >= 0 else float("inf")
    except ValueError:
        return float("inf")


def cmd_system_events(root: Root, p: Parsed) -> int:
    from .flags import parse_timestamp

    now = time.time()
    try:
        since = parse_timestamp(p.opts["since"], now) if p.opts.get("since") else None
        until = parse_timestamp(p.opts["until"], now) if p.opts.get("until") else None
    except ValueError as exc:
        raise ContainerError(str(exc)) from None
    from .events import default_line, matches, parse_filters, template_view, well_formed

    filters = parse_filters(p.opts.get("filter") or [])
    if p.opts.get("format"):
        from .gotemplate import parse as parse_template

        parse_template(p.opts["format"])  # a broken template fails now, not at the first event (maybe never)

    def keep(ev: dict) -> bool:
        t = ev["timeNano"] / 1e9
        if since is not None and t < since:
            return False
        if until is not None and t > until:
            return False
        return matches(ev, filters)

    def show(ev: dict) -> None:
        if p.opts.get("format"):
            from .format import render

            sys.stdout.write(render(p.opts["format"], template_view(ev)) + "\n")
        else:
            sys.stdout.write(default_line(ev) + "\n")
        sys.stdout.flush()

    try:
        f = open(root.events, "rb")
    except FileNotFoundError:
        f = None
    if since is None and until is None and f is not None:
        f.seek(0, 2)  # like docker: only new events unless --since
    pending = b""
    while True:
        chunk = f.read() if f is not None else b""
        if chunk:
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            for line in lines:
                if since is not None and _stamp(line) < since:
                    continue  # the log only grows: skip the past without parsing it
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if well_formed(ev) and keep(ev):
                    show(ev)
        if until is not None and time.time() >= until:
            return 0
        if f is None and os.path.exists(root.events):
            f = open(root.events, "rb")
        time.sleep(0.2)
