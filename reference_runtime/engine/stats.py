"""``refengine stats``: a container's resource usage read from the kernel,
in docker's columns and units.

Where the figures come from (a hybrid cgroup host, like these machines):

- CPU: ``cpu.stat`` ``usage_usec`` of the container's v2 cgroup (the core
  keeps it without any controller), against the host's ``/proc/stat``; the
  percentage is docker's: container delta / system delta x CPUs x 100,
  between two readings.
- memory: with a ``--memory`` limit the container is in a v1 memory cgroup:
  ``memory.usage_in_bytes`` minus ``total_inactive_file`` (what docker's CLI
  subtracts on cgroup v1) and ``memory.limit_in_bytes``. Without one it is
  in no memory cgroup (joining one costs every start a cgroup move): the
  sum of its processes' proportional set sizes, against the host's memory,
  which is also docker's limit for a container without one.
- PIDs: ``pids.current`` of the v1 pids cgroup, else the v2 cgroup's threads.
- block I/O: the ``read_bytes``/``write_bytes`` of the container's processes.
- network: the container's namespace's interfaces but ``lo``, from
  ``/proc/<pid>/net/dev``.

A stopped container has no data: zeros, as docker shows them. The pure part
(:class:`Sample`, :func:`cpu_percent`, :func:`row`, the size formats) is
tested in ``tests/refengine/engine/test_stats.py``.

>>> bytes_size(320 * 1024), human_size_3(1266)
('320KiB', '1.27kB')
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from .cgroups import Cgroup
from .flags import Parsed
from .state import Root

#: docker's default ``stats`` table.
DEFAULT_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
           "PIDs": "PIDS"}
#: Between two readings: docker's daemon samples once a second.
INTERVAL = 1.0
#: ANSI: clear the screen, cursor home; docker's live table starts every redraw with it.
CLEAR = "\033[2J\033[H"

_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]


# -- pure: the figures and docker's formats ----------------------------------------


def _custom_size(size: float, base: float, units: list[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits (``MEM USAGE / LIMIT``).

    >>> bytes_size(0), bytes_size(64 << 20), bytes_size(1.5 * (1 << 30))
    ('0B', '64MiB', '1.5GiB')
    """
    value, unit = _custom_size(float(size), 1024.0, _BINARY)
    return f"{value:.4g}{unit}"


