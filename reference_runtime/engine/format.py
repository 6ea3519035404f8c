"""docker's output formats: ``--format`` (Go templates, in
:mod:`.gotemplate`, and the ``table`` prefix), tables, human durations and
sizes. Pure.

>>> render("{{.ID}} {{json .Labels}}", {"ID": "abc", "Labels": {"a": "1"}})
'abc {"a":"1"}'
"""

from __future__ import annotations

import json

from ..errors import ContainerError
from .gotemplate import go_value, render  # noqa: F401 - the formats' entry points, used by every command
from .health import suffix as health_suffix


def documents(template: str | None, docs: list[dict]) -> str:
    """``inspect``-style output: each document through ``--format``, else docker's JSON
    array (4-space indent).

    >>> documents("{{.Name}}\\t!", [{"Name": "a"}]), documents(None, [])
    ('a\\t!\\n', '[]\\n')
    """
    if template:
        template = template.replace("\\t", "\t").replace("\\n", "\n")
        return "".join(render(template, d) + "\n" for d in docs)
    return json.dumps(docs, indent=4) + "\n"


def format_rows(template: str, rows: list[dict], headers: dict[str, str]) -> list[str]:
    """``--format`` over rows; ``table ...`` adds a header and aligns columns."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    if not template.startswith("table"):
        return [render(template, r) for r in rows]
    body = template[5:].lstrip() or "\t".join("{{." + k + "}}" for k in headers)
    head = render(body, {k: v for k, v in headers.items()}) if "{{" in body else body
    lines = [head.split("\t")] + [render(body, r).split("\t") for r in rows]
    return table(lines)


def table(rows: list[list[str]], min_width: int = 0) -> list[str]:
    """Columns padded like docker's tabwriter (3 spaces between columns, each
    column at least ``min_width`` wide: ``docker top`` uses 20)."""
    if not rows:
        return []
    widths = [0] * max(len(r) for r in rows)
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    out = []
    for r in rows:
        cells = [cell.ljust(max(widths[i] + 3, min_width)) if i < len(r) - 1 else cell for i, cell in enumerate(r)]
        out.append("".join(cells).rstrip())
    return out


def top_processes(ps_output: str, pids: set[int]) -> tuple[list[str], list[list[str]]]:
    """dockerd's reading of ``ps`` output for ``docker top``: the titles, and the
    rows of the processes in ``pids`` with the last column (CMD) joined back
    together by single spaces; a thread row (PID "-", ``ps -m``) follows the
    process before it.

    >>> top_processes("UID PID CMD\\nroot 7 sleep  9\\nroot 8 ps\\n", {7})
    (['UID', 'PID', 'CMD'], [['root', '7', 'sleep 9']])
    """
    lines = ps_output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise ContainerError("Couldn't find PID field in ps output")
    col, last = titles.index("PID"), len(titles) - 1
    rows: list[list[str]] = []
    keep = False
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= col:
            continue
        if fields[col] == "-":
            if keep:
                rows.append(fields[:last] + [" ".join(fields[last:])])
            continue
        if not fields[col].isdigit():
            raise ContainerError(f"Unexpected pid '{fields[col]}'")
        keep = int(fields[col]) in pids
        if keep:
            rows.append(fields[:last] + [" ".join(fields[last:])])
    return titles, rows


def ps_command(path: str, args: list[str], *, trunc: bool) -> str:
    """ps's COMMAND: the daemon quotes arguments holding a space with '', the CLI
    shortens to 20 characters ("…" last) unless --no-trunc, then Go-quotes it.

    >>> print(ps_command("sh", ["-c", "exit 3"], trunc=True))
    "sh -c 'exit 3'"
    """
    command = " ".join([path, *(f"'{a}'" if " " in a else a for a in args)])
    if trunc and len(command) > 20:
        command = command[:19] + "…"
    return json.dumps(command, ensure_ascii=False)


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "3 seconds", "About a minute", "2 hours"..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def human_size(n: float) -> str:
    """go-units HumanSize (decimal units, 3 significant digits): ``4.86MB``."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    text = f"{n:.4g}"
    if "e" in text:
        text = f"{n:.0f}"
    return f"{text}{units[i]}"


def container_status(state: dict, now: float, started: float, finished: float) -> str:
    """ps's STATUS column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created"..."""
    status = state["Status"]
    if status == "running":
        return f"Up {human_duration(now - started)}{health_suffix(state)}"
    if status == "paused":
        return f"Up {human_duration(now - started)} (Paused)"
    if status == "restarting":
        return f"Restarting ({state['ExitCode']}) {human_duration(now - finished)} ago"
    if status == "exited":
        return f"Exited ({state['ExitCode']}) {human_duration(now - finished)} ago"
    if status == "removing":
        return "Removal In Progress"
    if status == "dead":
        return "Dead"
    return "Created"
