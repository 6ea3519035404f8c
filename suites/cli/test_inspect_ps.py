"""``inspect --format`` and ``ps`` as scripts use them: Go templates over the
inspect document (``json``, ``index``, ``len``, ``range``, nested fields),
and ``ps``'s filters, ``--format`` columns and tables, ``--no-trunc``,
``-q``, ``-n`` and ``-l``.

Every ``ps`` here is narrowed to this run's label and to a label unique to
the check, so containers of parallel checks and runs never show up.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from .conftest import FORMAT, INSPECT, PS, RUN

RUN_ENV = f"{RUN}#env"
RUN_RESTART = f"{RUN}#restart"
RUN_VOLUME = f"{RUN}#volume"
#: The Engine API's container document that inspect prints (its example: "Name": "/boring_euclid").
API_INSPECT = "https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Container/operation/ContainerInspect"
PS_FILTER = f"{PS}#filter"
PS_FORMAT = f"{PS}#format"
PS_NO_TRUNC = f"{PS}#no-trunc"
PS_ALL = f"{PS}#all"

#: The test image's only environment variable.
IMAGE_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LONG_COMMAND = ["echo", "a long command line that is long"]


def fmt(engine, name: str, template: str) -> str:
    """``inspect --format TEMPLATE NAME``'s output without the final newline."""
    result = engine.cli("inspect", "--format", template, name)
    assert result.ok, f"{engine.name}: inspect --format {template!r} failed: {result}"
    return result.stdout.rstrip("\n")


class Group:
    """Containers of one check, told apart from everything else by a label."""

    KEY = "io.conformance.check"

    def __init__(self, engine):
        self.engine = engine
        self.value = engine.new_name("grp", track=False)

    @property
    def label(self) -> str:
        return f"{self.KEY}={self.value}"

    def create(self, args: list[str], *, name: str | None = None) -> tuple[str, str]:
        """(name, full id) of a new container of the group."""
        name = name or self.engine.new_name()
        result = self.engine.cli("create", "--name", name, "--label", self.engine.label, "--label", self.label,
                                 *args, check=True)
        return name, result.stdout.strip().splitlines()[-1]

    def run(self, args: list[str], *, name: str | None = None) -> tuple[str, str]:
        name = name or self.engine.new_name()
        result = self.engine.cli("run", "--name", name, "--label", self.engine.label, "--label", self.label,
                                 *args, timeout=60)
        if "-d" not in args and result.returncode != 0 and not self.engine.cli("inspect", "--type", "container", name).ok:
            raise AssertionError(f"{self.engine.name}: could not run a container: {result}")
        return name, fmt(self.engine, name, "{{.Id}}") if "-d" not in args else result.stdout.strip()

    def ps(self, *args: str) -> list[str]:
        """``ps ARGS`` over this group only: its output lines."""
        result = self.engine.cli("ps", "--filter", f"label={self.engine.label}", "--filter", f"label={self.label}", *args)
        assert result.ok, f"{self.engine.name}: ps {' '.join(args)} failed: {result}"
        return result.stdout.splitlines()


def wait_status(engine, name: str, status: str) -> None:
    engine.wait_for(lambda: engine.state(name)["Status"] == status, timeout=30, what=f"{name} to be {status}")


def trio(engine, image) -> tuple[Group, dict[str, tuple[str, str]]]:
    """A group of three containers: running, exited with 3, created."""
    group = Group(engine)
    running = group.run(["-d", "--label", "tier=web", image, "sleep", "1000"])
    exited = group.run([image, "sh", "-c", "exit 3"])
    created = group.create([image, *LONG_COMMAND])
    wait_status(engine, running[0], "running")
    wait_status(engine, exited[0], "exited")
    return group, {"running": running, "exited": exited, "created": created}


# -- inspect --format ----------------------------------------------------------------


@pytest.mark.spec(RUN_ENV, "-e sets variables in the container's environment; a variable of the image is overridden, the others kept")
def test_inspect_env_as_json(engine, image):
    name = engine.create(["-e", "B=2", "-e", "PATH=/x", "-e", "A=1", image])
    env = json.loads(fmt(engine, name, "{{json .Config.Env}}"))
    assert isinstance(env, list), f"{engine.name}: {{{{json .Config.Env}}}} is not a JSON list: {env!r}"
    keys = [e.split("=", 1)[0] for e in env]
    assert len(keys) == len(set(keys)), f"{engine.name}: a variable appears twice in {env}"
    assert IMAGE_PATH not in env and "PATH=/x" in env, f"{engine.name}: -e PATH=/x did not override the image's PATH: {env}"
    # Not the order: dockerd 20.10 itself lists the same -e flags sometimes as
    # given, sometimes sorted (1 create in 5 here).
    assert {"B=2", "A=1"} <= set(env), f"{engine.name}: -e B=2 -e A=1 missing from {env}"
    kept = engine.create(["-e", "B=2", image])
    env = json.loads(fmt(engine, kept, "{{json .Config.Env}}"))
    assert IMAGE_PATH in env and "B=2" in env, f"{engine.name}: image PATH and -e B=2 expected in {env}"


