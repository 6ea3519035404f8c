"""The pure parts of refengine's networking: address management, ``-p``
parsing, the container's networks, /etc/hosts and the DNS records."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_runtime.net import ipam, ports
from reference_runtime.net.endpoints import dns_records, hosts_text, networks_of


def test_choose_subnet_skips_routes_and_other_networks():
    taken = [ipaddress.ip_network("172.17.0.0/16"), ipaddress.ip_network("172.18.5.0/24")]
    assert str(ipam.choose_subnet(taken)) == "172.19.0.0/16"


def test_no_pool_left_is_one_line():
    with pytest.raises(ipam.IPAMError) as exc:
        ipam.choose_subnet([ipaddress.ip_network("0.0.0.0/0")])
    assert "\n" not in str(exc.value)


def test_a_full_subnet_refuses_the_next_address():
    net = ipaddress.ip_network("10.9.9.0/30")  # .1 gateway, .2 the only host left
    assert ipam.allocate(net, "10.9.9.1", []) == "10.9.9.2"
    with pytest.raises(ipam.IPAMError, match="no available IPv4 addresses"):
        ipam.allocate(net, "10.9.9.1", ["10.9.9.2"])


@pytest.mark.parametrize("wanted", ["10.9.9.0", "10.9.9.255", "10.9.8.7", "not-an-ip", "10.9.9.1"])
def test_ip_outside_or_taken_is_refused(wanted):
    with pytest.raises(ipam.IPAMError):
        ipam.allocate(ipaddress.ip_network("10.9.9.0/24"), "10.9.9.1", [], wanted)


@pytest.mark.parametrize("text", ["10.0.0.0/33", "10.0.0.0/31", "fd00::/64", "10.0.0.1/24", "nope", "",
                                  # not unicast, or the host's own: a bridge there breaks the host or the start
                                  "224.0.0.0/24", "255.255.255.0/24", "240.0.0.0/4", "0.0.0.0/0", "0.0.0.0/8",
                                  "127.5.0.0/16", "169.254.0.0/24"])
def test_bad_subnets_are_refused(text):
    with pytest.raises(ipam.IPAMError):
        ipam.parse_subnet(text)


@given(st.integers(min_value=20, max_value=30), st.sets(st.integers(min_value=2, max_value=12), max_size=8),
       st.integers(min_value=1, max_value=6))
def test_allocations_are_unique_inside_and_never_the_gateway(prefix, taken_hosts, count):
    net = ipaddress.ip_network(f"10.20.0.0/{prefix}")
    gateway = ipam.gateway_of(net)
    used = [str(net.network_address + h) for h in taken_hosts if net.network_address + h < net.broadcast_address]
    for _ in range(min(count, net.num_addresses - 2 - 1 - len(used))):
        ip = ipam.allocate(net, gateway, used)
        assert ip not in used and ip != gateway and ipaddress.ip_address(ip) in net
        assert ip not in (str(net.network_address), str(net.broadcast_address))
        used.append(ip)


@pytest.mark.parametrize("spec", ["", "1:2:3:4", "70000:80", "80:0", "a:80", "1.2.3:80:80", "80/icmp",
                                  "8000-7000:80", "8000-8002:80-81", "[::1]:80:80", "-1:80",
                                  # Go's strconv takes ASCII digits only, and "8080-" is no range
                                  "18080-", "8080-:80", "\u0668\u0660", "8080:\u0668\u0660", "\uff18\uff10"])
def test_bad_publish_specs_are_refused(spec):
    with pytest.raises(ports.PortSpecError) as exc:
        ports.parse_publish(spec)
    assert "\n" not in str(exc.value)


def test_publish_all_keeps_explicit_bindings():
    got = ports.bindings(["127.0.0.1:9000:80"], True, ["80/tcp", "53/udp"])
    assert got == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}], "53/udp": [{"HostIp": "", "HostPort": ""}]}


def _config(mode: str, extra: dict | None = None) -> dict:
    return {"Id": "c" * 64, "HostConfig": {"NetworkMode": mode},
            "NetworkingConfig": {"EndpointsConfig": extra or {}}}


def test_networks_of_puts_the_network_mode_first():
    config = _config("web", {"db": {"Aliases": ["x"]}, "web": {"IPAMConfig": {"IPv4Address": "10.0.0.9"}}})
    assert networks_of(config) == [("web", {"IPAMConfig": {"IPv4Address": "10.0.0.9"}}), ("db", {"Aliases": ["x"]})]
    assert networks_of(_config("default"))[0][0] == "bridge"
    assert networks_of(_config("none")) == networks_of(_config("host")) == networks_of(_config("container:x")) == []


def test_hosts_text_keeps_the_loopback_block_and_orders_links_first():
    text = hosts_text("web", ["10.0.0.2", "10.1.0.2"], [("10.0.0.3", ["db"])])
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert text.splitlines()[-3:] == ["10.0.0.3\tdb", "10.0.0.2\tweb", "10.1.0.2\tweb"]


def test_dns_records_list_names_aliases_short_ids_and_dns_clients():
    net = {"Internal": True, "IPAM": {"Config": [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]}}
    eps = {"a" * 64: {"Name": "Web", "IPv4Address": "10.0.0.2/24", "Aliases": ["pool"], "Dns": ["10.0.5.5"]},
           "b" * 64: {"Name": "db", "IPv4Address": "10.0.0.3/24", "Aliases": ["pool"], "Dns": []}}
    records = dns_records(net, eps)
    assert records["internal"] is True and records["subnets"] == ["10.0.0.0/24"]
    assert records["names"]["web"] == ["10.0.0.2"] and records["names"]["a" * 12] == ["10.0.0.2"]
    assert sorted(records["names"]["pool"]) == ["10.0.0.2", "10.0.0.3"]
    assert records["clients"] == {"10.0.0.2": ["10.0.5.5"]}


@pytest.mark.parametrize("spec", ["7000-", "\u0668\u0660", "-7000"])
def test_bad_expose_specs_are_refused(spec):
    with pytest.raises(ports.PortSpecError):
        ports.parse_expose(spec)


def test_a_network_whose_files_cannot_be_written_leaves_no_directory(tmp_path, monkeypatch):
    # A full disk: a directory without network.json is skipped by every listing, so neither
    # ``network prune`` nor ``rm`` would ever remove it.
    import errno

    from reference_runtime.engine import jsonio
    from reference_runtime.net.netstore import NetworkStore

    real = jsonio.write_atomic

    def full(path, obj):
        if path.endswith("network.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, obj)

    monkeypatch.setattr(jsonio, "write_atomic", full)
    store = NetworkStore(str(tmp_path))
    store.lock()  # makes the networks directory
    with pytest.raises(OSError):
        store._write_new("n1", ipaddress.ip_network("10.9.0.0/24"), "10.9.0.1", False, {}, {})
    assert store.ids() == [], f"left behind: {store.ids()}"
