"""The pure parts of conformance.cluster (names, addresses, mount order, rules)
and the ``--cluster`` options, driven through throwaway pytest runs. Starting
a real cluster is what ``pytest --cluster docker suites/swarm`` does."""

import ipaddress
from datetime import datetime, timedelta, timezone

import pytest

from conformance.cluster import (NETNS_PREFIX, bridge_name, forward_rule, mounts_under, netns_name, node_address,
                                 parse_time, replacement_violation, run_id_of, shape_problem, veth_name)


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


def _node(name, manager="", status="Ready", availability="Active"):
    return {"Hostname": name, "ManagerStatus": manager, "Status": status, "Availability": availability}


def test_the_started_shape_is_one_leader_and_ready_active_workers():
    started = [_node("n1", "Leader"), _node("n2"), _node("n3")]
    assert shape_problem(started, ["n1", "n2", "n3"], "n1") == ""
    assert "n2 is Reachable" in shape_problem([_node("n1", "Leader"), _node("n2", "Reachable"), _node("n3")],
                                              ["n1", "n2", "n3"], "n1")
    assert "Drain" in shape_problem([_node("n1", "Leader"), _node("n2", availability="Drain"), _node("n3")],
                                    ["n1", "n2", "n3"], "n1")
    assert "Down" in shape_problem([_node("n1", "Leader"), _node("n2", status="Down"), _node("n3")],
                                   ["n1", "n2", "n3"], "n1")
    # a stale entry of a node that left and joined again under a new ID
    assert "node ls lists" in shape_problem(started + [_node("n3", status="Down")], ["n1", "n2", "n3"], "n1")
    assert "node ls lists" in shape_problem(started[:2], ["n1", "n2", "n3"], "n1")


def test_api_times_keep_microseconds_and_the_zero_time_is_none():
    assert parse_time("2026-11-28T17:06:09.63517027Z") == datetime(2026, 11, 28, 17, 6, 9, 635170, timezone.utc)
    assert parse_time("2026-11-28T17:06:09Z") == datetime(2026, 11, 28, 17, 6, 9, tzinfo=timezone.utc)
    assert parse_time("2026-11-28T18:06:09.5+01:00") == datetime(2026, 11, 28, 17, 6, 9, 500000, timezone.utc)
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("yesterday") is None


def _at(seconds):
    return datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=seconds)


def test_replacements_that_keep_to_parallelism_and_delay_pass():
    # 2 workers, 2s delay: slots 1+2 at once, slots 3+4 two seconds after they ran
    paced = [(_at(0), _at(1)), (_at(0.1), _at(1.2)), (_at(3.2), _at(4)), (_at(3.3), _at(4.1))]
    assert replacement_violation(paced, 2, timedelta(seconds=2)) == ""
    # one worker, no delay: each slot stops once the previous one ran
    serial = [(_at(0), _at(1)), (_at(1), _at(2)), (_at(2), _at(3))]
    assert replacement_violation(serial, 1, timedelta(0)) == ""


def test_replacements_beyond_parallelism_or_inside_the_delay_are_named():
    at_once = [(_at(0), _at(1)), (_at(0), _at(1)), (_at(0), _at(1))]
    assert replacement_violation(at_once, 2, timedelta(0)).startswith("stop 3 of 3 at +0.000s: 0 new tasks ran")
    hurried = [(_at(0), _at(1)), (_at(1.5), _at(2.5))]
    assert "stop 2 of 2 at +1.500s" in replacement_violation(hurried, 1, timedelta(seconds=1))
    assert replacement_violation(hurried, 2, timedelta(seconds=1)) == ""
