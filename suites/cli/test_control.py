"""Controlling running containers: pause and unpause, rename, top, port, and
``wait``/``stop``/``kill`` of several containers at once."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import KILL, PAUSE, PORT, RENAME, STOP, TOP, UNPAUSE, WAIT

#: The Engine API's container state: "paused containers are both Running and Paused".
STATE = "https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Container/operation/ContainerInspect"

#: A main process that prints a growing counter, ten lines a second.
COUNTER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done"]

#: docker top's columns: `ps -ef` as the daemon runs it.
TOP_COLUMNS = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]


def log_lines(engine, name: str) -> int:
    result = engine.cli("logs", name, check=True)
    return len(result.stdout.splitlines())


def frozen_log_length(engine, name: str, reads: int = 5, timeout: float = 30) -> int:
    """The log's length once it has stayed the same for ``reads`` reads 0.3 s
    apart (more than the counter's 0.1 s step): a line written just before the
    freeze may still be on its way to the log, the more so on a loaded machine."""
    deadline = time.monotonic() + timeout
    last, same = log_lines(engine, name), 1
    while same < reads:
        assert time.monotonic() < deadline, \
            f"{engine.name}: the paused counter's log still grew after {timeout:.0f}s (now {last} lines)"
        time.sleep(0.3)
        now = log_lines(engine, name)
        last, same = now, (same + 1 if now == last else 1)
    return last


def started_counter(engine, image) -> str:
    """A running container whose log has begun to grow."""
    result = engine.run(["-d", image, *COUNTER])
    assert result.ok, str(result)
    name = result.argv[result.argv.index("--name") + 1]
    engine.wait_for(lambda: log_lines(engine, name) >= 3, timeout=30, what=f"{name} to count")
    return name


# -- pause and unpause ------------------------------------------------------------


@pytest.mark.requires("pause")
@pytest.mark.spec(PAUSE, "docker pause suspends all processes in the container; docker unpause resumes them")
def test_pause_stops_progress_and_unpause_resumes_it(engine, image):
    name = started_counter(engine, image)
    paused = engine.cli("pause", name)
    assert paused.ok, str(paused)
    assert paused.stdout == f"{name}\n", f"{engine.name}: pause printed {paused.stdout!r}; docker prints the name"
    state = engine.state(name)
    assert state["Paused"] is True, f"{engine.name}: State.Paused after pause: {state}"
    frozen_at = frozen_log_length(engine, name)
    time.sleep(1.5)  # fifteen lines' worth of time: a running counter would have grown
    after = log_lines(engine, name)
    assert after == frozen_at, f"{engine.name}: the paused counter went on from {frozen_at} to {after} lines"
    resumed = engine.cli("unpause", name)
    assert resumed.ok, str(resumed)
    assert resumed.stdout == f"{name}\n", f"{engine.name}: unpause printed {resumed.stdout!r}; docker prints the name"
    engine.wait_for(lambda: log_lines(engine, name) >= after + 3, timeout=30,
                    what=f"{name} to count again after unpause")
    state = engine.state(name)
    assert state["Status"] == "running" and state["Paused"] is False, f"{engine.name}: after unpause: {state}"


@pytest.mark.requires("pause")
@pytest.mark.spec(STATE, "State of a paused container: Status \"paused\", Paused true, and Running true "
                         "(paused containers are both Running and Paused)")
def test_paused_container_is_both_running_and_paused(engine, image):
    name = engine.create([image, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    engine.cli("pause", name, check=True)
    state = engine.state(name)
    assert state["Status"] == "paused", f"{engine.name}: Status of a paused container: {state['Status']!r}"
    assert state["Paused"] is True, f"{engine.name}: Paused of a paused container: {state['Paused']!r}"
    assert state["Running"] is True, \
        f"{engine.name}: Running of a paused container: {state['Running']!r}; docker says true"
    engine.cli("unpause", name, check=True)


@pytest.mark.requires("pause")
@pytest.mark.spec(PAUSE, "pause of a container that is already paused is an error (docker 20.10 exits 1: observed; the reference documents no status); it stays paused")
def test_pause_of_a_paused_container_is_an_error(engine, image):
    name = engine.create([image, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    engine.cli("pause", name, check=True)
    result = engine.cli("pause", name)
    assert result.returncode == 1, f"{engine.name}: a second pause exited {result.returncode}; docker exits 1\n{result}"
    assert re.search(r"(?i)already paused", result.stderr), \
        f"{engine.name}: a second pause said {result.stderr.strip()!r}"
    assert result.stdout == "", f"{engine.name}: a refused pause printed {result.stdout!r}"
    assert engine.state(name)["Status"] == "paused"
    engine.cli("unpause", name, check=True)


@pytest.mark.requires("pause")
@pytest.mark.spec(UNPAUSE, "unpause of a container that is not paused is an error (docker 20.10 exits 1: observed; the reference documents no status); it keeps running")
def test_unpause_of_a_running_container_is_an_error(engine, image):
    name = engine.create([image, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("unpause", name)
    assert result.returncode == 1, \
        f"{engine.name}: unpause of a running container exited {result.returncode}; docker exits 1\n{result}"
    assert re.search(r"(?i)not paused", result.stderr), \
        f"{engine.name}: unpause of a running container said {result.stderr.strip()!r}"
    assert result.stdout == "", f"{engine.name}: a refused unpause printed {result.stdout!r}"
    assert engine.state(name)["Status"] == "running"


# -- rename -----------------------------------------------------------------------


@pytest.mark.spec(RENAME, "docker rename OLD NEW renames a container: the new name finds it, the old one no longer "
                          "does")
def test_rename_gives_the_container_its_new_name(engine, image):
    old = engine.create([image, "sleep", "1000"])
    cid = engine.inspect(old)["Id"]
    new = engine.new_name()
    result = engine.cli("rename", old, new)
    assert result.ok, str(result)
    assert result.stdout == "", f"{engine.name}: rename printed {result.stdout!r}; docker prints nothing"
    found = engine.inspect(new, kind="container")["Id"]
    assert found == cid, f"{engine.name}: after rename, {new} names {found}, not the renamed {cid}"
    listed = engine.cli("ps", "-a", "--no-trunc", "--filter", f"id={cid}", "--format", "{{.Names}}", check=True)
    assert listed.stdout.split() == [new], f"{engine.name}: ps lists the renamed container as {listed.stdout!r}"
    gone = engine.cli("inspect", "--type", "container", old)
    assert gone.returncode != 0, f"{engine.name}: the old name {old} still finds a container\n{gone}"
    engine.cli("start", new, check=True)
    assert engine.wait_running(new)["Running"] is True
    # the old name is free again
    engine.create([image, "true"], name=old)


@pytest.mark.spec(RENAME, "renaming to a name another container has fails (docker 20.10 exits 1: observed; the reference documents no status); both keep their names")
def test_rename_to_a_taken_name_fails(engine, image):
    first = engine.create([image, "true"])
    second = engine.create([image, "true"])
    ids = {n: engine.inspect(n)["Id"] for n in (first, second)}
    result = engine.cli("rename", first, second)
    assert result.returncode == 1, \
        f"{engine.name}: rename to a taken name exited {result.returncode}; docker exits 1\n{result}"
    assert re.search(r"(?i)already in use", result.stderr), \
        f"{engine.name}: rename to a taken name said {result.stderr.strip()!r}"
    for name, cid in ids.items():
        assert engine.inspect(name)["Id"] == cid, f"{engine.name}: {name} changed hands after a refused rename"


# -- top ---------------------------------------------------------------------------


def top_table(output: str) -> tuple[list[str], list[dict[str, str]]]:
    """docker top's table: its column names, and each row cut at the header's
    column starts (CMD, the last column, keeps its spaces)."""
    lines = output.splitlines()
    assert lines, "top printed nothing"
    header = lines[0]
    names = header.split()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    rows = []
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])]
        rows.append(dict(zip(names, cells)))
    return names, rows


@pytest.mark.spec(TOP, "docker top lists the container's processes (ps options default to -ef): the columns "
                       "UID PID PPID C STIME TTY TIME CMD, host PIDs and the full command line are observed with "
                       "docker 20.10 (the reference documents no columns)")
def test_top_lists_the_containers_processes(engine, image):
    name = engine.create([image, "sh", "-c", "sleep 1001 & exec sleep 1002"])
    engine.cli("start", name, check=True)
    pid = engine.wait_running(name)["Pid"]

    deadline = time.monotonic() + 30  # until the shell has forked and exec'd (slow on a loaded machine)
    while True:
        result = engine.cli("top", name, check=True)
        names, rows = top_table(result.stdout)
        by_cmd = {r.get("CMD"): r for r in rows}
        if sorted(by_cmd) == ["sleep 1001", "sleep 1002"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert names == TOP_COLUMNS, \
        f"{engine.name}: top's columns are {names}; docker prints {TOP_COLUMNS}\n{result.stdout}"
    assert sorted(by_cmd) == ["sleep 1001", "sleep 1002"], \
        f"{engine.name}: top listed {sorted(by_cmd)}\n{result.stdout}"
    main, child = by_cmd["sleep 1002"], by_cmd["sleep 1001"]
    assert main["PID"] == str(pid), \
        f"{engine.name}: top shows the main process as PID {main['PID']}; inspect says {pid}"
    assert child["PPID"] == str(pid), f"{engine.name}: top shows the child's PPID {child['PPID']}; its parent is {pid}"
    assert main["UID"] == "root" and child["UID"] == "root", \
        f"{engine.name}: UID column: {main['UID']!r}, {child['UID']!r}"


@pytest.mark.requires("pause")
@pytest.mark.spec(TOP, "docker top shows the processes of a paused container too (paused containers are running)")
def test_top_of_a_paused_container_lists_its_processes(engine, image):
    name = engine.create([image, "sleep", "1000"])
    engine.cli("start", name, check=True)
    pid = engine.wait_running(name)["Pid"]
    engine.cli("pause", name, check=True)
    result = engine.cli("top", name)
    assert result.returncode == 0, f"{engine.name}: top of a paused container exited {result.returncode}\n{result}"
    _, rows = top_table(result.stdout)
    assert [(r.get("PID"), r.get("CMD")) for r in rows] == [(str(pid), "sleep 1000")], \
        f"{engine.name}: top of a paused container listed\n{result.stdout}"
    engine.cli("unpause", name, check=True)


@pytest.mark.spec(TOP, "docker top of a container that is not running is an error (docker 20.10 exits 1: observed; the reference documents no status)")
def test_top_of_a_stopped_container_is_an_error(engine, image):
    name = engine.create([image, "true"])
    result = engine.cli("top", name)
    assert result.returncode == 1, \
        f"{engine.name}: top of a created container exited {result.returncode}; docker exits 1\n{result}"
    assert re.search(r"(?i)not running", result.stderr), \
        f"{engine.name}: top of a created container said {result.stderr.strip()!r}"
    assert result.stdout == "", f"{engine.name}: top of a created container printed {result.stdout!r}"


# -- port ----------------------------------------------------------------------------


@pytest.mark.spec(PORT, "docker port lists a container's port mappings: nothing for a container that publishes none")
def test_port_lists_nothing_without_published_ports(engine, image):
    name = engine.create([image, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("port", name)
    assert result.returncode == 0, \
        f"{engine.name}: port of a container without mappings exited {result.returncode}\n{result}"
    assert result.stdout == "", f"{engine.name}: port of a container without mappings printed {result.stdout!r}"


@pytest.mark.spec(PORT, "docker port NAME PORT/PROTO of a port not published: \"Error: No public port "
                        "'PORT/PROTO' published for NAME\" (docker 20.10 exits 1: observed; the reference documents no status)")
def test_port_of_an_unpublished_port_is_an_error(engine, image):
    name = engine.create([image, "sleep", "1000"])
    engine.cli("start", name, check=True)
    engine.wait_running(name)
    result = engine.cli("port", name, "7890/udp")
    assert result.returncode == 1, \
        f"{engine.name}: port of an unpublished port exited {result.returncode}; docker exits 1\n{result}"
    expected = f"No public port '7890/udp' published for {name}"
    assert expected in result.stderr, \
        f"{engine.name}: port of an unpublished port said {result.stderr.strip()!r}; docker documents {expected!r}"
    assert result.stdout == ""


# -- several containers at once ----------------------------------------------------


@pytest.mark.spec(WAIT, "docker wait blocks until the containers stop, then prints their exit codes, one a line, "
                        "in the order given")
def test_wait_prints_each_status_in_argument_order(engine, image):
    scripts = {3: "sleep 1; exit 3", 5: "exit 5", 7: "sleep 0.5; exit 7"}
    names = {code: engine.create([image, "sh", "-c", script]) for code, script in scripts.items()}
    for name in names.values():
        engine.cli("start", name, check=True)
    order = [names[3], names[5], names[7]]
    result = engine.cli("wait", *order, timeout=60)
    assert result.ok, str(result)
    assert result.stdout.splitlines() == ["3", "5", "7"], f"{engine.name}: wait printed {result.stdout!r}"
    again = engine.cli("wait", names[7], names[3], names[5], timeout=60)
    assert again.ok, str(again)
    assert again.stdout.splitlines() == ["7", "3", "5"], \
        f"{engine.name}: wait of exited containers printed {again.stdout!r}"


@pytest.mark.spec(WAIT, "docker wait with a missing container prints the others' exit codes, reports the missing one "
                        "on stderr and docker 20.10 exits 1 (observed; the reference documents no status)")
def test_wait_with_a_missing_container(engine, image):
    first, second = (engine.create([image, "sh", "-c", f"exit {code}"]) for code in (3, 5))
    for name in (first, second):
        engine.cli("start", name, check=True)
    missing = engine.new_name(track=False)
    result = engine.cli("wait", first, missing, second, timeout=60)
    assert result.returncode == 1, \
        f"{engine.name}: wait with a missing container exited {result.returncode}; docker exits 1\n{result}"
    assert result.stdout.splitlines() == ["3", "5"], \
        f"{engine.name}: wait with a missing container printed {result.stdout!r}"
    assert missing in result.stderr and re.search(r"(?i)no such container", result.stderr), \
        f"{engine.name}: wait did not report the missing container: {result.stderr.strip()!r}"


def two_running(engine, image) -> tuple[str, str]:
    names = tuple(engine.create([image, "sleep", "1000"]) for _ in range(2))
    for name in names:
        engine.cli("start", name, check=True)
        engine.wait_running(name)
    return names


@pytest.mark.spec(STOP, "docker stop of several containers with one missing stops the others, prints each stopped "
                        "name, reports the missing one on stderr and docker 20.10 exits 1 (observed; the reference documents no status)")
def test_stop_of_several_with_one_missing(engine, image):
    first, second = two_running(engine, image)
    missing = engine.new_name(track=False)
    result = engine.cli("stop", "-t", "1", first, missing, second, timeout=60)
    # the effects first, so that a deviating exit status cannot hide them
    for name in (first, second):
        state = engine.state(name)
        assert state["Status"] == "exited", f"{engine.name}: {name} is {state['Status']} after stop\n{result}"
    assert result.returncode == 1, \
        f"{engine.name}: stop with a missing container exited {result.returncode}; docker exits 1\n{result}"
    assert result.stdout.splitlines() == [first, second], f"{engine.name}: stop printed {result.stdout!r}"
    assert missing in result.stderr and re.search(r"(?i)no such container", result.stderr), \
        f"{engine.name}: stop did not report the missing container: {result.stderr.strip()!r}"


@pytest.mark.spec(KILL, "docker kill of several containers with one missing kills the others, prints each killed "
                        "name, reports the missing one on stderr and docker 20.10 exits 1 (observed; the reference documents no status)")
def test_kill_of_several_with_one_missing(engine, image):
    first, second = two_running(engine, image)
    missing = engine.new_name(track=False)
    result = engine.cli("kill", first, missing, second, timeout=60)
    # the effects first, so that a deviating exit status cannot hide them
    for name in (first, second):
        state = engine.wait_for(lambda n=name: (s := engine.state(n))["Status"] == "exited" and s, timeout=30,
                                what=f"{name} to exit after kill")
        assert state["ExitCode"] == 137, \
            f"{engine.name}: {name} exited {state['ExitCode']} after kill; SIGKILL gives 137"
    assert result.returncode == 1, \
        f"{engine.name}: kill with a missing container exited {result.returncode}; docker exits 1\n{result}"
    assert result.stdout.splitlines() == [first, second], f"{engine.name}: kill printed {result.stdout!r}"
    assert missing in result.stderr and re.search(r"(?i)no such container", result.stderr), \
        f"{engine.name}: kill did not report the missing container: {result.stderr.strip()!r}"