@pytest.mark.spec(FORMAT, "index picks a map entry: {{index .Config.Labels \"k\"}}, empty for a missing key")
def test_inspect_index_of_a_label(engine, image):
    name = engine.create(["--label", "k=v", "--label", "com.example.note=a b", image])
    assert fmt(engine, name, '{{index .Config.Labels "k"}}') == "v"
    assert fmt(engine, name, '{{index .Config.Labels "com.example.note"}}') == "a b"
    assert fmt(engine, name, '{{index .Config.Labels "missing"}}') == ""
    labels = json.loads(fmt(engine, name, "{{json .Config.Labels}}"))
    assert labels.get("k") == "v" and labels.get("com.example.note") == "a b", f"{engine.name}: labels {labels}"


@pytest.mark.spec(API_INSPECT, "Id is the container's full 64-hex-digit ID, the one create prints")
def test_inspect_len_of_the_id(engine, image):
    name = engine.new_name()
    created = engine.cli("create", "--name", name, "--label", engine.label, image, check=True).stdout.strip()
    length = fmt(engine, name, "{{len .Id}}")
    assert length == "64", f"{engine.name}: {{{{len .Id}}}} printed {length!r}"
    assert fmt(engine, name, "{{.Id}}") == created, f"{engine.name}: .Id differs from create's output {created}"


@pytest.mark.spec(INSPECT, "templates loop over arrays: {{range .Config.Cmd}}...{{end}}")
def test_inspect_range_over_the_command(engine, image):
    name = engine.create([image, "sh", "-c", "exit 3"])
    assert fmt(engine, name, "{{range .Config.Cmd}}[{{.}}]{{end}}") == "[sh][-c][exit 3]"
    assert fmt(engine, name, '{{join .Config.Cmd ","}}') == "sh,-c,exit 3"
    assert fmt(engine, name, "{{index .Config.Cmd 1}}") == "-c"


@pytest.mark.spec(INSPECT, "State.Status, State.ExitCode and State.Running of a created, running and exited container")
def test_inspect_state_fields(engine, image):
    template = "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}"
    created = engine.create([image, "sh", "-c", "exit 3"])
    assert fmt(engine, created, template) == "created 0 false"
    running = engine.new_name()
    assert engine.run(["-d", image, "sleep", "1000"], name=running).ok
    wait_status(engine, running, "running")
    assert fmt(engine, running, template) == "running 0 true"
    assert engine.cli("start", "-a", created, timeout=60).returncode == 3
    wait_status(engine, created, "exited")
    assert fmt(engine, created, template) == "exited 3 false"
    assert fmt(engine, created, "{{if .State.Running}}up{{else}}down{{end}}") == "down"


@pytest.mark.spec(RUN_RESTART, "--restart on-failure:3 shows as RestartPolicy Name on-failure, MaximumRetryCount 3; the default is no")
def test_inspect_restart_policy(engine, image):
    template = "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
    limited = engine.create(["--restart", "on-failure:3", image])
    assert fmt(engine, limited, template) == "on-failure 3"
    default = engine.create([image])
    got = fmt(engine, default, template)
    assert got == "no 0", f"{engine.name}: the default restart policy shows as {got!r}; docker documents no"


@pytest.mark.requires("volumes")
@pytest.mark.spec(RUN_VOLUME, "Mounts lists each volume and bind mount with its Type and Destination; none is []")
def test_inspect_mounts(engine, image, tmp_path):
    plain = engine.create([image])
    assert fmt(engine, plain, "{{.Mounts}}") == "[]"
    assert fmt(engine, plain, "{{len .Mounts}}") == "0"
    volume = engine.new_name("v")
    name = engine.create(["-v", f"{volume}:/data", "-v", f"{tmp_path}:/host:ro", image])
    mounts = fmt(engine, name, "{{range .Mounts}}{{.Type}} {{.Destination}};{{end}}")
    assert sorted(mounts.split(";")) == ["", "bind /host", "volume /data"], f"{engine.name}: mounts {mounts!r}"
    sources = json.loads(fmt(engine, name, "{{json .Mounts}}"))
    bind = [m for m in sources if m.get("Destination") == "/host"]
    assert bind and bind[0].get("Source") == str(tmp_path) and bind[0].get("RW") is False, f"{engine.name}: {sources}"


