"""The rules a container's environment and /etc files follow, in one place:
the default PATH, /etc/hostname, /etc/hosts and /etc/resolv.conf (docker's
daemon writes the three files per container and bind-mounts them; the
classic builder does the same for a RUN step's container).
"""

from __future__ import annotations

import os

#: docker's PATH for an image that sets none (moby oci.DefaultPathEnv).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_PATH_ENV = "PATH=" + DEFAULT_PATH

#: The files a container gets, in the order they are written.
ETC_FILES = ("hostname", "hosts", "resolv.conf")

HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
         "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
#: resolv.conf's nameservers when the host's are all on loopback (unreachable from the container).
FALLBACK_NAMESERVERS = ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]


def hosts(network: str, hostname: str, host_hosts: str = "") -> str:
    """/etc/hosts: the host's own with ``--network host``, else localhost entries and the
    container's name on 127.0.1.1 (default network), as docker writes them. Pure.

    >>> hosts("none", "abc") == HOSTS
    True
    >>> hosts("default", "abc").splitlines()[-1]
    '127.0.1.1\\tabc'
    """
    if network == "host":
        return host_hosts or HOSTS
    if network == "default":
        return HOSTS + f"127.0.1.1\t{hostname}\n"
    return HOSTS


def resolv_conf(network: str, host_resolv: str, dns: list[str] = (), resolver: str = "") -> str:
    """/etc/resolv.conf: the host's, without loopback nameservers unless the container
    shares the host's network; Google's when none is left (docker's rule). ``--dns``
    replaces the nameservers; on a user network the one nameserver is the network's
    embedded DNS server (``resolver``), which forwards to ``--dns`` or the host's. Pure.

    >>> resolv_conf("default", "nameserver 127.0.0.53\\nsearch lan\\n")
    'search lan\\nnameserver 8.8.8.8\\nnameserver 8.8.4.4\\n'
    >>> resolv_conf("web", "nameserver 10.0.0.1\\nsearch lan\\n", resolver="172.18.0.1")
    'search lan\\nnameserver 172.18.0.1\\noptions ndots:0\\n'
    """
    if network == "host" and not dns:
        return host_resolv
    others = [ln for ln in host_resolv.splitlines() if not ln.startswith("nameserver")]
    if resolver:
        return "\n".join([*others, f"nameserver {resolver}", "options ndots:0"]) + "\n"
    if dns:
        return "\n".join([*others, *(f"nameserver {ns}" for ns in dns)]) + "\n"
    lines = [ln for ln in host_resolv.splitlines()
             if not (ln.startswith("nameserver") and (" 127." in ln or " ::1" in ln))]
    if not any(ln.startswith("nameserver") for ln in lines):
        lines += FALLBACK_NAMESERVERS
    return "\n".join(lines) + "\n"


def write(directory: str, network: str, hostname: str, dns: list[str] = (), resolver: str = "") -> dict[str, str]:
    """Write the three files into ``directory`` (and their empty mount points under
    ``directory/init/etc``); returns name -> path, for the plan's bind mounts."""
    texts = {"hostname": hostname + "\n", "hosts": hosts(network, hostname, read_or_empty("/etc/hosts") if network == "host" else ""),
             "resolv.conf": resolv_conf(network, read_or_empty("/etc/resolv.conf"), dns, resolver)}
    paths = {}
    for name in ETC_FILES:
        open(os.path.join(directory, "init/etc", name), "w").close()
        paths[name] = os.path.join(directory, name)
        with open(paths[name], "w") as f:
            f.write(texts[name])
    return paths


def read_or_empty(path: str) -> str:
    """A small text file's content, '' when it cannot be read (the host's /etc files)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
