"""Shared helpers of the security suite: docker's documentation addresses,
the test image, raw engine calls that hand the engine a descriptor or an
environment of the check's choosing, and small static C probes.

busybox has no syscall tools, so the seccomp and keyring checks compile tiny
static C programs with the host's gcc (skipped, with the reason, where there
is none) and bind-mount them into the container read-only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.engine import CommandResult

DOCS = "https://docs.docker.com"
SECURITY = f"{DOCS}/engine/security/"
SECCOMP = f"{DOCS}/engine/security/seccomp/"
RUN = f"{DOCS}/reference/cli/docker/container/run/"
#: The run reference's runtime privilege section (capabilities, --privileged, devices).
PRIVILEGE = f"{DOCS}/engine/containers/run/#runtime-privilege-and-linux-capabilities"
SECURITY_OPT = f"{RUN}#security-opt"

CP = f"{DOCS}/reference/cli/docker/container/cp/"
EXEC = f"{DOCS}/reference/cli/docker/container/exec/"
START = f"{DOCS}/reference/cli/docker/container/start/"
ENV = f"{RUN}#env"
USER = f"{DOCS}/engine/containers/run/#user"
CVE_2019_14271 = "https://nvd.nist.gov/vuln/detail/CVE-2019-14271"
CVE_2018_15664 = "https://nvd.nist.gov/vuln/detail/CVE-2018-15664"

#: moby oci/caps/defaults.go, the 14 capabilities docker documents as kept by default.
DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")
CAP_BITS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
            "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18,
            "SYS_PTRACE": 19, "SYS_ADMIN": 21, "SYS_TIME": 25, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31}
#: Where the probes are mounted in a container.
PROBES = "/cft-probes"


def cap_mask(names) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAP_BITS[name]
    return mask


def proc_status(text: str) -> dict[str, str]:
    """``/proc/PID/status`` as a dict of its fields."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


@pytest.fixture
def image(test_image) -> str:
    """The plain busybox test image."""
    return test_image.base


def raw_cli(engine, *args: str, pass_fds: tuple[int, ...] = (), env: dict | None = None,
            timeout: float = 120.0) -> CommandResult:
    """An engine call like ``engine.cli`` but with descriptors handed to the engine
    process (``pass_fds``) and extra environment variables: ``engine.cli`` closes
    every descriptor and passes the harness's own environment."""
    import time

    argv = (*engine.profile.command, *args)
    full_env = {**os.environ, **engine.profile.env, **(env or {})}
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", env=full_env, timeout=timeout,
                          pass_fds=pass_fds, close_fds=True, cwd=engine.workdir)
    return CommandResult(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


# -- static C probes -----------------------------------------------------------------

SYSPROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* sysprobe NAME [ARG]: make one syscall with harmless arguments and print
   "NAME RESULT ERRNO" (ERRNO 0 when it succeeded). */
int main(int argc, char **argv) {
    const char *n = argc > 1 ? argv[1] : "";
    long r = -1;
    struct timespec ts;
    errno = 0;
    if (!strcmp(n, "keyctl")) r = syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 0);
    else if (!strcmp(n, "add_key")) r = syscall(SYS_add_key, "user", "cft-probe", "x", 1, -3);
    else if (!strcmp(n, "keysearch")) r = syscall(SYS_keyctl, 10 /* SEARCH */, -3, "user", argc > 2 ? argv[2] : "", 0);
    else if (!strcmp(n, "perf_event_open")) r = syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    else if (!strcmp(n, "kexec_load")) r = syscall(SYS_kexec_load, 0, 0, NULL, 0);
    else if (!strcmp(n, "open_by_handle_at")) r = syscall(SYS_open_by_handle_at, -1, NULL, 0);
    else if (!strcmp(n, "bpf")) r = syscall(SYS_bpf, 0 /* MAP_CREATE */, NULL, 0);
    else if (!strcmp(n, "clock_settime")) {
        clock_gettime(CLOCK_REALTIME, &ts);
        r = syscall(SYS_clock_settime, CLOCK_REALTIME, &ts);
    }
    else if (!strcmp(n, "unshare_user")) r = syscall(SYS_unshare, CLONE_NEWUSER);
    else { fprintf(stderr, "unknown probe %s\n", n); return 2; }
    printf("%s %ld %d\n", n, r, r == -1 ? errno : 0);
    return 0;
}
"""

#: A name-service module whose loading is the attack: its constructor leaves a
#: marker on the host (after breaking out of a chroot, as the CVE-2019-14271
#: exploit did), one in the root it was loaded under, and a line on stderr.
NSS_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void mark(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) { write(fd, "loaded\n", 7); close(fd); }
}

__attribute__((constructor)) static void loaded(void) {
    write(2, "CFT-NSS-LOADED\n", 15);
    mark("/cft-nss-loaded");
    mkdir("/.cft-nss-escape", 0700);
    if (chroot("/.cft-nss-escape") == 0) {
        for (int i = 0; i < 64; i++) chdir("..");
        chroot(".");
    }
    mark(HOST_MARKER);
}
"""


def _gcc(tmp: Path, source: str, output: str, *flags: str) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("the security probes need gcc (and libc6-dev for -static) on the test host")
    src = tmp / (output + ".c")
    src.write_text(source)
    out = tmp / output
    result = subprocess.run([gcc, *flags, "-o", str(out), str(src)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.skip(f"cannot build the probe {output} with gcc: {result.stderr.strip()[-300:]}")
    return out


@pytest.fixture
def probes(tmp_path) -> Path:
    """A directory holding the static ``sysprobe``; mount it with ``-v DIR:PROBES:ro``."""
    directory = tmp_path / "probes"
    directory.mkdir()
    _gcc(directory, SYSPROBE_C, "sysprobe", "-static", "-Os")
    return directory


def nss_module(directory: Path, host_marker: Path) -> Path:
    """Build ``libnss_cft.so.2`` into ``directory``; loading it writes ``host_marker``."""
    return _gcc(directory, NSS_C, "libnss_cft.so.2", "-shared", "-fPIC", "-O1",
                f'-DHOST_MARKER="{host_marker}"')


def probe_results(output: str) -> dict[str, tuple[int, int]]:
    """sysprobe lines as {name: (result, errno)}."""
    out = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = (int(parts[1]), int(parts[2]))
    return out
