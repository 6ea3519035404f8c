"""ctypes wrappers for the syscalls Python 3.11 lacks: clone with namespace
flags, unshare, setns, mount, umount2, pivot_root, capset, prctl.

Each wrapper raises ``OSError`` with the errno, like the ``os`` module.
Nothing here knows about containers.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_SIGCHLD = 17  # the exit signal a raw clone must ask for to be wait()able

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

_SYS = {
    "x86_64": {"clone": 56, "pivot_root": 155, "setns": 308, "capset": 126},
    "aarch64": {"clone": 220, "pivot_root": 41, "setns": 268, "capset": 91},
}[os.uname().machine]


def _check(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def clone(flags: int) -> int:
    """fork() with namespace flags: 0 in the child, the child's pid in the parent.

    A raw clone (no new stack) returns twice like fork; with CLONE_NEWPID the
    child is PID 1 of a new namespace while its parent stays the caller, so
    the caller can reap it and a parent-death signal refers to the caller.
    The child must only make syscalls and exec (no threads, no glibc pid cache).
    """
    return _check(_libc.syscall(_SYS["clone"], flags | _SIGCHLD, 0, 0, 0, 0), "clone")


CLONE_INTO_CGROUP = 0x200000000


class _CloneArgs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal",
                                                     "stack", "stack_size", "tls", "set_tid", "set_tid_size",
                                                     "cgroup")]


def clone_into_cgroup(flags: int, cgroup_fd: int) -> int:
    """:func:`clone` whose child starts inside the cgroup v2 directory ``cgroup_fd``
    (clone3 CLONE_INTO_CGROUP, Linux 5.7): no migration of a running task."""
    args = _CloneArgs()
    args.flags = flags | CLONE_INTO_CGROUP
    args.exit_signal = _SIGCHLD
    args.cgroup = cgroup_fd
    return _check(_libc.syscall(435, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args))), "clone3")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS["pivot_root"], new_root.encode(), put_old.encode()), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)), "prctl")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's capability sets (64-bit masks)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(_SYS["capset"], ctypes.byref(header), data), "capset")


def set_process_name(name: str) -> None:
    prctl(PR_SET_NAME, ctypes.cast(ctypes.c_char_p(name.encode()[:15]), ctypes.c_void_p).value or 0)


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, len(data)), "sethostname")
