"""Seccomp for containers: docker's default profile, ``--security-opt
seccomp=unconfined|PROFILE.json``, none with ``--privileged``.

A profile is docker's JSON format (moby profiles/seccomp): ``defaultAction``
(+ ``defaultErrnoRet``), ``archMap``, and ``syscalls`` rules with ``names``,
``action`` (+ ``errnoRet``), ``args`` (index, value, valueTwo, op) and
``includes``/``excludes`` on ``caps``, ``arches`` and ``minKernel``: a rule
counts only when the container's capabilities and the machine match.

It becomes a classic BPF program through libseccomp.so.2 (a thin ctypes
binding, :class:`_Libseccomp`: PyPI's pyseccomp is the same ctypes calls but
lives in site-packages, and refengine runs from a bare interpreter too),
once per (profile text, capability set, machine): the program is cached under
``ROOT/seccomp/<sha256>.bpf``, so a start costs a file read, and libseccomp is
loaded only by the process that compiles (never after pivot_root).
:func:`install` is a bare seccomp(2) in the container process.

The default profile is read at run time from the file containers-common
installs (podman's default, derived from docker's). It is looser than docker's
own default where podman relies on capabilities alone: it allows unshare,
mount, setns, keyctl... to every container. :data:`DOCKER_GATES` puts docker's
gating back (moby profiles/seccomp/default.json): those syscalls are allowed
only with the capability docker names, keyctl/add_key/request_key never, and a
refused syscall answers EPERM as with docker.
"""

from __future__ import annotations

import ctypes
import os

from . import jsonio

try:  # the builtin C module: hashlib would load OpenSSL, milliseconds of every start
    from _sha256 import sha256
except ImportError:  # Python 3.12+
    from _sha2 import sha256

DEFAULT_PROFILE = "/usr/share/containers/seccomp.json"
CACHE_VERSION = "2"

#: Syscalls docker's default profile allows only with a capability (moby
#: profiles/seccomp/default.json); every other rule naming them is dropped.
DOCKER_GATES: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
                      "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
                      "umount2", "unshare"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}
#: Not in docker's default profile at all: the kernel keyring is not namespaced.
DOCKER_DENIED = ("keyctl", "add_key", "request_key")
#: clone without CAP_SYS_ADMIN: only without namespace flags (CLONE_NEW*), as docker.
_CLONE_NS_FLAGS = 0x7E020000
_EPERM, _ENOSYS = 1, 38

_GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_SCMP_ARCH = {"SCMP_ARCH_X86": "X86", "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X32": "X32",
              "SCMP_ARCH_ARM": "ARM", "SCMP_ARCH_AARCH64": "AARCH64"}
_NATIVE_SCMP = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
        "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}


class ProfileError(ValueError):
    """A seccomp profile that cannot be applied; the message says why."""


# -- which profile ------------------------------------------------------------------


def security_opts(values: list[str]) -> tuple[str | None, bool]:
    """``--security-opt`` values as (seccomp setting, no_new_privileges). Pure.

    The seccomp setting is None (the default profile), ``"unconfined"``, or the
    JSON text of a profile (docker's client sends the file's content).

    >>> security_opts(["seccomp=unconfined", "no-new-privileges"])
    ('unconfined', True)
    """
    seccomp: str | None = None
    nnp = False
    for value in values:
        key, sep, arg = value.partition("=")
        if not sep:
            key, sep, arg = value.partition(":")
        if key == "no-new-privileges":
            if arg not in ("", "true", "false"):
                raise ProfileError(f'invalid --security-opt 2: "{value}"')
            nnp = arg != "false"
        elif key == "seccomp" and sep:
            seccomp = arg
        elif key in ("apparmor", "label") and sep:
            continue  # no LSM here: accepted and ignored, as docker does on a host without one
        else:
            raise ProfileError(f'Invalid --security-opt: "{value}"')
    return seccomp, nnp


