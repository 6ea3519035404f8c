"""``stats``: the documented columns and placeholders, memory figures that
agree with ``--memory`` and with what the container holds, CPU and PIDs of
a running container, stopped and missing containers, the live stream."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import STATS, Streaming, name_of, split_columns

HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
#: The placeholders the reference lists for --format.
PLACEHOLDERS = {"Container", "Name", "ID", "CPUPerc", "MemUsage", "NetIO", "BlockIO", "MemPerc", "PIDs"}
SLEEPER = ["sleep", "300"]
MIB = 1 << 20

_UNITS = {"B": 1, "kB": 1000, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3, "TB": 1000 ** 4,
          "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def size(text: str) -> float:
    """``64MiB``, ``67.11MB``, ``0B`` in bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", text)
    assert m and m.group(2) in _UNITS, f"not a size: {text!r}"
    return float(m.group(1)) * _UNITS[m.group(2)]


def running(engine, image, *flags: str, command: list[str] = SLEEPER) -> str:
    result = engine.run(["-d", *flags, image, *command])
    assert result.ok, str(result)
    name = name_of(result)
    engine.wait_running(name)
    return name


def stats_json(engine, *refs: str) -> list[dict]:
    result = engine.cli("stats", "--no-stream", "--format", "{{json .}}", *refs, timeout=60)
    assert result.ok, f"{engine.name}: stats --no-stream exited {result.returncode}\n{result}"
    rows = []
    for line in result.stdout.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{engine.name}: stats --format '{{{{json .}}}}' printed {line!r}, not JSON") from None
    return rows


#: The placeholders a check reads, through a Go template: a check about one
#: figure does not depend on the JSON's shape (that is a check of its own).
FIGURES = ("Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")


def stats_row(engine, ref: str) -> dict:
    """One container's figures, by the documented placeholders."""
    template = "|".join("{{.%s}}" % key for key in FIGURES)
    result = engine.cli("stats", "--no-stream", "--format", template, ref, timeout=60)
    assert result.ok, f"{engine.name}: stats --no-stream exited {result.returncode}\n{result}"
    lines = result.stdout.splitlines()
    assert len(lines) == 1, f"{engine.name}: stats --no-stream {ref} printed {len(lines)} lines\n{result}"
    return dict(zip(FIGURES, lines[0].split("|")))


def memory(engine, name: str) -> tuple[float, float, str]:
    """(usage, limit, the MemUsage text) of one container."""
    text = stats_row(engine, name)["MemUsage"]
    usage, sep, limit = text.partition(" / ")
    assert sep, f"{engine.name}: MemUsage {text!r} is not 'USAGE / LIMIT'"
    return size(usage), size(limit), text


@pytest.mark.spec(STATS, "docker stats --no-stream prints one table and ends: CONTAINER ID, NAME, CPU %, "
                         "MEM USAGE / LIMIT, MEM %, NET I/O, BLOCK I/O, PIDS; a row per container named")