@pytest.mark.spec(API_INSPECT, "Name is the container's name with a leading slash (\"/boring_euclid\")")
def test_inspect_name_has_a_leading_slash(engine, image):
    name = engine.create([image])
    got = fmt(engine, name, "{{.Name}}")
    assert got == f"/{name}", f"{engine.name}: {{{{.Name}}}} printed {got!r}"


# -- ps --------------------------------------------------------------------------------


@pytest.mark.spec(PS_ALL, "ps shows running containers; -a shows all; -q only their (short) IDs")
def test_ps_quiet_and_all(engine, image):
    group, c = trio(engine, image)
    every = group.ps("-a", "-q")
    assert sorted(every) == sorted(cid[:12] for _, cid in c.values()), f"{engine.name}: ps -a -q listed {every}"
    up = group.ps("-q")
    assert up == [c["running"][1][:12]], f"{engine.name}: ps -q listed {up}; only {c['running'][1][:12]} runs"
    full = group.ps("-a", "-q", "--no-trunc")
    assert sorted(full) == sorted(cid for _, cid in c.values()), f"{engine.name}: ps -a -q --no-trunc listed {full}"


@pytest.mark.spec(PS_FILTER, "the name filter matches all or part of a container's name")
def test_ps_filter_name(engine, image):
    group = Group(engine)
    # names from new_name (tracked, removed after the check) whose kinds share a
    # part no other name of the group has: "cft-RUN-nf"
    alpha, _ = group.create([image], name=engine.new_name("nfalpha"))
    beta, _ = group.create([image], name=engine.new_name("nfbeta"))
    base = os.path.commonprefix([alpha, beta])
    assert base.endswith("-nf"), f"unexpected names {alpha}, {beta}"
    one = group.ps("-a", "--filter", f"name={alpha}", "--format", "{{.Names}}")
    assert one == [alpha], f"{engine.name}: name={alpha} listed {one}"
    both = group.ps("-a", "--filter", f"name={base}", "--format", "{{.Names}}")
    assert sorted(both) == sorted([alpha, beta]), f"{engine.name}: name={base} (a part of both names) listed {both}"


@pytest.mark.spec(PS_FILTER, "label=<key> matches containers with the label, label=<key>=<value> with that value")
def test_ps_filter_label(engine, image):
    group = Group(engine)
    web, _ = group.create(["--label", "tier=web", image])
    db, _ = group.create(["--label", "tier=db", image])
    group.create([image])
    keyed = group.ps("-a", "--filter", "label=tier", "--format", "{{.Names}}")
    assert sorted(keyed) == sorted([web, db]), f"{engine.name}: label=tier listed {keyed}"
    valued = group.ps("-a", "--filter", "label=tier=db", "--format", "{{.Names}}")
    assert valued == [db], f"{engine.name}: label=tier=db listed {valued}"


@pytest.mark.spec(PS_FILTER, "status=exited|created|running and exited=<code> select by state and exit code")
def test_ps_filter_status_and_exit_code(engine, image):
    group, c = trio(engine, image)
    for status in ("running", "exited", "created"):
        got = group.ps("-a", "--filter", f"status={status}", "--format", "{{.Names}}")
        assert got == [c[status][0]], f"{engine.name}: status={status} listed {got}"
    three = group.ps("-a", "--filter", "exited=3", "--format", "{{.Names}}")
    assert three == [c["exited"][0]], f"{engine.name}: exited=3 listed {three}"
    zero = group.ps("-a", "--filter", "exited=0", "--format", "{{.Names}}")
    assert zero == [], f"{engine.name}: exited=0 listed {zero}; no container of the check exited 0"


@pytest.mark.spec(PS_FILTER, "ancestor=<image>[:<tag>] or <short-id> matches containers of that image")
def test_ps_filter_ancestor(engine, image, test_image):
    group = Group(engine)
    mine, _ = group.create([image])
    group.create([test_image.stopsignal])
    by_ref = group.ps("-a", "--filter", f"ancestor={image}", "--format", "{{.Names}}")
    assert by_ref == [mine], f"{engine.name}: ancestor={image} listed {by_ref}"
    short_id = engine.inspect(image, kind="image")["Id"].split(":")[-1][:12]
    by_id = group.ps("-a", "--filter", f"ancestor={short_id}", "--format", "{{.Names}}")
    assert by_id == [mine], f"{engine.name}: ancestor={short_id} listed {by_id}"