def profile_text(host_config: dict) -> str | None:
    """The profile a container runs under, as JSON text; None when unconfined."""
    if host_config.get("Privileged"):
        return None
    setting, _ = security_opts(host_config.get("SecurityOpt") or [])
    if setting == "unconfined":
        return None
    if setting is not None:
        return setting
    try:
        with open(DEFAULT_PROFILE) as f:
            return f.read()
    except OSError as exc:
        raise ProfileError(f"docker's default seccomp profile needs {DEFAULT_PROFILE} (containers-common): "
                           f"{exc.strerror}; or run with --security-opt seccomp=unconfined") from None


def dockerize(profile: dict) -> dict:
    """containers-common's default profile with docker's gating (:data:`DOCKER_GATES`). Pure."""
    gated = {name for names in DOCKER_GATES.values() for name in names} | set(DOCKER_DENIED)
    rules = []
    for rule in profile.get("syscalls") or []:
        names = [n for n in rule.get("names") or [] if n not in gated]
        if names:
            rules.append({**rule, "names": names})
    for cap, names in DOCKER_GATES.items():
        rules.append({"names": list(names), "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
    rules.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": _CLONE_NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    # glibc falls back to clone(2) on ENOSYS, where the flags can be checked.
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": _ENOSYS,
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    return {**profile, "defaultErrnoRet": _EPERM, "syscalls": rules}


# -- rules that apply ----------------------------------------------------------------


def _kernel_at_least(release: str, minimum: str) -> bool:
    def version(text: str) -> tuple[int, ...]:
        parts = []
        for piece in text.split("-")[0].split(".")[:3]:
            digits = "".join(c for c in piece if c.isdigit())
            parts.append(int(digits or 0))
        return tuple(parts)

    return version(release) >= version(minimum)


def rule_applies(rule: dict, caps: set[str], machine: str, kernel: str) -> bool:
    """docker's includes/excludes: every included cap present, the native arch listed,
    the kernel new enough; no excluded cap present, the arch not excluded. Pure.

    >>> rule_applies({"includes": {"caps": ["CAP_SYS_ADMIN"]}}, {"CAP_CHOWN"}, "x86_64", "6.1.0")
    False
    """
    arch = _GOARCH.get(machine, machine)
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if inc.get("minKernel") and not _kernel_at_least(kernel, inc["minKernel"]):
        return False
    if exc.get("caps") and set(exc["caps"]) & caps:
        return False
    if exc.get("arches") and arch in exc["arches"]:
        return False
    return True


def _action(name: str, errno_ret: int | None) -> int:
    """A profile's action as libseccomp's SCMP_ACT_* value (seccomp.h). Pure."""
    errno_ret = _EPERM if errno_ret is None else errno_ret
    actions = {"SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_ERRNO": 0x00050000 | (errno_ret & 0xFFFF),
               "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
               "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_TRACE": 0x7FF00000 | (errno_ret & 0xFFFF),
               "SCMP_ACT_LOG": 0x7FFC0000}
    if name not in actions:
        raise ProfileError(f"unsupported seccomp action {name!r}")
    return actions[name]


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _Libseccomp:
    """The few libseccomp calls a compile needs: one filter context, released on close."""

    #: AUDIT_ARCH_* values of the architectures a profile's archMap may add (linux/audit.h).
    ARCHES = {"X86": 0x40000003, "X86_64": 0xC000003E, "X32": 0x4000003E, "ARM": 0x40000028,
              "AARCH64": 0xC00000B7}
    NATIVE = 0
    _ATTR_OPTIMIZE = 8  # SCMP_FLTATR_CTL_OPTIMIZE

    def __init__(self, default_action: int):
        try:
            lib = ctypes.CDLL("libseccomp.so.2")
        except OSError as exc:
            raise ProfileError(f"seccomp needs libseccomp.so.2: {exc}") from None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                               ctypes.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        self._lib = lib
        self._ctx = lib.seccomp_init(default_action)
        if not self._ctx:
            raise ProfileError("seccomp_init failed")
        # A binary tree of syscall numbers instead of a linear scan: every syscall of the
        # container runs through this program (libseccomp >= 2.5; older ones keep the scan).
        lib.seccomp_attr_set(self._ctx, self._ATTR_OPTIMIZE, 2)

    def close(self) -> None:
        if self._ctx:
            self._lib.seccomp_release(self._ctx)
            self._ctx = None

    def add_arch(self, name: str) -> None:
        self._lib.seccomp_arch_add(self._ctx, self.ARCHES[name])  # -EEXIST when native: fine

    def resolve(self, name: str) -> int:
        """The syscall's number (a negative pseudo number for another arch's), or -1 if unknown."""
        return self._lib.seccomp_syscall_resolve_name_arch(self.NATIVE, name.encode())

    def add_rule(self, action: int, number: int, args: list[tuple[int, int, int, int]]) -> int:
        """0, or the negative errno of libseccomp's refusal."""
        array = (_ArgCmp * max(len(args), 1))(*[_ArgCmp(*a) for a in args])
        return self._lib.seccomp_rule_add_array(self._ctx, action, number, len(args), array)

    def export_bpf(self, fd: int) -> None:
        rc = self._lib.seccomp_export_bpf(self._ctx, fd)
        if rc < 0:
            raise ProfileError(f"seccomp_export_bpf: {os.strerror(-rc)}")


def compile_bpf(profile: dict, caps: set[str], machine: str | None = None, kernel: str | None = None) -> bytes:
    """The BPF program of ``profile`` for a container with capabilities ``caps`` (``CAP_*`` names)."""
    machine = machine or os.uname().machine
    kernel = kernel or os.uname().release
    if "defaultAction" not in profile:
        raise ProfileError("Decoding seccomp profile failed: no defaultAction")
    default = _action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    filt = _Libseccomp(default)
    try:
        native = _NATIVE_SCMP.get(machine)
        for entry in profile.get("archMap") or []:
            if entry.get("architecture") == native:
                for sub in entry.get("subArchitectures") or []:
                    if sub in _SCMP_ARCH:
                        filt.add_arch(_SCMP_ARCH[sub])
        for rule in profile.get("syscalls") or []:
            if not rule_applies(rule, caps, machine, kernel):
                continue
            action = _action(rule.get("action", ""), rule.get("errnoRet"))
            if action == default:
                continue  # libseccomp refuses a rule that repeats the default
            args = [(a["index"], _OPS[a["op"]], a.get("value", 0), a.get("valueTwo", 0))
                    for a in rule.get("args") or []]
            for name in rule.get("names") or []:
                number = filt.resolve(name)
                if number == -1:  # unknown to this libseccomp: docker skips it too
                    continue
                if filt.add_rule(action, number, args) < 0:
                    # Two conditions on one argument: libseccomp wants one rule per condition (as runc).
                    for arg in args:
                        filt.add_rule(action, number, [arg])
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            filt.export_bpf(fd)
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        finally:
            os.close(fd)
    finally:
        filt.close()
    return b"".join(chunks)


def filter_for(root_path: str, host_config: dict, caps: set[str]) -> bytes | None:
    """The BPF program for a container with capabilities ``caps`` (``CAP_*``
    names), None when unconfined; from the cache when it can."""
    text = profile_text(host_config)
    if text is None:
        return None
    is_default = not (host_config.get("SecurityOpt") and security_opts(host_config["SecurityOpt"])[0])
    uname = os.uname()
    key = sha256("\0".join((CACHE_VERSION, "docker" if is_default else "custom", text, ",".join(sorted(caps)),
                                    uname.machine, uname.release)).encode()).hexdigest()
    path = os.path.join(root_path, "seccomp", key + ".bpf")
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        pass
    try:
        profile = jsonio.loads(text)
    except ValueError as exc:
        raise ProfileError(f"Decoding seccomp profile failed: {exc}") from None
    if is_default:
        profile = dockerize(profile)
    bpf = compile_bpf(profile, caps, uname.machine, uname.release)
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(bpf)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only root only loses the cache
    return bpf


# -- install ------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_SECCOMP = {"x86_64": 317, "aarch64": 277}[os.uname().machine]
_SECCOMP_SET_MODE_FILTER = 1


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(bpf: bytes) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER) of ``bpf`` on the calling thread; needs
    no_new_privs or CAP_SYS_ADMIN. From here on every syscall goes through it."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.addressof(buf))
    if _libc.syscall(_SECCOMP, _SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(prog)) == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {os.strerror(err)}")
