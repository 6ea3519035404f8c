"""docker's output for the swarm commands, pure: the rows of ``node ls``,
``service ls`` and ``service ps``/``node ps`` (each a dict of the fields its Go
template sees, so ``{{json .}}`` prints what docker prints), their ``--format``
and table rendering through Go's tabwriter (minwidth 10, padding 3, as docker's
formatter.Context), and the texts of ``swarm init``/``join-token`` and the
prefix of ``service logs`` lines.

Sources: docker/cli v20.10 cli/command/{node,service,task}/formatter.go,
task/print.go, service/list.go (AppendServiceStatus), service/logs.go.

>>> print(tabwrite([["ID", "NAME"], ["abc", "web"]]), end="")
ID        NAME
abc       web
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterable

from ..engine.format import human_duration
from ..engine.gotemplate import render


def tabwrite(rows: list[list[str]], minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter (padchar ' ', no flags) over rows of cells, each row a
    line: every cell but a row's last is padded to its column block's width
    (columns are blocks of consecutive rows that have the cell, as Go computes them)."""
    lines = [list(r) for r in rows]
    out: list[str] = []

    def write_lines(first: int, last: int, widths: list[int]) -> None:
        for line in lines[first:last]:
            text = []
            for j, cell in enumerate(line):
                if j < len(widths) and j < len(line) - 1:
                    text.append(cell.ljust(widths[j]))
                else:
                    text.append(cell)
            out.append("".join(text) + "\n")

    def fmt(first: int, last: int, widths: list[int]) -> None:
        column = len(widths)
        this = first
        while this < last:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(first, this, widths)
            first = this
            width = minwidth
            while this < last and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            fmt(first, this, widths + [width])
            first = this
        write_lines(first, last, widths)

    fmt(0, len(lines), [])
    return "".join(out)


def pretty(word: str) -> str:
    """command.PrettyPrint: the first letter upper-cased, the rest lower-cased (and a
    single letter lower-cased, as docker's capitalizeFirst does).

    >>> pretty("running"), pretty(""), pretty("LEADER"), pretty("X")
    ('Running', '', 'Leader', 'x')
    """
    if len(word) == 1:
        return word.lower()
    return word[:1].upper() + word[1:].lower()


def natural_key(text: str) -> list:
    """sortorder.NaturalLess as a key: digit runs compare as numbers.

    >>> sorted(["n10", "n2", "n1"], key=natural_key)
    ['n1', 'n2', 'n10']
    """
    return [(0, int(part), part) if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def truncate_id(value: str) -> str:
    """stringid.TruncateID: 12 characters."""
    return value[:12]


def familiar_image(image: str) -> str:
    """The image as docker's list formats show it: a tagged reference without its
    digest and ``docker.io/library/``; anything else as it is.

    >>> familiar_image("docker.io/library/busybox:latest@sha256:" + "a" * 64)
    'busybox:latest'
    >>> familiar_image("busybox@sha256:" + "a" * 64) == "busybox@sha256:" + "a" * 64
    True
    """
    name, _, _digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return image
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/"):
        if name.startswith(prefix) and name.count("/") - prefix.count("/") <= 1:
            name = name[len(prefix):]
            break
    return name


def parse_time(value: str | None) -> float | None:
    """A Go RFC 3339 (nanosecond) timestamp as a UNIX time; None for none or Go's zero time."""
    if not value or value.startswith("0001-01-01"):
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value)
    if not m:
        return None
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    base = dt.datetime.fromisoformat(m.group(1) + zone).timestamp()
    return base + (int(m.group(2)) / 10 ** len(m.group(2)) if m.group(2) else 0.0)


# -- formats -------------------------------------------------------------------------------


