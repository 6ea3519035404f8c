"""The second half of the run pipeline: a stored container config (see
:mod:`.spec`) becomes, at each start, the :class:`ContainerPlan` that
:func:`process.container_main` carries out in the new namespaces: clone
flags, overlay directories, mounts, environment, user, capabilities,
seccomp program. ``refengine run``'s supervisor and a build's RUN step
make their plans here, so both get every setting the runtime knows.
"""

from __future__ import annotations

import os

from ..errors import ContainerError
from . import seccomp
from . import syscalls as sc
from .etcfiles import ETC_FILES
from .process import capability_mask, capability_names
from .state import Root


class ContainerPlan:
    """What the container process needs at one start. Plain attributes; ``cgroup``,
    ``join_v2``, ``console_size`` and ``net_wait`` (the pipe on which the container
    waits until its interfaces are plugged) are filled by whoever clones the process."""

    __slots__ = ("clone_flags", "netns", "net", "uts", "hostname", "merged", "upper", "work", "lowers", "etc",
                 "mounts", "root", "cgroup", "join_v2", "env", "user", "workdir", "caps", "no_new_privs",
                 "seccomp", "argv", "init", "read_only", "tty", "console_size", "net_wait")

    def __init__(self, **fields):
        for key in self.__slots__:
            setattr(self, key, fields.pop(key, None))
        if fields:
            raise TypeError(f"unknown ContainerPlan fields: {sorted(fields)}")

    def as_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.__slots__}


def make(config: dict, directory: str, root_path: str, *, cgroup=None, netns: str | None = None) -> ContainerPlan:
    """The plan of the container ``config`` whose files (upper, work, merged, init,
    hostname, hosts, resolv.conf) are in ``directory``; ``root_path`` holds the volumes
    and the seccomp cache; ``netns`` the namespace to join for ``--network container:``."""
    host = config["HostConfig"]
    network = host["NetworkMode"]
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID
    if network != "host" and not network.startswith("container:"):
        flags |= sc.CLONE_NEWNET  # none, the default bridge or a user network
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
        bpf = seccomp.filter_for(root_path, host, capability_names(caps))
    except (seccomp.ProfileError, OSError) as exc:
        raise ContainerError(str(exc)) from None
    return ContainerPlan(
        clone_flags=flags, netns=netns, net="private" if flags & sc.CLONE_NEWNET else network,
        uts=True, hostname=cfg["Hostname"],
        merged=os.path.join(directory, "merged"), upper=os.path.join(directory, "upper"),
        work=os.path.join(directory, "work"), lowers=[os.path.join(directory, "init"), *config["Layers"]],
        etc={n: os.path.join(directory, n) for n in ETC_FILES},
        mounts=plan_mounts(config), root=root_path, cgroup=cgroup, join_v2=False,
        env=env, user=cfg["User"] or "0", workdir=cfg["WorkingDir"],
        caps=caps, no_new_privs=no_new_privs, seccomp=bpf,
        argv=[config["Path"], *config["Args"]], init=bool(host.get("Init")),
        read_only=bool(host.get("ReadonlyRootfs")), tty=bool(cfg.get("Tty")), console_size=None,
    )


def container_plan(root: Root, config: dict, cgroup) -> ContainerPlan:
    """The plan of a stored container at this start (the supervisor's entry)."""
    network = config["HostConfig"]["NetworkMode"]
    netns = None
    if network.startswith("container:"):
        netns = _joined_netns(root, network.split(":", 1)[1])
    return make(config, root.container_dir(config["Id"]), root.path, cgroup=cgroup, netns=netns)


def _joined_netns(root: Root, other: str) -> str:
    try:
        state = root.read_state(other)
    except ContainerError:
        raise ContainerError(f"cannot join network of a non running container: {other[:12]}") from None
    if not state["Running"] or not state["Pid"]:
        raise ContainerError(f"cannot join network of a non running container: {other[:12]}")
    return f"/proc/{state['Pid']}/ns/net"


def plan_mounts(config: dict) -> list[dict]:
    """Every mount of a start: the container's Mounts plus its ``--tmpfs`` ones, in
    docker's order (by depth of the destination, so /a is mounted before /a/b). Pure."""
    mounts = list(config["Mounts"])
    for path, options in (config["HostConfig"].get("Tmpfs") or {}).items():
        mounts.append({"Type": "tmpfs", "Source": "", "Destination": path, "RW": True, "Options": options})
    return sorted(mounts, key=lambda m: m["Destination"].rstrip("/").count("/"))
