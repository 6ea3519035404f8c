"""The container's root filesystem, built inside its new mount namespace in
the order the kernel sees it: private propagation, the overlay (image layers
below, the container layer above), /proc, read-only /sys, a minimal /dev
(pts, shm, mqueue), /etc/hostname|hosts|resolv.conf, volumes and bind mounts
(``:ro`` by a read-only remount), masked /proc paths, pivot_root.

Every mount lives only in the container's mount namespace: when its last
process dies the kernel drops them, so nothing is left on the host to clean.
Mount targets are resolved inside the rootfs (:func:`secure_join`), so an
image's symlinks cannot point a mount at the host.
"""

from __future__ import annotations

import os
import stat

from ..scopedpath import secure_join
from . import syscalls as sc
from .flags import tmpfs_mount_options

_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
_MASKED = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
           "/proc/acpi", "/proc/scsi", "/sys/firmware")
_READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def _ensure_target(path: str, directory: bool) -> None:
    if os.path.lexists(path):
        return
    if directory:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


# Device access. CAP_MKNOD is in docker's default set, and docker keeps it
# harmless with the devices cgroup: mknod is allowed, opening any device but
# the standard few is not. Joining the v1 devices controller would cost a
# cgroup migration on every start, so every filesystem the container can write
# to is mounted nodev instead (same effect: mknod succeeds, open fails) and the
# standard devices are bind mounts of the host's nodes.


def mount_overlay(merged: str, lowers: list[str], upper: str, work: str) -> None:
    sc.mount("overlay", merged, "overlay", sc.MS_NODEV,
             f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}")


def setup_dev(rootfs: str) -> None:
    dev = secure_join(rootfs, "/dev")
    _ensure_target(dev, True)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_STRICTATIME, "mode=755,size=65536k")
    old = os.umask(0)
    try:
        for name, major, minor in _DEVICES:
            host = f"/dev/{name}"
            st = os.stat(host)
            if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(major, minor):
                raise OSError(f"{host} is not the character device {major}:{minor}")
            _ensure_target(f"{dev}/{name}", False)
            sc.mount(host, f"{dev}/{name}", None, sc.MS_BIND)
        for name, mode in (("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o755)):
            os.mkdir(f"{dev}/{name}", mode)
    finally:
        os.umask(old)
    sc.mount("devpts", f"{dev}/pts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    sc.mount("shm", f"{dev}/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=1777,size=65536k")
    try:
        sc.mount("mqueue", f"{dev}/mqueue", "mqueue", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    except OSError:
        pass  # no mqueue support: not worth failing a start
    for link, target in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore")):
        os.symlink(target, f"{dev}/{link}")


def bind(source: str, target: str, read_only: bool) -> None:
    sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
    # A writable directory gets nodev (see above); a single file cannot hold a new node.
    if read_only or os.path.isdir(target):
        flags = sc.MS_BIND | sc.MS_REMOUNT | sc.MS_NODEV | (sc.MS_RDONLY if read_only else 0)
        st = os.statvfs(target)
        # A locked flag of the source mount must be kept or the remount fails.
        for bit, mflag in ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV), (os.ST_NOEXEC, sc.MS_NOEXEC)):
            if st.f_flag & bit:
                flags |= mflag
        sc.mount(None, target, None, flags)


def build(plan) -> None:
    """Mount everything for ``plan`` (a :class:`plan.ContainerPlan`) and pivot into it. Runs in the container."""
    rootfs = plan.merged
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    mount_overlay(rootfs, plan.lowers, plan.upper, plan.work)
    proc = secure_join(rootfs, "/proc")
    _ensure_target(proc, True)
    sc.mount("proc", proc, "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    sysfs = secure_join(rootfs, "/sys")
    _ensure_target(sysfs, True)
    try:
        sc.mount("sysfs", sysfs, "sysfs", sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    except OSError:
        # Joining another container's net namespace: its sysfs is not ours to mount.
        sc.mount("/sys", sysfs, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, sysfs, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    setup_dev(rootfs)
    for name, source in plan.etc.items():
        target = secure_join(rootfs, "/etc/" + name)
        _ensure_target(target, False)
        bind(source, target, False)
    for m in plan.mounts:
        target = secure_join(rootfs, m["Destination"])
        if m["Type"] == "tmpfs":
            _ensure_target(target, True)
            flags, data = tmpfs_mount_options(m.get("Options", ""))
            sc.mount("tmpfs", target, "tmpfs", flags | sc.MS_NODEV, data)  # nodev always: see "Device access"
            continue
        if m["Type"] == "volume" and m.get("Fill", True):
            from . import volumes

            volumes.fill(plan.root, m["Name"], target)
        _ensure_target(target, os.path.isdir(m["Source"]))
        bind(m["Source"], target, not m["RW"])
    for path in _MASKED:
        target = rootfs + path
        if os.path.isdir(target):
            sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY)
        elif os.path.exists(target):
            sc.mount(f"{rootfs}/dev/null", target, None, sc.MS_BIND)
    for path in _READ_ONLY:
        target = rootfs + path
        if os.path.exists(target):
            sc.mount(target, target, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)
    from .state import trace

    trace("container: mounts done")
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
    if plan.read_only:
        sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