def human_size_3(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits (NET I/O, BLOCK I/O).

    >>> human_size_3(736), human_size_3(27_700_000)
    ('736B', '27.7MB')
    """
    value, unit = _custom_size(float(size), 1000.0, _DECIMAL)
    return f"{value:.3g}{unit}"


@dataclass(frozen=True)
class Sample:
    """One reading of a container (all zero for a stopped one)."""

    cpu_ns: int = 0           # the container's CPU time so far
    system_ns: int = 0        # the host's CPU time so far (every CPU)
    online_cpus: int = 0
    memory: int = 0           # usage without the inactive page cache
    limit: int = 0
    pids: int = 0
    read: int = 0
    written: int = 0
    received: int = 0
    sent: int = 0


def cpu_percent(before: Sample, after: Sample) -> float:
    """docker's calculateCPUPercentUnix: the container's share of the host's CPU time
    between two samples, times the CPUs (100% = one CPU busy).

    >>> cpu_percent(Sample(cpu_ns=0, system_ns=0, online_cpus=2), Sample(cpu_ns=5, system_ns=10, online_cpus=2))
    100.0
    """
    cpu_delta = after.cpu_ns - before.cpu_ns
    system_delta = after.system_ns - before.system_ns
    if cpu_delta > 0 and system_delta > 0:
        return cpu_delta / system_delta * after.online_cpus * 100.0
    return 0.0


def row(ref: str, cid: str, name: str, before: Sample, after: Sample, *, trunc: bool = True) -> dict:
    """The placeholders of ``stats --format`` for one container.

    >>> r = row("web", "ab" * 32, "web", Sample(), Sample(memory=320 << 10, limit=64 << 20, pids=1))
    >>> r["MemUsage"], r["MemPerc"], r["PIDs"], r["ID"]
    ('320KiB / 64MiB', '0.49%', '1', 'abababababab')
    """
    mem_percent = after.memory / after.limit * 100.0 if after.limit else 0.0
    return {
        "Container": ref, "Name": name, "ID": cid[:12] if trunc else cid,
        "CPUPerc": f"{cpu_percent(before, after):.2f}%",
        "MemUsage": f"{bytes_size(after.memory)} / {bytes_size(after.limit)}",
        "MemPerc": f"{mem_percent:.2f}%",
        "NetIO": f"{human_size_3(after.received)} / {human_size_3(after.sent)}",
        "BlockIO": f"{human_size_3(after.read)} / {human_size_3(after.written)}",
        "PIDs": str(after.pids),
    }


def memory_usage(usage: int, stat: dict[str, int]) -> int:
    """docker 20.10's CLI figure on cgroup v1: usage minus ``total_inactive_file`` (when smaller).

    >>> memory_usage(1000, {"total_inactive_file": 300}), memory_usage(100, {"total_inactive_file": 300})
    (700, 100)
    """
    inactive = stat.get("total_inactive_file", stat.get("inactive_file"))
    if inactive is not None and inactive < usage:
        return usage - inactive
    return usage


def parse_net_dev(text: str) -> tuple[int, int]:
    """Received and sent bytes of every interface but ``lo`` in ``/proc/<pid>/net/dev``.

    >>> parse_net_dev("Inter-|..\\n face |..\\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\\n  eth0: 736 8 0 0 0 0 0 0 42 1 0 0 0 0 0 0\\n")
    (736, 42)
    """
    received = sent = 0
    for line in text.splitlines()[2:]:
        iface, _, counters = line.partition(":")
        fields = counters.split()
        if iface.strip() == "lo" or len(fields) < 9:
            continue
        received += int(fields[0])
        sent += int(fields[8])
    return received, sent


def parse_system_cpu(text: str, ticks_per_second: int) -> int:
    """The host's CPU time in ns from ``/proc/stat``: the first seven fields of the ``cpu``
    line (user ... softirq), as docker's getSystemCPUUsage.

    >>> parse_system_cpu("cpu  10 0 5 85 0 0 0 0 0 0\\ncpu0 ...\\n", 100)
    1000000000
    """
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return sum(int(v) for v in fields[1:8]) * 1_000_000_000 // ticks_per_second
    return 0


# -- reading the kernel --------------------------------------------------------------


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _int(path: str) -> int | None:
    try:
        return int(_read(path).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _keyed(path: str) -> dict[str, int]:
    out = {}
    try:
        for line in _read(path).splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                out[key] = int(value)
    except OSError:
        pass
    return out


def host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def _system_ns() -> int:
    try:
        return parse_system_cpu(_read("/proc/stat"), os.sysconf("SC_CLK_TCK"))
    except OSError:
        return 0


def _process_sum(pids: list[int], path: str, keys: tuple[str, ...]) -> list[int]:
    """Sum ``keys`` (``Key: value`` lines) of /proc/<pid>/<path> over ``pids``; gone processes count 0."""
    totals = [0] * len(keys)
    for pid in pids:
        try:
            text = _read(f"/proc/{pid}/{path}")
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key in keys:
                totals[keys.index(key)] += int(value.split()[0])
    return totals


def _cpu_ns(cgroup: Cgroup, pids: list[int]) -> int:
    if cgroup.dir is not None:
        usage = _keyed(f"{cgroup.dir}/cpu.stat").get("usage_usec")
        if usage is not None:
            return usage * 1000
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:  # no v2 cgroup: the live processes' own times
        try:
            data = _read(f"/proc/{pid}/stat")
        except OSError:
            continue
        fields = data[data.rfind(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) * 1_000_000_000 // ticks
    return total


def _memory(cgroup: Cgroup, pids: list[int], host: int) -> tuple[int, int]:
    v1 = cgroup.v1.get("memory")
    if v1 is not None:
        usage = _int(f"{v1}/memory.usage_in_bytes") or 0
        limit = _int(f"{v1}/memory.limit_in_bytes") or host
        return memory_usage(usage, _keyed(f"{v1}/memory.stat")), min(limit, host) if host else limit
    if cgroup.v2_only and cgroup.dir is not None:
        usage = _int(f"{cgroup.dir}/memory.current")
        if usage is not None:
            limit = _int(f"{cgroup.dir}/memory.max") or host  # "max" reads as None: no limit
            return memory_usage(usage, _keyed(f"{cgroup.dir}/memory.stat")), min(limit, host) if host else limit
    (pss,) = _process_sum(pids, "smaps_rollup", ("Pss",))
    return pss * 1024, host


def _pids(cgroup: Cgroup, pids: list[int]) -> int:
    for d in (cgroup.v1.get("pids"), cgroup.dir if cgroup.v2_only else None):
        if d is not None:
            current = _int(f"{d}/pids.current")
            if current is not None:
                return current
    if cgroup.dir is not None:
        try:
            return len(_read(f"{cgroup.dir}/cgroup.threads").split())
        except OSError:
            pass
    return len(pids)


def sample(cid: str, pid: int, network_mode: str) -> Sample:
    """Read a running container (``pid``: its first process)."""
    cgroup = Cgroup(cid)
    pids = cgroup.pids() or [pid]
    host = host_memory()
    memory, limit = _memory(cgroup, pids, host)
    read, written = _process_sum(pids, "io", ("read_bytes", "write_bytes"))
    received = sent = 0
    if network_mode != "host":  # docker shows no networks for the host's
        try:
            received, sent = parse_net_dev(_read(f"/proc/{pid}/net/dev"))
        except OSError:
            pass
    return Sample(cpu_ns=_cpu_ns(cgroup, pids), system_ns=_system_ns(), online_cpus=os.cpu_count() or 1,
                  memory=memory, limit=limit, pids=_pids(cgroup, pids), read=read, written=written,
                  received=received, sent=sent)


# -- the command --------------------------------------------------------------------------


@dataclass
class _Target:
    ref: str    # as the user wrote it (.Container)
    cid: str


def _targets(root: Root, p: Parsed) -> list[_Target]:
    from .runtime import container_records

    if p.args:
        return [_Target(ref, root.find(ref)) for ref in p.args]  # a missing one fails the command: docker exits 1
    show_all = bool(p.opts.get("all"))
    return [_Target(c["Name"][1:], c["Id"]) for c, s in container_records(root) if show_all or s["Running"]]


def _read_all(root: Root, targets: list[_Target]) -> dict[str, tuple[str, Sample]]:
    """name and sample of each target; a container removed meanwhile is left out."""
    from ..errors import ContainerError

    out = {}
    for t in targets:
        try:
            config, state = root.read_config(t.cid), root.read_state(t.cid)
        except (ContainerError, ValueError):
            continue
        running = state["Running"] and state["Pid"] and state["Status"] != "restarting"
        out[t.cid] = (config["Name"][1:],
                      sample(t.cid, state["Pid"], config["HostConfig"]["NetworkMode"]) if running else Sample())
    return out


def _table(p: Parsed, targets: list[_Target], before: dict, after: dict) -> list[str]:
    from .format import render, table

    template = (p.opts.get("format") or DEFAULT_FORMAT).replace("\\t", "\t").replace("\\n", "\n")
    rows = [row(t.ref, t.cid, after[t.cid][0], before.get(t.cid, after[t.cid])[1], after[t.cid][1],
                trunc=not p.opts.get("no_trunc"))
            for t in targets if t.cid in after]
    if not template.startswith("table"):
        return [render(template, r) for r in rows]
    body = template[5:].lstrip() or DEFAULT_FORMAT[6:]
    cells = [render(body, HEADERS).split("\t")] + [render(body, r).split("\t") for r in rows]
    return table(cells, min_width=10)  # docker's tabwriter: min width 10, padding 3


def cmd_stats(root: Root, p: Parsed) -> int:
    """``stats [-a] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]``."""
    targets = _targets(root, p)
    before = _read_all(root, targets)
    while True:
        time.sleep(INTERVAL)
        if not p.args:  # a live view of every (running) container follows new ones
            targets = _targets(root, p) if not p.opts.get("no_stream") else targets
        after = _read_all(root, targets)
        lines = _table(p, targets, before, after)
        if p.opts.get("no_stream"):
            sys.stdout.write("".join(line + "\n" for line in lines))
            return 0
        sys.stdout.write(CLEAR + "".join(line + "\n" for line in lines))
        sys.stdout.flush()
        before = after