def test_no_stream_prints_the_documented_columns(engine, image):
    name = running(engine, image)
    cid = engine.inspect(name)["Id"]
    result = engine.cli("stats", "--no-stream", name, timeout=60)
    assert result.ok, str(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 2, f"{engine.name}: stats --no-stream of one container printed {len(lines)} lines\n{result}"
    assert split_columns(lines[0]) == HEADER, \
        f"{engine.name}: stats' header is {split_columns(lines[0])}; docker documents {HEADER}"
    row = split_columns(lines[1])
    assert row[:2] == [cid[:12], name], f"{engine.name}: the row starts {row[:2]}; docker shows [{cid[:12]!r}, {name!r}]"
    assert len(row) == len(HEADER), f"{engine.name}: the row has {len(row)} cells for {len(HEADER)} columns: {row}"


@pytest.mark.spec(STATS, "--no-trunc: the CONTAINER ID column shows the full ID")
def test_no_trunc_shows_the_full_id(engine, image):
    name = running(engine, image)
    cid = engine.inspect(name)["Id"]
    result = engine.cli("stats", "--no-stream", "--no-trunc", name, timeout=60)
    assert result.ok, str(result)
    row = split_columns(result.stdout.splitlines()[-1])
    assert row[0] == cid, f"{engine.name}: stats --no-trunc shows the ID {row[0]!r}; docker shows {cid}"


@pytest.mark.spec(STATS, "--format placeholders: .Container (name or ID as given), .Name, .ID, .CPUPerc, "
                         ".MemUsage, .NetIO, .BlockIO, .MemPerc, .PIDs; '{{json .}}' prints them as JSON")
def test_json_has_the_documented_placeholders(engine, image):
    name = running(engine, image)
    cid = engine.inspect(name)["Id"]
    rows = stats_json(engine, name)
    assert len(rows) == 1, f"{engine.name}: {len(rows)} rows for one container: {rows}"
    row = rows[0]
    assert set(row) == PLACEHOLDERS, \
        f"{engine.name}: stats' JSON has the keys {sorted(row)}; docker documents {sorted(PLACEHOLDERS)}"
    assert (row["Container"], row["Name"], row["ID"]) == (name, name, cid[:12]), \
        f"{engine.name}: Container/Name/ID are {row['Container']!r}/{row['Name']!r}/{row['ID']!r}"
    for key in ("CPUPerc", "MemPerc"):
        assert re.fullmatch(r"\d+\.\d\d%", row[key]), f"{engine.name}: {key} is {row[key]!r}; docker prints e.g. 0.07%"
    for key in ("NetIO", "BlockIO", "MemUsage"):
        assert re.fullmatch(r"\S+ / \S+", row[key]), f"{engine.name}: {key} is {row[key]!r}; docker prints 'A / B'"


@pytest.mark.spec(STATS, ".Container is the container's name or ID as the user gave it")
def test_container_placeholder_is_what_was_given(engine, image):
    name = running(engine, image)
    short = engine.inspect(name)["Id"][:16]
    result = engine.cli("stats", "--no-stream", "--format", "{{.Container}} {{.Name}}", short, name, timeout=60)
    assert result.ok, f"{engine.name}: stats --format '{{{{.Container}}}} {{{{.Name}}}}' exited {result.returncode}: " \
                      f"{result.stderr.strip()}"
    assert sorted(result.stdout.splitlines()) == sorted([f"{short} {name}", f"{name} {name}"]), \
        f"{engine.name}: .Container for the refs {short} and {name} printed {result.stdout!r}"


@pytest.mark.spec(STATS, "MEM USAGE / LIMIT: the limit of a container run with --memory 64m is 64 MiB")
def test_memory_limit_is_the_memory_flag(engine, image):
    name = running(engine, image, "--memory", "64m")
    usage, limit, text = memory(engine, name)
    assert abs(limit - 64 * MIB) <= 0.01 * 64 * MIB, \
        f"{engine.name}: MemUsage of a --memory 64m container is {text!r}: the limit is not 64 MiB"
    assert 0 < usage < limit, f"{engine.name}: MemUsage {text!r}: a running sleep uses some memory, under the limit"


@pytest.mark.spec(STATS, "memory is shown in binary units: 796KiB / 64MiB (the reference's examples)")
def test_memory_is_shown_in_binary_units(engine, image):
    name = running(engine, image, "--memory", "64m")
    _, _, text = memory(engine, name)
    assert re.fullmatch(r"\d+(\.\d+)?(B|KiB|MiB|GiB) / 64MiB", text), \
        f"{engine.name}: MemUsage of a --memory 64m container is {text!r}; docker prints e.g. '796KiB / 64MiB'"


@pytest.mark.spec(STATS, "MEM USAGE is what the container uses without the page cache (cgroup v1: usage minus "
                         "total_inactive_file); MEM % is usage over limit: 24 MiB kept in a tmpfs count")
def test_memory_usage_counts_what_the_container_holds(engine, image):
    name = running(engine, image, "--memory", "64m", "--tmpfs", "/fill",
                   command=["sh", "-c", "dd if=/dev/zero of=/fill/data bs=1048576 count=24 && touch /fill/done "
                                        "&& exec sleep 300"])
    engine.wait_for(lambda: engine.cli("exec", name, "test", "-e", "/fill/done").ok, timeout=60,
                    what=f"{name} to fill its tmpfs")
    row = stats_row(engine, name)
    usage, _, limit = row["MemUsage"].partition(" / ")
    used = size(usage)
    assert 24 * MIB <= used <= 64 * MIB, \
        f"{engine.name}: MemUsage {row['MemUsage']!r} with 24 MiB in a tmpfs; docker counts them (24-64 MiB)"
    percent = float(row["MemPerc"].rstrip("%"))
    assert abs(percent - 100 * used / size(limit)) < 1.0, \
        f"{engine.name}: MemPerc {row['MemPerc']} is not MemUsage {row['MemUsage']!r} as a percentage"


@pytest.mark.spec(STATS, "PIDS: the number of processes and threads the container created")
def test_pids_counts_the_processes(engine, image):
    name = running(engine, image, command=["sh", "-c", "sleep 300 & sleep 300 & exec sleep 300"])
    engine.wait_for(lambda: len(engine.cli("top", name).stdout.splitlines()) >= 4, timeout=30,
                    what=f"{name}'s three processes")
    row = stats_row(engine, name)
    assert row["PIDs"] == "3", f"{engine.name}: PIDs of a container with three processes is {row['PIDs']!r}"


@pytest.mark.spec(STATS, "CPU %: the share of the host's CPU the container used between two readings; "
                         "a busy loop shows well above 0%")
def test_cpu_of_a_busy_container(engine, image):
    name = running(engine, image, command=["sh", "-c", "while :; do :; done"])
    row = stats_row(engine, name)
    assert float(row["CPUPerc"].rstrip("%")) >= 5.0, \
        f"{engine.name}: CPU % of a container spinning a busy loop is {row['CPUPerc']}"


@pytest.mark.spec(STATS, "you can specify a stopped container but stopped containers do not return any data "
                         "(the reference's example shows 0.00% and 0B / 0B for them)")
def test_stopped_container_returns_no_data(engine, image):
    result = engine.run([image, "true"])
    assert result.ok, str(result)
    name = name_of(result)
    row = stats_row(engine, name)
    got = {k: row.get(k) for k in ("Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")}
    expected = {"Name": name, "CPUPerc": "0.00%", "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B",
                "BlockIO": "0B / 0B", "PIDs": "0"}
    assert got == expected, f"{engine.name}: stats of a stopped container: {got}; docker shows no data: {expected}"


@pytest.mark.spec(STATS, "stats of a missing container fails: 'No such container', docker 20.10 exits 1 "
                         "(observed; the reference documents no status)")
def test_missing_container_is_an_error(engine):
    ref = engine.new_name(track=False)
    result = engine.cli("stats", "--no-stream", ref, timeout=60)
    assert result.returncode == 1, \
        f"{engine.name}: stats of a missing container exited {result.returncode}; docker exits 1\n{result}"
    assert ref in result.stderr and re.search(r"(?i)no such container", result.stderr), \
        f"{engine.name}: stats of a missing container said {result.stderr.strip()!r}; no 'No such container' {ref}"


@pytest.mark.spec(STATS, "without --no-stream, docker stats is a live data stream: the table is drawn again "
                         "with each new reading")
def test_stream_redraws_the_table(engine, image):
    name = running(engine, image)
    # 8 s: docker redraws every second; the rate is not documented, and podman's default is 5 s
    with Streaming(engine, "stats", name) as stream:
        out = stream.stop(after=8.0)
    assert out.count(name) >= 2, \
        f"{engine.name}: 8 s of stats showed {name} {out.count(name)} time(s); a live stream draws it again: {out[-600:]!r}"
    assert out.count("CPU %") >= 2, f"{engine.name}: the redrawn tables have no header each: {out[-600:]!r}"