@pytest.mark.spec(PS_FORMAT, "--format \"table ...\" prints the column headers, then one row per container")
def test_ps_table_format_has_a_header(engine, image):
    group, c = trio(engine, image)
    lines = group.ps("-a", "--format", "table {{.Names}}\t{{.Status}}")
    assert lines and lines[0].split() == ["NAMES", "STATUS"], f"{engine.name}: table header {lines[:1]}"
    rows = {line.split()[0]: line.split(None, 1)[1] for line in lines[1:]}
    assert sorted(rows) == sorted(n for n, _ in c.values()), f"{engine.name}: table rows {lines[1:]}"
    status = {kind: rows[name] for kind, (name, _) in c.items()}
    assert re.fullmatch(r"Up (Less than a second|\d+ seconds?|About a minute)", status["running"]), \
        f"{engine.name}: a running container's status is {status['running']!r}, docker shows e.g. 'Up 45 seconds'"
    assert re.fullmatch(r"Exited \(3\) .+ ago", status["exited"]), f"{engine.name}: exited status {status['exited']!r}"
    assert status["created"] == "Created", f"{engine.name}: created status {status['created']!r}"


@pytest.mark.spec(PS_FORMAT, "custom columns: .ID (short), .Image, .Command (quoted), .Labels (k=v,...)")
def test_ps_custom_columns(engine, image):
    group = Group(engine)
    name, cid = group.create(["--label", "tier=web", image, "sh", "-c", "exit 3"])
    lines = group.ps("-a", "--format", "{{.ID}}|{{.Image}}|{{.Command}}|{{.Labels}}")
    assert len(lines) == 1, f"{engine.name}: ps listed {lines}"
    short, img, command, labels = lines[0].split("|")
    assert short == cid[:12], f"{engine.name}: .ID is {short!r}, the container is {cid}"
    assert img == image, f"{engine.name}: .Image is {img!r}, created from {image}"
    assert command == "\"sh -c 'exit 3'\"", f"{engine.name}: .Command is {command!r}; docker quotes it: \"sh -c 'exit 3'\""
    assert sorted(labels.split(",")) == sorted([engine.label, group.label, "tier=web"]), \
        f"{engine.name}: .Labels is {labels!r}; docker joins k=v with commas"


@pytest.mark.spec(PS_FORMAT, ".Label \"k\" is the value of one label of the container")
def test_ps_label_column(engine, image):
    group = Group(engine)
    group.create(["--label", "tier=web", image])
    lines = group.ps("-a", "--format", '{{.Label "tier"}}')
    assert lines == ["web"], f"{engine.name}: {{{{.Label \"tier\"}}}} printed {lines}"


@pytest.mark.spec(PS_NO_TRUNC, "--no-trunc: the full 64-character ID and the whole command")
def test_ps_no_trunc(engine, image):
    group = Group(engine)
    name, cid = group.create([image, *LONG_COMMAND])
    short = group.ps("-a", "--format", "{{.ID}} {{.Command}}")
    full = group.ps("-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}")
    whole = "\"echo 'a long command line that is long'\""
    assert full == [f"{cid} {whole}"], f"{engine.name}: ps --no-trunc printed {full}; expected {cid} {whole}"
    assert len(short) == 1 and short[0].startswith(cid[:12] + " \"echo ") and short[0] != f"{cid[:12]} {whole}", \
        f"{engine.name}: without --no-trunc ps printed {short}: the ID is 12 characters and the long command shortened"


@pytest.mark.spec(PS, "-n N shows the N last created containers, -l the latest created one (includes all states)")
def test_ps_last_and_latest(engine, image):
    group = Group(engine)
    first, _ = group.create([image])
    second, _ = group.create([image])
    third, _ = group.create([image])
    last_two = group.ps("-n", "2", "--format", "{{.Names}}")
    assert sorted(last_two) == sorted([second, third]), f"{engine.name}: ps -n 2 listed {last_two}; created {first}, {second}, {third}"
    latest = group.ps("-l", "--format", "{{.Names}}")
    assert latest == [third], f"{engine.name}: ps -l listed {latest}; the latest created is {third}"
