"""docker's output formats: a Go-template subset for ``--format``
(``{{.Field.Sub}}``, ``{{json .}}``, ``{{index .Labels "k"}}``, ``{{join .X ","}}``,
``{{upper}}``/``{{lower}}``, the ``table`` prefix), tables, human durations
and sizes. Pure.

>>> render("{{.ID}} {{json .Labels}}", {"ID": "abc", "Labels": {"a": "1"}})
'abc {"a":"1"}'
"""

from __future__ import annotations

from ..errors import ContainerError
from . import jsonio


def go_value(value) -> str:
    """How Go's text/template prints a value."""
    if value is None:
        return "<no value>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    return str(value)


def _split_args(expr: str) -> list[str]:
    out, cur, quoted = [], "", False
    for ch in expr:
        if ch == '"':
            quoted = not quoted
            cur += ch
        elif ch == " " and not quoted:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if quoted:
        raise ContainerError(f"template: unterminated quoted string in {{{{{expr}}}}}")
    if cur:
        out.append(cur)
    return out


def _field(data, path: str):
    if path == ".":
        return data
    value = data
    for part in path.lstrip(".").split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            if isinstance(value, dict):
                return None
            raise ContainerError(f"template: can't evaluate field {part} in type {type(value).__name__}")
    return value


def _arg(data, token: str):
    if token.startswith('"') and token.endswith('"'):
        return token[1:-1]
    if token.startswith("."):
        return _field(data, token)
    if token.lstrip("-").isdigit():
        return int(token)
    raise ContainerError(f'template: function "{token}" not defined')


def _eval(expr: str, data):
    parts = [p.strip() for p in expr.split("|")]
    value = None
    for i, part in enumerate(parts):
        tokens = _split_args(part)
        if not tokens:
            raise ContainerError("template: missing value for command")
        fn, args = tokens[0], tokens[1:]
        if i > 0:
            args = args + ["\x00piped"]
        def arg(k):
            return value if args[k] == "\x00piped" else _arg(data, args[k])
        if fn.startswith(".") or fn.startswith('"'):
            value = _arg(data, fn)
        elif fn == "json":
            value = jsonio.dumps(arg(0)).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            value = _Raw(value)
        elif fn == "index":
            container = arg(0)
            key = arg(1)
            value = container.get(key) if isinstance(container, dict) else (container[key] if container else None)
        elif fn == "join":
            value = str(arg(1)).join(str(x) for x in (arg(0) or []))
        elif fn in ("upper", "lower", "title"):
            s = go_value(arg(0))
            value = s.upper() if fn == "upper" else s.lower() if fn == "lower" else s.title()
        elif fn == "println":
            value = _Raw(" ".join(go_value(arg(k)) for k in range(len(args))) + "\n")
        elif fn == "len":
            value = len(arg(0) or [])
        else:
            raise ContainerError(f'template: function "{fn}" not defined')
    return value


class _Raw(str):
    """A string already formatted (json output)."""


def render(template: str, data) -> str:
    out = []
    pos = 0
    while True:
        start = template.find("{{", pos)
        if start < 0:
            out.append(template[pos:])
            break
        end = template.find("}}", start)
        if end < 0:
            raise ContainerError(f"template: unclosed action in {template!r}")
        out.append(template[pos:start])
        expr = template[start + 2:end].strip().strip("-").strip()
        value = _eval(expr, data)
        out.append(value if isinstance(value, _Raw) else go_value(value))
        pos = end + 2
    return "".join(out)


def format_rows(template: str, rows: list[dict], headers: dict[str, str]) -> list[str]:
    """``--format`` over rows; ``table ...`` adds a header and aligns columns."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    if not template.startswith("table"):
        return [render(template, r) for r in rows]
    body = template[5:].lstrip() or "\t".join("{{." + k + "}}" for k in headers)
    head = render(body, {k: v for k, v in headers.items()}) if "{{" in body else body
    lines = [head.split("\t")] + [render(body, r).split("\t") for r in rows]
    return table(lines)


def table(rows: list[list[str]]) -> list[str]:
    """Columns padded like docker's tabwriter (3 spaces between columns)."""
    if not rows:
        return []
    widths = [0] * max(len(r) for r in rows)
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    out = []
    for r in rows:
        cells = [cell.ljust(widths[i] + 3) if i < len(r) - 1 else cell for i, cell in enumerate(r)]
        out.append("".join(cells).rstrip())
    return out


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
        return f"Up {human_duration(now - started)}"
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
