"""Everything a state root's networking holds in the kernel and in processes,
listed and removed: for ``network prune``'s repair, for a test that proves
nothing is left, and for tearing a throwaway root down (its default bridge,
like docker0, otherwise stays for the root's next container)."""

from __future__ import annotations

import os

from .netstore import NetworkStore, remove_orphans  # noqa: F401 - part of this module's interface


def leftovers(root_path: str) -> dict[str, list[str]]:
    """What of this root is alive in the kernel: bridges, veths plugged into them,
    packet-filter chains, DNS servers."""
    from . import dns, firewall, links

    store = NetworkStore(root_path)
    bridges = links.interfaces(f"rf{store.tag}")
    veths = sorted(v for b in bridges for v in _ports_of(b))
    servers = [nid for nid in store.ids()
               if dns.running(os.path.join(store.dir(nid), "dns.pid"), os.path.join(store.dir(nid), "dns.json"))]
    return {"bridges": bridges, "veths": veths, "chains": [store.tag] if firewall.present(store.tag) else [],
            "dns": servers}


def _ports_of(bridge: str) -> list[str]:
    """The interfaces enslaved to ``bridge``, by netlink (sysfs may show another namespace)."""
    from pyroute2 import IPRoute, NetlinkError

    try:
        with IPRoute() as ip:
            found = ip.link_lookup(ifname=bridge)
            if not found:
                return []
            return sorted(link.get_attr("IFLA_IFNAME") for link in ip.get_links()
                          if link.get_attr("IFLA_MASTER") == found[0])
    except (NetlinkError, OSError):
        return []


def remove_all(root_path: str) -> None:
    """Stop every DNS server, delete every bridge (their veths go with them) and every
    rule of this root; the network records stay (a later start makes them again)."""
    from . import dns, firewall, links

    from . import netd

    store = NetworkStore(root_path)
    netd.stop(root_path)
    with store.lock():
        for nid in store.ids():
            d = store.dir(nid)
            dns.stop(os.path.join(d, "dns.pid"), os.path.join(d, "dns.json"))
        for bridge in links.interfaces(f"rf{store.tag}"):
            links.delete_link(bridge)
        firewall.remove(store.tag)
        try:
            os.unlink(os.path.join(store.path, "firewall.applied"))
        except FileNotFoundError:
            pass

