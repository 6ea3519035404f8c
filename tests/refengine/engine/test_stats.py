"""``refengine stats``' pure part: docker's figures and formats (no container needed)."""

from __future__ import annotations

import pytest

from reference_runtime.engine.stats import (Sample, bytes_size, cpu_percent, human_size_3, memory_usage,
                                            parse_net_dev, parse_system_cpu, row)

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0
  eth0:    1266      12    0    0    0     0          0         0      648       8    0    0    0     0       0          0
  eth1:     100       1    0    0    0     0          0         0       52       1    0    0    0     0       0          0
"""


@pytest.mark.parametrize("size,expected", [
    (0, "0B"), (1023, "1023B"), (1024, "1KiB"), (320 * 1024, "320KiB"), (64 << 20, "64MiB"),
    (2.746 * (1 << 20), "2.746MiB"), (1.045 * (1 << 30), "1.045GiB"), (23.54 * (1 << 30), "23.54GiB"),
])
def test_bytes_size_is_go_units_binary(size, expected):
    assert bytes_size(size) == expected


@pytest.mark.parametrize("size,expected", [
    (0, "0B"), (648, "648B"), (1266, "1.27kB"), (3_568_000, "3.57MB"), (27_700_000, "27.7MB"), (999, "999B"),
])
def test_human_size_3_is_go_units_decimal_with_precision_3(size, expected):
    assert human_size_3(size) == expected


def test_cpu_percent_scales_the_share_by_the_cpus():
    before = Sample(cpu_ns=1_000, system_ns=10_000, online_cpus=2)
    after = Sample(cpu_ns=3_000, system_ns=18_000, online_cpus=2)
    assert cpu_percent(before, after) == pytest.approx(2_000 / 8_000 * 2 * 100)


@pytest.mark.parametrize("before,after", [
    (Sample(cpu_ns=5, system_ns=5, online_cpus=2), Sample(cpu_ns=5, system_ns=9, online_cpus=2)),   # no CPU used
    (Sample(cpu_ns=5, system_ns=9, online_cpus=2), Sample(cpu_ns=7, system_ns=9, online_cpus=2)),   # no system delta
    (Sample(), Sample()),                                                                          # stopped
])
def test_cpu_percent_is_zero_without_deltas(before, after):
    assert cpu_percent(before, after) == 0.0


def test_memory_usage_subtracts_the_inactive_file_cache_as_docker_20_10():
    assert memory_usage(10_000, {"total_inactive_file": 4_000, "cache": 6_000}) == 6_000
    assert memory_usage(10_000, {"inactive_file": 1_000}) == 9_000        # cgroup v2's key
    assert memory_usage(10_000, {"total_inactive_file": 20_000}) == 10_000  # never below zero
    assert memory_usage(10_000, {}) == 10_000


def test_net_dev_sums_every_interface_but_lo():
    assert parse_net_dev(NET_DEV) == (1366, 700)


def test_system_cpu_sums_the_first_seven_fields_in_nanoseconds():
    text = "cpu  100 5 50 800 10 2 3 7 0 0\ncpu0 50 2 25 400 5 1 1 3 0 0\n"
    assert parse_system_cpu(text, 100) == (100 + 5 + 50 + 800 + 10 + 2 + 3) * 10_000_000


def test_row_has_docker_s_placeholders_and_formats():
    cid = "0123456789ab" + "c" * 52
    r = row("web", cid, "web", Sample(cpu_ns=0, system_ns=0, online_cpus=2),
            Sample(cpu_ns=10, system_ns=1000, online_cpus=2, memory=796 * 1024, limit=64 << 20, pids=3,
                   read=3_568_000, written=512_000, received=788, sent=648))
    assert r == {"Container": "web", "Name": "web", "ID": "0123456789ab", "CPUPerc": "2.00%",
                 "MemUsage": "796KiB / 64MiB", "MemPerc": "1.21%", "NetIO": "788B / 648B",
                 "BlockIO": "3.57MB / 512kB", "PIDs": "3"}
    assert row("web", cid, "web", Sample(), Sample(), trunc=False)["ID"] == cid


def test_a_stopped_container_shows_no_data():
    r = row("old", "f" * 64, "old", Sample(), Sample())
    assert (r["CPUPerc"], r["MemUsage"], r["MemPerc"], r["NetIO"], r["BlockIO"], r["PIDs"]) == \
        ("0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0")