def render_rows(template: str, rows: list[dict], headers: dict[str, str]) -> str:
    """A list command's output: ``table ...`` formats get a header row and
    tabwriter columns, others one rendered line per row."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    if not template.startswith("table"):
        return "".join(render(template, row) + "\n" for row in rows)
    body = template[len("table"):].strip(" ")
    lines = [render(body, headers)] + [render(body, row) for row in rows]
    cells = [cell_row for text in lines for cell_row in (line.split("\t") for line in text.split("\n"))]
    return tabwrite(cells)


def list_format(source: str, quiet: bool, default_table: str, raw: str, raw_quiet: str) -> str:
    """NewListFormat/NewTaskFormat/NewFormat: ``table`` and ``raw`` are names of
    formats, anything else is a template."""
    if source == "table":
        return "{{.ID}}" if quiet else default_table
    if source == "raw":
        return raw_quiet if quiet else raw
    return source


# -- nodes ---------------------------------------------------------------------------------

NODE_TABLE = ("table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t"
              "{{.ManagerStatus}}\t{{.EngineVersion}}")
NODE_RAW = ("node_id: {{.ID}}\\nhostname: {{.Hostname}}\\nstatus: {{.Status}}\\navailability: {{.Availability}}"
            "\\nmanager_status: {{.ManagerStatus}}\\n")
NODE_HEADERS = {"ID": "ID", "Self": "", "Hostname": "HOSTNAME", "Status": "STATUS", "Availability": "AVAILABILITY",
                "ManagerStatus": "MANAGER STATUS", "EngineVersion": "ENGINE VERSION", "TLSStatus": "TLS STATUS"}


def node_row(node: dict, self_id: str) -> dict:
    """The fields of one ``node ls`` row (sorted keys, as docker's ``{{json .}}``)."""
    manager = node.get("ManagerStatus")
    reachability = ""
    if manager:
        reachability = "Leader" if manager.get("Leader") else manager.get("Reachability", "")
    description = node.get("Description") or {}
    return {
        "Availability": pretty((node.get("Spec") or {}).get("Availability", "")),
        "EngineVersion": (description.get("Engine") or {}).get("EngineVersion", ""),
        "Hostname": description.get("Hostname", ""),
        "ID": node.get("ID", ""),
        "ManagerStatus": pretty(reachability),
        "Self": node.get("ID") == self_id,
        "Status": pretty((node.get("Status") or {}).get("State", "")),
        "TLSStatus": "Unknown",
    }


def node_list(nodes: list[dict], self_id: str, source: str, quiet: bool) -> str:
    """``node ls``: sorted by hostname (natural order)."""
    ordered = sorted(nodes, key=lambda n: natural_key(((n.get("Description") or {}).get("Hostname", ""))))
    rows = [node_row(n, self_id) for n in ordered]
    return render_rows(list_format(source, quiet, NODE_TABLE, NODE_RAW, "node_id: {{.ID}}"), rows, NODE_HEADERS)


# -- services ------------------------------------------------------------------------------

SERVICE_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}"
SERVICE_RAW = ("id: {{.ID}}\\nname: {{.Name}}\\nmode: {{.Mode}}\\nreplicas: {{.Replicas}}\\nimage: {{.Image}}"
               "\\nports: {{.Ports}}\\n")
SERVICE_HEADERS = {"ID": "ID", "Name": "NAME", "Mode": "MODE", "Replicas": "REPLICAS", "Image": "IMAGE",
                   "Ports": "PORTS"}


def service_status(services: list[dict], tasks: list[dict], nodes: list[dict]) -> list[dict]:
    """AppendServiceStatus: each service with a ServiceStatus (running tasks on nodes
    that are not down; desired: the replicas, or the global tasks not shut down).
    A ServiceStatus the daemon already gave is kept."""
    up = {n.get("ID") for n in nodes if (n.get("Status") or {}).get("State") != "down"}
    result = []
    for service in services:
        service = dict(service)
        mode = (service.get("Spec") or {}).get("Mode") or {}
        if service.get("ServiceStatus") is None and ("Replicated" in mode or "Global" in mode):
            mine = [t for t in tasks if t.get("ServiceID") == service.get("ID")]
            if "Replicated" in mode:
                desired = (mode["Replicated"] or {}).get("Replicas", 0)
            else:
                desired = sum(1 for t in mine if t.get("DesiredState") != "shutdown")
            running = sum(1 for t in mine if t.get("NodeID") in up
                          and (t.get("Status") or {}).get("State") == "running")
            service["ServiceStatus"] = {"RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": 0}
        result.append(service)
    return result


def service_mode(spec: dict) -> str:
    mode = spec.get("Mode") or {}
    for key, name in (("Global", "global"), ("Replicated", "replicated"), ("ReplicatedJob", "replicated job"),
                      ("GlobalJob", "global job")):
        if key in mode and mode[key] is not None:
            return name
    return ""


