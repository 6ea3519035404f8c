"""``system df``: the summary table and its JSON rows, and ``-v``'s sections
with this check's own container, image and volume in them.

The summary counts the whole engine (other runs included): its checks are
about shape and about bounds that this check's own objects set.
"""

from __future__ import annotations

import json
import re

import pytest

from .conftest import SYSTEM_DF, name_of, split_columns

HEADER = ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
TYPES = ["Images", "Containers", "Local Volumes"]
SIZE = r"\d+(\.\d+)?\s?(B|kB|MB|GB|TB)"


def df(engine, *args: str):
    # query: a daemonless engine's df can race another process's rm of an unrelated container
    result = engine.query("system", "df", *args, timeout=120)
    assert result.ok, f"{engine.name}: system df {' '.join(args)} exited {result.returncode}\n{result}"
    return result


def sections(text: str) -> dict[str, list[str]]:
    """-v's output as {section title: its non-empty lines}."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = re.fullmatch(r"(Images space usage|Containers space usage|Local Volumes space usage|Build cache usage)"
                         r":.*", line.strip())
        if m:
            current = m.group(1)
            out[current] = []
        elif current and line.strip():
            out[current].append(line)
    return out


def running(engine, image, *flags: str, command: tuple[str, ...] = ("sleep", "300")) -> str:
    result = engine.run(["-d", *flags, image, *command])
    assert result.ok, str(result)
    name = name_of(result)
    engine.wait_running(name)
    return name


@pytest.mark.spec(SYSTEM_DF, "docker system df prints TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE, a row for "
                             "Images, Containers and Local Volumes, reclaimable space with its percentage")
def test_summary_has_the_documented_columns_and_rows(engine, image):
    name = running(engine, image)
    lines = df(engine).stdout.splitlines()
    assert split_columns(lines[0]) == HEADER, f"{engine.name}: system df's header is {lines[0]!r}; docker: {HEADER}"
    rows = {split_columns(line)[0]: split_columns(line) for line in lines[1:]}
    assert [t for t in rows if t in TYPES] == TYPES, \
        f"{engine.name}: system df's rows are {list(rows)}; docker documents {TYPES} in that order"
    for kind in TYPES:
        row = rows[kind]
        assert len(row) == 5 and row[1].isdigit() and row[2].isdigit() and int(row[2]) <= int(row[1]), \
            f"{engine.name}: the {kind} row is {row}; docker: a total, an active count up to it, sizes"
        assert re.fullmatch(SIZE, row[3]) and re.fullmatch(rf"{SIZE}( \(\d+%\))?", row[4]), \
            f"{engine.name}: the {kind} row's sizes are {row[3:]!r}; docker prints e.g. 11.63MB (70%)"
    containers = rows["Containers"]
    assert int(containers[2]) >= 1, f"{engine.name}: ACTIVE containers is {containers[2]} while {name} runs"


@pytest.mark.spec(SYSTEM_DF, "--format '{{json .}}': one JSON object per row, with Type, TotalCount, Active, "
                             "Size and Reclaimable")
def test_json_format_prints_one_object_per_row(engine, image):
    running(engine, image)
    rows = [json.loads(line) for line in df(engine, "--format", "{{json .}}").stdout.splitlines() if line.strip()]
    kinds = [r.get("Type") for r in rows]
    assert [k for k in kinds if k in TYPES] == TYPES, f"{engine.name}: system df's JSON rows are of {kinds}"
    for row in rows:
        assert {"Type", "TotalCount", "Active", "Size", "Reclaimable"} <= set(row), \
            f"{engine.name}: a system df JSON row has the keys {sorted(row)}; docker: Type, TotalCount, Active, Size, Reclaimable"
    containers = next(r for r in rows if r.get("Type") == "Containers")
    assert int(containers["TotalCount"]) >= int(containers["Active"]) >= 1, \
        f"{engine.name}: the Containers row while a container runs: {containers}"


@pytest.mark.spec(SYSTEM_DF, "-v shows the space used per object: Images space usage, Containers space usage "
                             "(CONTAINER ID, IMAGE, COMMAND, LOCAL VOLUMES, SIZE, CREATED, STATUS, NAMES), "
                             "Local Volumes space usage (VOLUME NAME, LINKS, SIZE)")
def test_verbose_lists_each_container_image_and_volume(engine, image):
    volume = engine.new_name("v")
    name = running(engine, image, "-v", f"{volume}:/data")
    cid = engine.inspect(name)["Id"]
    parts = sections(df(engine, "-v").stdout)
    for title in ("Images space usage", "Containers space usage", "Local Volumes space usage"):
        assert title in parts, f"{engine.name}: system df -v has the sections {list(parts)}; no {title!r}"
    containers = parts["Containers space usage"]
    assert split_columns(containers[0]) == ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
                                            "STATUS", "NAMES"], \
        f"{engine.name}: the containers section's header is {containers[0]!r}"
    mine = [split_columns(line) for line in containers[1:] if line.split()[-1] == name]
    assert len(mine) == 1 and mine[0][0] == cid[:12] and mine[0][3] == "1", \
        f"{engine.name}: system df -v's row of {name} (one volume): {mine}"
    repository, _, tag = image.rpartition(":")
    assert any(split_columns(line)[:2] == [repository, tag] for line in parts["Images space usage"][1:]), \
        f"{engine.name}: system df -v lists no image {image}: {parts['Images space usage']}"
    volumes = parts["Local Volumes space usage"]
    assert split_columns(volumes[0]) == ["VOLUME NAME", "LINKS", "SIZE"], \
        f"{engine.name}: the volumes section's header is {volumes[0]!r}"
    row = [split_columns(line) for line in volumes[1:] if line.split()[0] == volume]
    assert len(row) == 1 and row[0][1] == "1", \
        f"{engine.name}: system df -v's row of the volume {volume} used by one container: {row}"


@pytest.mark.spec(SYSTEM_DF, "-v: a container's SIZE is the space its writable layer uses (1 MB written: about 1MB)")
def test_verbose_container_size_counts_its_writes(engine, image):
    name = running(engine, image, command=("sh", "-c", "dd if=/dev/zero of=/written bs=1000 count=1000 "
                                                       "&& touch /done && exec sleep 300"))
    engine.wait_for(lambda: engine.cli("exec", name, "test", "-e", "/done").ok, timeout=60, what=f"{name}'s write")
    containers = sections(df(engine, "-v").stdout).get("Containers space usage", [])
    mine = [split_columns(line) for line in containers[1:] if line.split()[-1] == name]
    assert len(mine) == 1, f"{engine.name}: system df -v has {len(mine)} rows for {name}"
    written = mine[0][4]
    m = re.fullmatch(r"([\d.]+)(B|kB|MB)", written)
    scale = {"B": 1, "kB": 1e3, "MB": 1e6}
    assert m and 1e6 <= float(m.group(1)) * scale[m.group(2)] <= 1.1e6, \
        f"{engine.name}: SIZE of a container that wrote 1000000 bytes is {written!r}; docker shows 1MB"


@pytest.mark.spec(SYSTEM_DF, "-v: a volume's SIZE is the data it holds, LINKS the containers that use it")
def test_verbose_volume_size_and_links(engine, image):
    volume = engine.new_name("v")
    engine.cli("volume", "create", volume, check=True)
    filler = engine.run(["--rm", "-v", f"{volume}:/data", image, "dd", "if=/dev/zero", "of=/data/x", "bs=1000",
                         "count=100"])
    assert filler.ok, str(filler)
    rows = [split_columns(line) for line in sections(df(engine, "-v").stdout).get("Local Volumes space usage", [])[1:]
            if line.split()[0] == volume]
    assert rows == [[volume, "0", "100kB"]], \
        f"{engine.name}: system df -v's row of an unused volume holding 100000 bytes: {rows}; docker: {volume} 0 100kB"
