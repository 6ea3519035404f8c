"""The pure parts of conformance.cluster (names, addresses, mount order, rules)
and the ``--cluster`` options, driven through throwaway pytest runs. Starting
a real cluster is what ``pytest --cluster docker suites/swarm`` does."""

import ipaddress

import pytest

from conformance.cluster import (NETNS_PREFIX, bridge_name, forward_rule, mounts_under, netns_name, node_address,
                                 run_id_of, veth_name)


def test_names_of_one_cluster_lead_back_to_its_run_id():
    rid = "0a1b2c"
    names = [netns_name(rid, 1), netns_name(rid, 12), bridge_name(rid), veth_name(rid, 3)]
    assert [run_id_of(n) for n in names] == [rid] * 4
    assert all(len(n) <= 15 for n in names[2:]), "interface names have at most 15 characters"
    assert netns_name(rid, 1).startswith(NETNS_PREFIX)


@pytest.mark.parametrize("name", ["eth0", "docker0", "cftswxyz", "cft-sw1-0a1b2c3", "cftsw0a1b2cX",
                                  "netns-2779be2f", "cft-sw-0a1b2c", "cftsw0a1b2cn"])
def test_foreign_names_are_never_swept(name):
    assert run_id_of(name) is None


def test_node_addresses_are_distinct_and_inside_the_subnet():
    subnet = ipaddress.ip_network("10.217.7.0/24")
    addresses = [node_address(subnet, i) for i in range(1, 10)]
    assert len({a.ip for a in addresses}) == 9
    assert all(a.network == subnet and a.ip not in (subnet.network_address, subnet.broadcast_address)
               for a in addresses)


def test_mounts_under_a_root_come_deepest_first_and_others_are_left_alone():
    info = "\n".join([
        "22 1 8:1 / / rw - ext4 /dev/vda rw",
        "30 22 8:1 /x /var/lib/cft-sw/ab12cd/n1/data/overlay2 rw - ext4 /dev/vda rw",
        "31 30 0:44 / /var/lib/cft-sw/ab12cd/n1/data/overlay2/l1/merged rw - overlay overlay rw",
        "32 22 0:4 net:[4026532] /var/lib/cft-sw/ab12cd/n1/exec/netns/1-abc rw - nsfs nsfs rw",
        "33 22 0:45 / /var/lib/cft-sw/ab12cdef rw - tmpfs tmpfs rw",
        "34 22 0:46 / /var/lib/cft-sw/other\\040dir rw - tmpfs tmpfs rw",
    ])
    assert mounts_under(info, "/var/lib/cft-sw/ab12cd/") == [
        "/var/lib/cft-sw/ab12cd/n1/data/overlay2/l1/merged",
        "/var/lib/cft-sw/ab12cd/n1/exec/netns/1-abc",
        "/var/lib/cft-sw/ab12cd/n1/data/overlay2",
    ]
    assert mounts_under(info, "/var/lib/cft-sw/other dir") == ["/var/lib/cft-sw/other dir"]


def test_the_forward_rule_names_only_the_underlay_bridge():
    assert forward_rule("cftsw0a1b2c") == ["FORWARD", "-i", "cftsw0a1b2c", "-o", "cftsw0a1b2c", "-j", "ACCEPT"]


CHECKS = """
import pytest

@pytest.mark.spec("https://docs.docker.com/engine/reference/commandline/swarm_init/", "init")
def test_needs_a_cluster(cluster):
    raise AssertionError("must not run")

def test_plain():
    pass
"""


def test_cluster_checks_are_skipped_without_the_option(pytester):
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--report-dir", str(pytester.path / "r"))
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs a cluster: --cluster docker*"])


def test_an_unknown_cluster_kind_is_a_usage_error(pytester):
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest("--cluster", "kubernetes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cluster*invalid choice*kubernetes*"])