def service_replicas(service: dict) -> str:
    """REPLICAS: ``running/desired``, with the per-node maximum or a job's completions."""
    spec = service.get("Spec") or {}
    status = service.get("ServiceStatus") or {}
    running, desired = status.get("RunningTasks", 0), status.get("DesiredTasks", 0)
    completed = status.get("CompletedTasks", 0)
    mode = spec.get("Mode") or {}
    if mode.get("ReplicatedJob") is not None:
        total = mode["ReplicatedJob"].get("TotalCompletions", 0)
        return f"{running}/{desired} ({completed}/{total} completed)"
    if mode.get("GlobalJob") is not None:
        return f"{running}/{desired} ({completed}/{desired + completed} completed)"
    per_node = ((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("MaxReplicas", 0)
    if service_mode(spec) == "replicated" and per_node:
        return f"{running}/{desired} (max {per_node} per node)"
    return f"{running}/{desired}"


def service_ports(endpoint_ports: list[dict] | None) -> str:
    """PORTS: the ingress-published ports, consecutive ones as ranges.

    >>> service_ports([{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
    ...                {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "ingress"}])
    '*:8080-8081->80-81/tcp'
    """
    if endpoint_ports is None:
        return ""
    ordered = sorted(endpoint_ports, key=lambda p: (p.get("Protocol", ""), p.get("PublishedPort", 0)))
    out: list[str] = []
    current: list[Any] | None = None  # [p_start, p_end, t_start, t_end, protocol]

    def text(r: list[Any]) -> str:
        pub = f"{r[0]}-{r[1]}" if r[1] > r[0] else f"{r[0]}"
        tgt = f"{r[2]}-{r[3]}" if r[3] > r[2] else f"{r[2]}"
        return f"*:{pub}->{tgt}/{r[4]}"

    for p in ordered:
        if p.get("PublishMode") != "ingress":
            continue
        published, target, protocol = p.get("PublishedPort", 0), p.get("TargetPort", 0), p.get("Protocol", "")
        r = current or [0, 0, 0, 0, ""]
        is_range, overlaps = r[3] != r[2], target <= r[3]
        # Go's uint32 arithmetic: a smaller port than the range's end wraps to a huge gap
        if protocol != r[4] or (published - r[1]) % (1 << 32) > 1 or (target - r[3]) % (1 << 32) > 1 or \
                (is_range and overlaps):
            if r[0] > 0:
                out.append(text(r))
            current = [published, published, target, target, protocol]
            continue
        r[1], r[3] = published, target
        current = r
    if current and current[0] > 0:
        out.append(text(current))
    return ", ".join(out)


def service_row(service: dict) -> dict:
    spec = service.get("Spec") or {}
    image = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
    return {
        "ID": truncate_id(service.get("ID", "")),
        "Image": familiar_image(image),
        "Mode": service_mode(spec),
        "Name": spec.get("Name", ""),
        "Ports": service_ports((service.get("Endpoint") or {}).get("Ports")),
        "Replicas": service_replicas(service),
    }


def service_list(services: list[dict], source: str, quiet: bool) -> str:
    """``service ls``: sorted by name (natural order)."""
    ordered = sorted(services, key=lambda s: natural_key((s.get("Spec") or {}).get("Name", "")))
    rows = [service_row(s) for s in ordered]
    return render_rows(list_format(source, quiet, SERVICE_TABLE, SERVICE_RAW, "id: {{.ID}}"), rows,
                       SERVICE_HEADERS)


# -- tasks ---------------------------------------------------------------------------------

TASK_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t"
              "{{.Error}}\t{{.Ports}}")
TASK_RAW = ("id: {{.ID}}\\nname: {{.Name}}\\nimage: {{.Image}}\\nnode: {{.Node}}\\ndesired_state: "
            "{{.DesiredState}}\\ncurrent_state: {{.CurrentState}}\\nerror: {{.Error}}\\nports: {{.Ports}}\\n")
TASK_HEADERS = {"ID": "ID", "Name": "NAME", "Image": "IMAGE", "Node": "NODE", "DesiredState": "DESIRED STATE",
                "CurrentState": "CURRENT STATE", "Error": "ERROR", "Ports": "PORTS"}
MAX_ERROR_LENGTH = 30


def task_name(task: dict, service_name: str) -> str:
    """``SERVICE.SLOT``, or ``SERVICE.NODEID`` for a global service's task."""
    slot = task.get("Slot") or 0
    return f"{service_name}.{slot}" if slot else f"{service_name}.{task.get('NodeID', '')}"


def task_rows(tasks: list[dict], service_names: dict[str, str], node_names: dict[str, str], *, trunc: bool,
              table: bool, now: float) -> list[dict]:
    """``service ps`` rows: by name, newest first within a name; in a table, the
    older tasks of a name (its history) indented with docker's `` \\_ ``."""
    named = [(task_name(t, service_names.get(t.get("ServiceID", ""), t.get("ServiceID", ""))), t) for t in tasks]
    named.sort(key=lambda nt: -(parse_time((nt[1].get("CreatedAt"))) or 0.0))
    named.sort(key=lambda nt: natural_key(nt[0]))
    rows = []
    previous = None
    for name, task in named:
        shown = (" \\_ " + name) if table and name == previous else name
        previous = name
        rows.append(task_row(task, shown, node_names.get(task.get("NodeID", ""), task.get("NodeID", "")),
                             trunc=trunc, now=now))
    return rows


def task_row(task: dict, name: str, node: str, *, trunc: bool, now: float) -> dict:
    status = task.get("Status") or {}
    image = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", "")
    error = status.get("Err", "")
    if trunc and len(error) > MAX_ERROR_LENGTH:
        error = error[:MAX_ERROR_LENGTH - 1] + "…"
    since = parse_time(status.get("Timestamp"))
    # Go's time.Since of the zero time is about 2000 years, which HumanDuration calls "292 years"
    elapsed = now - since if since is not None else 292 * 365 * 86400 * 1.0
    ports = ",".join(f"*:{p.get('PublishedPort', 0)}->{p.get('TargetPort', 0)}/{p.get('Protocol', '')}"
                     for p in ((status.get("PortStatus") or {}).get("Ports") or []))
    return {
        "CurrentState": f"{pretty(status.get('State', ''))} {human_duration(elapsed).lower()} ago",
        "DesiredState": pretty(task.get("DesiredState", "")),
        "Error": f'"{error}"' if error else "",
        "ID": truncate_id(task.get("ID", "")) if trunc else task.get("ID", ""),
        "Image": familiar_image(image) if trunc else image,
        "Name": name,
        "Node": node,
        "Ports": ports,
    }


def task_list(tasks: list[dict], service_names: dict[str, str], node_names: dict[str, str], *, source: str,
              quiet: bool, trunc: bool, now: float) -> str:
    """``service ps``/``node ps`` output."""
    template = list_format(source, quiet, TASK_TABLE, TASK_RAW, "id: {{.ID}}")
    rows = task_rows(tasks, service_names, node_names, trunc=trunc, table=template.startswith("table"), now=now)
    return render_rows(template, rows, TASK_HEADERS)


# -- swarm texts ---------------------------------------------------------------------------


def join_instructions(role: str, token: str, addr: str) -> str:
    """printJoinCommand's paragraph for one role.

    >>> print(join_instructions("worker", "SWMTKN-1-x", "10.0.0.1:2377"), end="")
    To add a worker to this swarm, run the following command:
    <BLANKLINE>
        docker swarm join --token SWMTKN-1-x 10.0.0.1:2377
    <BLANKLINE>
    """
    return (f"To add a {role} to this swarm, run the following command:\n\n"
            f"    docker swarm join --token {token} {addr}\n\n")


def init_message(node_id: str, worker_token: str, addr: str) -> str:
    """``swarm init``'s output."""
    return (f"Swarm initialized: current node ({node_id}) is now a manager.\n\n"
            + join_instructions("worker", worker_token, addr)
            + "To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions.\n\n")


def log_prefix(service_name: str, task: dict, node_name: str, *, no_trunc: bool, no_task_ids: bool,
               padding: int) -> str:
    """A ``service logs`` line's context: ``NAME.SLOT.TASKID@NODE`` padded to the
    width of the largest slot, then docker's ``    | ``.

    >>> log_prefix("web", {"ID": "x" * 25, "Slot": 1}, "n1", no_trunc=False, no_task_ids=False, padding=2)
    'web.1.xxxxxxxxxxxx@n1     | '
    """
    slot = task.get("Slot") or 0
    name = f"{service_name}.{slot}"
    if not no_task_ids:
        name += "." + (task.get("ID", "") if no_trunc else truncate_id(task.get("ID", "")))
    pad = " " * max(0, padding - len(str(slot)))
    return f"{name}@{node_name}{pad}    | "


def converged(service: dict, tasks: Iterable[dict], up_nodes: set[str]) -> tuple[bool, int, int]:
    """Whether a service runs what its spec asks (the ``--detach=false`` wait): every
    task the orchestrator wants running runs, as many as the replicas (or one per
    node holding a global task). Returns (converged, running, desired)."""
    spec = service.get("Spec") or {}
    mode = spec.get("Mode") or {}
    wanted = [t for t in tasks if t.get("DesiredState") == "running" and t.get("NodeID", "") in up_nodes | {""}]
    running = [t for t in wanted if (t.get("Status") or {}).get("State") == "running"]
    if "Replicated" in mode:
        desired = (mode["Replicated"] or {}).get("Replicas", 1)
        return len(running) == desired and len(wanted) == desired, len(running), desired
    # a global service: one task per eligible node, which only the orchestrator knows; none yet
    # means it has not placed them (docker's global progress likewise waits for tasks)
    desired = len(wanted)
    return 0 < len(running) == desired, len(running), desired


# -- node inspect --pretty -----------------------------------------------------------------

NODE_PRETTY = """ID:\t\t\t{{.ID}}
{{- if .Name }}
Name:\t\t\t{{.Name}}
{{- end }}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Hostname:              \t{{.Hostname}}
Joined at:             \t{{.CreatedAt}}
Status:
 State:\t\t\t{{.StatusState}}
 {{- if .HasStatusMessage}}
 Message:              \t{{.StatusMessage}}
 {{- end}}
 Availability:         \t{{.SpecAvailability}}
 {{- if .Status.Addr}}
 Address:\t\t{{.StatusAddr}}
 {{- end}}
{{- if .HasManagerStatus}}
Manager Status:
 Address:\t\t{{.ManagerStatusAddr}}
 Raft Status:\t\t{{.ManagerStatusReachability}}
 {{- if .IsManagerStatusLeader}}
 Leader:\t\tYes
 {{- else}}
 Leader:\t\tNo
 {{- end}}
{{- end}}
Platform:
 Operating System:\t{{.PlatformOS}}
 Architecture:\t\t{{.PlatformArchitecture}}
Resources:
 CPUs:\t\t\t{{.ResourceNanoCPUs}}
 Memory:\t\t{{.ResourceMemory}}
{{- if .HasEnginePlugins}}
Plugins:
{{- range $k, $v := .EnginePlugins }}
 {{ $k }}:{{if $v }}\t\t{{ $v }}{{ end }}
{{- end }}
{{- end }}
Engine Version:\t\t{{.EngineVersion}}
{{- if .EngineLabels}}
Engine Labels:
{{- range $k, $v := .EngineLabels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{- end }}
{{- if .HasTLSInfo}}
TLS Info:
 TrustRoot:
{{.TLSInfoTrustRoot}}
 Issuer Subject:\t{{.TLSInfoCertIssuerSubject}}
 Issuer Public Key:\t{{.TLSInfoCertIssuerPublicKey}}
{{- end}}"""


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits.

    >>> bytes_size(20 * 1024 * 1024), bytes_size(1536)
    ('20MiB', '1.5KiB')
    """
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024.0
        i += 1
    return f"{size:.4g}{units[i]}"


def go_time_string(value: str) -> str:
    """time.Time's String() of an RFC 3339 UTC timestamp: ``2009-11-10 23:00:00.5 +0000 UTC``."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?Z", value or "")
    if not m:
        return value or ""
    fraction = (m.group(3) or "").rstrip("0")
    return f"{m.group(1)} {m.group(2)}{'.' + fraction if fraction else ''} +0000 UTC"


def node_pretty(node: dict) -> str:
    """``node inspect --pretty``: docker's human-friendly template over the node."""
    spec, description = node.get("Spec") or {}, node.get("Description") or {}
    status, manager = node.get("Status") or {}, node.get("ManagerStatus")
    engine, resources = description.get("Engine") or {}, description.get("Resources") or {}
    tls = description.get("TLSInfo") or {}
    plugins: dict[str, list[str]] = {}
    for plugin in engine.get("Plugins") or []:
        plugins.setdefault(plugin.get("Type", ""), []).append(plugin.get("Name", ""))
    context = {
        "ID": node.get("ID", ""), "Name": spec.get("Name", ""), "Labels": spec.get("Labels") or {},
        "Hostname": description.get("Hostname", ""), "CreatedAt": pretty(go_time_string(node.get("CreatedAt", ""))),
        "StatusState": pretty(status.get("State", "")), "HasStatusMessage": bool(status.get("Message")),
        "StatusMessage": pretty(status.get("Message", "")), "SpecAvailability": pretty(spec.get("Availability", "")),
        "Status": status, "StatusAddr": status.get("Addr", ""), "HasManagerStatus": manager is not None,
        "ManagerStatusAddr": (manager or {}).get("Addr", ""),
        "ManagerStatusReachability": pretty((manager or {}).get("Reachability", "")),
        "IsManagerStatusLeader": bool((manager or {}).get("Leader")),
        "PlatformOS": (description.get("Platform") or {}).get("OS", ""),
        "PlatformArchitecture": (description.get("Platform") or {}).get("Architecture", ""),
        "ResourceNanoCPUs": int(resources.get("NanoCPUs", 0) / 1e9),
        "ResourceMemory": bytes_size(resources["MemoryBytes"]) if resources.get("MemoryBytes") else "",
        "HasEnginePlugins": bool(plugins), "EnginePlugins": {k: ", ".join(v) for k, v in plugins.items()},
        "EngineVersion": engine.get("EngineVersion", ""), "EngineLabels": engine.get("Labels") or {},
        "HasTLSInfo": any(tls.get(k) for k in ("TrustRoot", "CertIssuerSubject", "CertIssuerPublicKey")),
        # the API carries the two []byte fields base64-encoded already, as docker prints them
        "TLSInfoTrustRoot": tls.get("TrustRoot", ""), "TLSInfoCertIssuerSubject": tls.get("CertIssuerSubject", ""),
        "TLSInfoCertIssuerPublicKey": tls.get("CertIssuerPublicKey", ""),
    }
    return render(NODE_PRETTY, context) + "\n"


# -- service inspect --pretty (docker CLI service/formatter.go serviceInspectPrettyTemplate) --------

SERVICE_PRETTY = (
    '\n'
    'ID:\t\t{{.ID}}\n'
    'Name:\t\t{{.Name}}\n'
    '{{- if .Labels }}\n'
    'Labels:\n'
    '{{- range $k, $v := .Labels }}\n'
    ' {{ $k }}{{if $v }}={{ $v }}{{ end }}\n'
    '{{- end }}{{ end }}\n'
    'Service Mode:\n'
    '{{- if .IsModeGlobal }}\tGlobal\n'
    '{{- else if .IsModeReplicated }}\tReplicated\n'
    '{{- if .ModeReplicatedReplicas }}\n'
    ' Replicas:\t{{ .ModeReplicatedReplicas }}\n'
    '{{- end }}{{ end }}\n'
    '{{- if .HasUpdateStatus }}\n'
    'UpdateStatus:\n'
    ' State:\t\t{{ .UpdateStatusState }}\n'
    '{{- if .HasUpdateStatusStarted }}\n'
    ' Started:\t{{ .UpdateStatusStarted }}\n'
    '{{- end }}\n'
    '{{- if .UpdateIsCompleted }}\n'
    ' Completed:\t{{ .UpdateStatusCompleted }}\n'
    '{{- end }}\n'
    ' Message:\t{{ .UpdateStatusMessage }}\n'
    '{{- end }}\n'
    'Placement:\n'
    '{{- if .TaskPlacementConstraints }}\n'
    ' Constraints:\t{{ .TaskPlacementConstraints }}\n'
    '{{- end }}\n'
    '{{- if .TaskPlacementPreferences }}\n'
    ' Preferences:   {{ .TaskPlacementPreferences }}\n'
    '{{- end }}\n'
    '{{- if .MaxReplicas }}\n'
    ' Max Replicas Per Node:   {{ .MaxReplicas }}\n'
    '{{- end }}\n'
    '{{- if .HasUpdateConfig }}\n'
    'UpdateConfig:\n'
    ' Parallelism:\t{{ .UpdateParallelism }}\n'
    '{{- if .HasUpdateDelay}}\n'
    ' Delay:\t\t{{ .UpdateDelay }}\n'
    '{{- end }}\n'
    ' On failure:\t{{ .UpdateOnFailure }}\n'
    '{{- if .HasUpdateMonitor}}\n'
    ' Monitoring Period: {{ .UpdateMonitor }}\n'
    '{{- end }}\n'
    ' Max failure ratio: {{ .UpdateMaxFailureRatio }}\n'
    ' Update order:      {{ .UpdateOrder }}\n'
    '{{- end }}\n'
    '{{- if .HasRollbackConfig }}\n'
    'RollbackConfig:\n'
    ' Parallelism:\t{{ .RollbackParallelism }}\n'
    '{{- if .HasRollbackDelay}}\n'
    ' Delay:\t\t{{ .RollbackDelay }}\n'
    '{{- end }}\n'
    ' On failure:\t{{ .RollbackOnFailure }}\n'
    '{{- if .HasRollbackMonitor}}\n'
    ' Monitoring Period: {{ .RollbackMonitor }}\n'
    '{{- end }}\n'
    ' Max failure ratio: {{ .RollbackMaxFailureRatio }}\n'
    ' Rollback order:    {{ .RollbackOrder }}\n'
    '{{- end }}\n'
    'ContainerSpec:\n'
    ' Image:\t\t{{ .ContainerImage }}\n'
    '{{- if .ContainerArgs }}\n'
    ' Args:\t\t{{ range $arg := .ContainerArgs }}{{ $arg }} {{ end }}\n'
    '{{- end -}}\n'
    '{{- if .ContainerEnv }}\n'
    ' Env:\t\t{{ range $env := .ContainerEnv }}{{ $env }} {{ end }}\n'
    '{{- end -}}\n'
    '{{- if .ContainerWorkDir }}\n'
    ' Dir:\t\t{{ .ContainerWorkDir }}\n'
    '{{- end -}}\n'
    '{{- if .HasContainerInit }}\n'
    ' Init:\t\t{{ .ContainerInit }}\n'
    '{{- end -}}\n'
    '{{- if .ContainerUser }}\n'
    ' User: {{ .ContainerUser }}\n'
    '{{- end }}\n'
    '{{- if .HasCapabilities }}\n'
    'Capabilities:\n'
    '{{- if .HasCapabilityAdd }}\n'
    ' Add: {{ .CapabilityAdd }}\n'
    '{{- end }}\n'
    '{{- if .HasCapabilityDrop }}\n'
    ' Drop: {{ .CapabilityDrop }}\n'
    '{{- end }}\n'
    '{{- end }}\n'
    '{{- if .ContainerSysCtls }}\n'
    'SysCtls:\n'
    '{{- range $k, $v := .ContainerSysCtls }}\n'
    ' {{ $k }}{{if $v }}: {{ $v }}{{ end }}\n'
    '{{- end }}{{ end }}\n'
    '{{- if .ContainerUlimits }}\n'
    'Ulimits:\n'
    '{{- range $k, $v := .ContainerUlimits }}\n'
    ' {{ $k }}: {{ $v }}\n'
    '{{- end }}{{ end }}\n'
    '{{- if .ContainerMounts }}\n'
    'Mounts:\n'
    '{{- end }}\n'
    '{{- range $mount := .ContainerMounts }}\n'
    ' Target:\t{{ $mount.Target }}\n'
    '  Source:\t{{ $mount.Source }}\n'
    '  ReadOnly:\t{{ $mount.ReadOnly }}\n'
    '  Type:\t\t{{ $mount.Type }}\n'
    '{{- end -}}\n'
    '{{- if .Configs}}\n'
    'Configs:\n'
    '{{- range $config := .Configs }}\n'
    ' Target:\t{{$config.File.Name}}\n'
    '  Source:\t{{$config.ConfigName}}\n'
    '{{- end }}{{ end }}\n'
    '{{- if .Secrets }}\n'
    'Secrets:\n'
    '{{- range $secret := .Secrets }}\n'
    ' Target:\t{{$secret.File.Name}}\n'
    '  Source:\t{{$secret.SecretName}}\n'
    '{{- end }}{{ end }}\n'
    '{{- if .HasLogDriver }}\n'
    'Log Driver:\n'
    '{{- if .HasLogDriverName }}\n'
    ' Name:\t\t{{ .LogDriverName }}\n'
    '{{- end }}\n'
    '{{- if .LogOpts }}\n'
    ' LogOpts:\n'
    '{{- range $k, $v := .LogOpts }}\n'
    '  {{ $k }}{{if $v }}:       {{ $v }}{{ end }}\n'
    '{{- end }}{{ end }}\n'
    '{{ end }}\n'
    '{{- if .HasResources }}\n'
    'Resources:\n'
    '{{- if .HasResourceReservations }}\n'
    ' Reservations:\n'
    '{{- if gt .ResourceReservationNanoCPUs 0.0 }}\n'
    '  CPU:\t\t{{ .ResourceReservationNanoCPUs }}\n'
    '{{- end }}\n'
    '{{- if .ResourceReservationMemory }}\n'
    '  Memory:\t{{ .ResourceReservationMemory }}\n'
    '{{- end }}{{ end }}\n'
    '{{- if .HasResourceLimits }}\n'
    ' Limits:\n'
    '{{- if gt .ResourceLimitsNanoCPUs 0.0 }}\n'
    '  CPU:\t\t{{ .ResourceLimitsNanoCPUs }}\n'
    '{{- end }}\n'
    '{{- if .ResourceLimitMemory }}\n'
    '  Memory:\t{{ .ResourceLimitMemory }}\n'
    '{{- end }}{{ end }}{{ end }}\n'
    '{{- if gt .ResourceLimitPids 0 }}\n'
    '  PIDs:\t\t{{ .ResourceLimitPids }}\n'
    '{{- end }}\n'
    '{{- if .Networks }}\n'
    'Networks:\n'
    '{{- range $network := .Networks }} {{ $network }}{{ end }} {{ end }}\n'
    'Endpoint Mode:\t{{ .EndpointMode }}\n'
    '{{- if .Ports }}\n'
    'Ports:\n'
    '{{- range $port := .Ports }}\n'
    ' PublishedPort = {{ $port.PublishedPort }}\n'
    '  Protocol = {{ $port.Protocol }}\n'
    '  TargetPort = {{ $port.TargetPort }}\n'
    '  PublishMode = {{ $port.PublishMode }}\n'
    '{{- end }} {{ end -}}\n'
    '{{- if .Healthcheck }}\n'
    ' Healthcheck:\n'
    '  Interval = {{ .Healthcheck.Interval }}\n'
    '  Retries = {{ .Healthcheck.Retries }}\n'
    '  StartPeriod =\t{{ .Healthcheck.StartPeriod }}\n'
    '  Timeout =\t{{ .Healthcheck.Timeout }}\n'
    '  {{- if .Healthcheck.Test }}\n'
    '  Tests:\n'
    '\t{{- range $test := .Healthcheck.Test }}\n'
    '\t Test = {{ $test }}\n'
    '  {{- end }} {{ end -}}\n'
    '{{- end }}\n'
    ''
)


def go_duration(ns: int) -> str:
    """time.Duration's String(): ``1m30s``, ``1.5s``, ``250ms``, ``4ns``, ``0s``.

    >>> go_duration(90 * 10**9), go_duration(1_500_000_000), go_duration(250_000_000), go_duration(4), go_duration(0)
    ('1m30s', '1.5s', '250ms', '4ns', '0s')
    """
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(int(ns))

    def fraction(value: int, digits: int) -> str:
        whole, rest = divmod(value, 10 ** digits)
        tail = f"{rest:0{digits}d}".rstrip("0")
        return f"{whole}.{tail}" if tail else f"{whole}"

    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{fraction(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{fraction(u, 6)}ms"
    hours, rest = divmod(u, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = fraction(rest, 9) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def service_pretty(service: dict, now: float, network_names: dict[str, str] | None = None) -> str:
    """``service inspect --pretty``: docker's human-friendly template over the service."""
    spec = service.get("Spec") or {}
    task = spec.get("TaskTemplate") or {}
    cspec = task.get("ContainerSpec") or {}
    mode = spec.get("Mode") or {}
    status = service.get("UpdateStatus") or {}
    update, rollback = spec.get("UpdateConfig"), spec.get("RollbackConfig")
    resources = task.get("Resources")
    limits = (resources or {}).get("Limits") or {}
    reservations = (resources or {}).get("Reservations") or {}
    placement = task.get("Placement") or {}
    log_driver = task.get("LogDriver")
    health = cspec.get("Healthcheck")
    names = network_names or {}

    def ago(stamp: str | None) -> str:
        moment = parse_time(stamp)
        return human_duration(now - moment) + " ago" if moment is not None else ""

    def config(c: dict | None, prefix: str) -> dict:
        c = c or {}
        return {f"{prefix}Parallelism": c.get("Parallelism", 0), f"Has{prefix}Delay": c.get("Delay", 0) > 0,
                f"{prefix}Delay": go_duration(c.get("Delay", 0)), f"{prefix}OnFailure": c.get("FailureAction", ""),
                f"Has{prefix}Monitor": c.get("Monitor", 0) > 0, f"{prefix}Monitor": go_duration(c.get("Monitor", 0)),
                f"{prefix}MaxFailureRatio": float(c.get("MaxFailureRatio", 0)), f"{prefix}Order": c.get("Order", "")}

    context: dict[str, Any] = {
        "ID": service.get("ID", ""), "Name": spec.get("Name", ""), "Labels": spec.get("Labels") or {},
        "IsModeGlobal": mode.get("Global") is not None, "IsModeReplicated": mode.get("Replicated") is not None,
        "ModeReplicatedReplicas": (mode.get("Replicated") or {}).get("Replicas"),
        "HasUpdateStatus": bool(status.get("State")), "UpdateStatusState": status.get("State", ""),
        "HasUpdateStatusStarted": bool(status.get("StartedAt")), "UpdateStatusStarted": ago(status.get("StartedAt")),
        "UpdateIsCompleted": status.get("State") == "completed" and bool(status.get("CompletedAt")),
        "UpdateStatusCompleted": ago(status.get("CompletedAt")), "UpdateStatusMessage": status.get("Message", ""),
        "TaskPlacementConstraints": placement.get("Constraints") or [],
        "TaskPlacementPreferences": ["spread=" + p["Spread"].get("SpreadDescriptor", "")
                                     for p in placement.get("Preferences") or [] if p.get("Spread")],
        "MaxReplicas": placement.get("MaxReplicas", 0),
        "HasUpdateConfig": update is not None, "HasRollbackConfig": rollback is not None,
        **config(update, "Update"), **config(rollback, "Rollback"),
        "ContainerImage": cspec.get("Image", ""), "ContainerArgs": cspec.get("Args") or [],
        "ContainerEnv": cspec.get("Env") or [], "ContainerWorkDir": cspec.get("Dir", ""),
        "HasContainerInit": cspec.get("Init") is not None, "ContainerInit": bool(cspec.get("Init")),
        "ContainerUser": cspec.get("User", ""),
        "HasCapabilities": bool(cspec.get("CapabilityAdd") or cspec.get("CapabilityDrop")),
        "HasCapabilityAdd": bool(cspec.get("CapabilityAdd")),
        "CapabilityAdd": ", ".join(cspec.get("CapabilityAdd") or []),
        "HasCapabilityDrop": bool(cspec.get("CapabilityDrop")),
        "CapabilityDrop": ", ".join(cspec.get("CapabilityDrop") or []),
        "ContainerSysCtls": cspec.get("Sysctls") or {},
        "ContainerUlimits": {u["Name"]: f"{u.get('Soft', 0)}:{u.get('Hard', 0)}" for u in cspec.get("Ulimits") or []},
        "ContainerMounts": [{"Target": m.get("Target", ""), "Source": m.get("Source", ""),
                             "ReadOnly": bool(m.get("ReadOnly")), "Type": m.get("Type", "")}
                            for m in cspec.get("Mounts") or []],
        "Configs": cspec.get("Configs") or [], "Secrets": cspec.get("Secrets") or [],
        "HasLogDriver": log_driver is not None, "HasLogDriverName": bool((log_driver or {}).get("Name")),
        "LogDriverName": (log_driver or {}).get("Name", ""), "LogOpts": (log_driver or {}).get("Options") or {},
        "HasResources": resources is not None,
        "HasResourceReservations": bool(reservations.get("NanoCPUs", 0) > 0 or reservations.get("MemoryBytes", 0) > 0),
        "ResourceReservationNanoCPUs": reservations.get("NanoCPUs", 0) / 1e9,
        "ResourceReservationMemory": bytes_size(reservations["MemoryBytes"]) if reservations.get("MemoryBytes") else "",
        "HasResourceLimits": any(limits.get(k, 0) > 0 for k in ("NanoCPUs", "MemoryBytes", "Pids")),
        "ResourceLimitsNanoCPUs": limits.get("NanoCPUs", 0) / 1e9,
        "ResourceLimitMemory": bytes_size(limits["MemoryBytes"]) if limits.get("MemoryBytes") else "",
        "ResourceLimitPids": limits.get("Pids", 0),
        "Networks": [names.get(n.get("Target", ""), n.get("Target", "")) for n in task.get("Networks") or []],
        "EndpointMode": (spec.get("EndpointSpec") or {}).get("Mode", "") if spec.get("EndpointSpec") else "",
        "Ports": [{"PublishedPort": p.get("PublishedPort", 0), "Protocol": p.get("Protocol", ""),
                   "TargetPort": p.get("TargetPort", 0), "PublishMode": p.get("PublishMode", "")}
                  for p in (service.get("Endpoint") or {}).get("Ports") or []],
        "Healthcheck": None if health is None else {
            "Interval": go_duration(health.get("Interval", 0)), "Retries": health.get("Retries", 0),
            "StartPeriod": go_duration(health.get("StartPeriod", 0)), "Timeout": go_duration(health.get("Timeout", 0)),
            "Test": health.get("Test") or []},
    }
    return render(SERVICE_PRETTY, context) + "\n"
