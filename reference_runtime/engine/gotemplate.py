"""Go's text/template, the part that docker's ``--format`` users write. Pure.

Templates run over JSON-like data (dicts, lists, strings, numbers, bools,
None). Supported: ``{{.Field.Sub}}``, ``{{.}}``, variables (``$``, ``$x :=``,
``{{range $k, $v := .Map}}``), pipelines with ``|``, parenthesised
pipelines with a field after them (``{{(index .Ports "80/tcp" 0).HostPort}}``),
``if``/``else if``/``else``/``with``/``range``/``end``, comments, the trim
markers ``{{-`` and ``-}}``; Go's functions (``index len print printf
println eq ne lt le gt ge and or not slice``) and docker's (``json join split
lower upper title pad truncate``). A dict value that is callable is a method:
``{{.Label "k"}}`` calls it with its arguments (``ps``'s ``.Label``).

>>> render('{{range $k, $v := .L}}{{$k}}={{$v}};{{end}}', {"L": {"b": "2", "a": "1"}})
'a=1;b=2;'
>>> render('{{if eq .S "up"}}yes{{else}}no{{end}} {{len .Id}}', {"S": "up", "Id": "ab"})
'yes 2'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..errors import ContainerError


class TemplateError(ContainerError):
    """A template that does not parse or cannot run on the data."""


def go_value(value) -> str:
    """How Go's text/template prints a value."""
    if value is None:
        return "<no value>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(v)}" for k, v in sorted(value.items()) if not callable(v)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def go_json(value) -> str:
    """Go's json.Marshal: compact, <>& escaped, non-ASCII kept; methods left out."""
    text = json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not callable(v)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def truth(value) -> bool:
    """Go's template truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float, str, list, tuple, dict)):
        return bool(value)
    return True


# -- lexing -----------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<num>[-+]?(?:\d+\.\d*|\d+)(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.X)


@dataclass
class _Tok:
    kind: str
    text: str
    spaced: bool  # whitespace before it: a field after ")" or "$x" only chains when adjacent


def _lex(expr: str) -> list[_Tok]:
    toks, pos, spaced = [], 0, True
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise TemplateError(f"template: unexpected {expr[pos]!r} in command {expr!r}")
        pos = m.end()
        if m.lastgroup == "space":
            spaced = True
            continue
        toks.append(_Tok(m.lastgroup, m.group(), spaced))
        spaced = False
    return toks


def _split_actions(template: str) -> list[tuple[str, str]]:
    """The template as ("text", s) and ("action", inner) parts, trim markers applied."""
    parts: list[tuple[str, str]] = []
    pos = 0
    while True:
        start = template.find("{{", pos)
        if start < 0:
            parts.append(("text", template[pos:]))
            return parts
        text = template[pos:start]
        inner_start = start + 2
        if template.startswith("- ", inner_start) or template.startswith("-\t", inner_start) \
                or template.startswith("-\n", inner_start):
            text = text.rstrip()
            inner_start += 1
        parts.append(("text", text))
        end = _close(template, inner_start)
        inner = template[inner_start:end]
        pos = end + 2
        if re.search(r"\s-$", inner):
            inner = inner[:-1]
            m = re.match(r"\s*", template[pos:])
            pos += m.end()
        parts.append(("action", inner.strip()))


def _close(template: str, pos: int) -> int:
    """Where the action starting at ``pos`` ends ("}}" outside strings and comments)."""
    quote = None
    i = pos
    if template.startswith("/*", pos) or template.startswith("/*", pos + 1):
        end = template.find("*/", pos)
        if end >= 0:
            i = end + 2
    while i < len(template):
        ch = template[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"`":
            quote = ch
        elif template.startswith("}}", i):
            return i
        i += 1
    raise TemplateError("template: unclosed action")


# -- parsing ------------------------------------------------------------------------------


@dataclass
class _Operand:
    kind: str            # field | var | str | num | bool | nil | ident | pipe
    value: object = None
    chain: tuple[str, ...] = ()


@dataclass
class _Pipeline:
    decl: tuple[str, ...]
    commands: list[list[_Operand]]
    assign: bool = False  # "=" instead of ":="


@dataclass
class _Node:
    kind: str            # text | print | if | range | with
    text: str = ""
    pipe: _Pipeline | None = None
    body: list = field(default_factory=list)
    other: list = field(default_factory=list)


class _Parser:
    def __init__(self, toks: list[_Tok], source: str):
        self.toks, self.i, self.source = toks, 0, source

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise TemplateError(f"template: unexpected end of command {self.source!r}")
        self.i += 1
        return tok

    def pipeline(self, *, stop: str | None = None) -> _Pipeline:
        decl: tuple[str, ...] = ()
        assign = False
        # "$x :=", "$x =", "$i, $e :="
        j = self.i
        names = []
        while j < len(self.toks) and self.toks[j].kind == "var":
            names.append(self.toks[j].text)
            if j + 1 < len(self.toks) and self.toks[j + 1].kind == "comma":
                j += 2
                continue
            j += 1
            break
        if names and j < len(self.toks) and self.toks[j].kind in ("decl", "assign"):
            decl, assign, self.i = tuple(names), self.toks[j].kind == "assign", j + 1
        commands = [self.command(stop)]
        while (tok := self.peek()) is not None and tok.kind == "pipe":
            self.i += 1
            commands.append(self.command(stop))
        return _Pipeline(decl, commands, assign)

    def command(self, stop: str | None) -> list[_Operand]:
        operands = []
        while (tok := self.peek()) is not None and tok.kind not in ("pipe",) and tok.kind != stop:
            operands.append(self.operand())
        if not operands:
            raise TemplateError(f"template: missing value for command in {self.source!r}")
        return operands

    def operand(self) -> _Operand:
        tok = self.take()
        if tok.kind == "field":
            op = _Operand("field", chain=_chain(tok.text))
        elif tok.kind == "var":
            op = _Operand("var", tok.text)
        elif tok.kind == "str":
            try:
                op = _Operand("str", json.loads(tok.text))
            except ValueError:  # a raw newline or an escape JSON lacks: one line, never a traceback
                raise TemplateError(f"template: invalid quoted string {tok.text!r} in {self.source!r}") from None
        elif tok.kind == "raw":
            op = _Operand("str", tok.text[1:-1])
        elif tok.kind == "num":
            op = _Operand("num", float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text))
        elif tok.kind == "ident":
            if tok.text in ("true", "false"):
                op = _Operand("bool", tok.text == "true")
            elif tok.text == "nil":
                op = _Operand("nil")
            else:
                op = _Operand("ident", tok.text)
        elif tok.kind == "lp":
            op = _Operand("pipe", self.pipeline(stop="rp"))
            closing = self.peek()
            if closing is None or closing.kind != "rp":
                raise TemplateError(f"template: unclosed left paren in {self.source!r}")
            self.i += 1
        else:
            raise TemplateError(f"template: unexpected {tok.text!r} in {self.source!r}")
        nxt = self.peek()
        if op.kind in ("var", "pipe") and nxt is not None and nxt.kind == "field" and not nxt.spaced:
            self.i += 1
            op.chain = _chain(nxt.text)
        return op


def _chain(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.split(".") if p)


_KEYWORDS = {"if", "range", "with", "else", "end", "define", "template", "block", "break", "continue"}


def parse(template: str) -> list[_Node]:
    """The template's tree; raises :class:`TemplateError` like Go's parser."""
    root: list[_Node] = []
    stack: list[tuple[_Node, list]] = []  # open blocks and the list being filled
    current = root
    for kind, text in _split_actions(template):
        if kind == "text":
            if text:
                current.append(_Node("text", text=text))
            continue
        if text.startswith("/*"):
            continue
        toks = _lex(text)
        if not toks:
            raise TemplateError("template: missing value for command")
        head = toks[0].text if toks[0].kind == "ident" else ""
        if head in ("if", "range", "with"):
            node = _Node(head, pipe=_Parser(toks[1:], text).pipeline())
            current.append(node)
            stack.append((node, current))
            current = node.body
        elif head == "else":
            if not stack:
                raise TemplateError("template: unexpected {{else}}")
            node, parent = stack[-1]
            if current is node.other:
                raise TemplateError("template: {{else}} after {{else}}")
            current = node.other
            if len(toks) > 1 and toks[1].kind == "ident" and toks[1].text in ("if", "with"):
                # "else if" is an if nested in the else branch, closed by the same {{end}}
                inner = _Node(toks[1].text, pipe=_Parser(toks[2:], text).pipeline())
                current.append(inner)
                stack[-1] = (node, parent)
                stack.append((inner, None))
                current = inner.body
        elif head == "end":
            if not stack:
                raise TemplateError("template: unexpected {{end}}")
            node, parent = stack.pop()
            while parent is None:  # close the chain of "else if"s too
                node, parent = stack.pop()
            current = parent
        elif head in _KEYWORDS:
            raise TemplateError(f"template: {{{{{head}}}}} is not supported")
        else:
            current.append(_Node("print", pipe=_Parser(toks, text).pipeline()))
    if stack:
        raise TemplateError(f"template: unexpected EOF: {{{{{stack[-1][0].kind}}}}} without {{{{end}}}}")
    return root


# -- execution --------------------------------------------------------------------------


def _field(value, name: str):
    if isinstance(value, dict):
        return value.get(name)
    if value is None:
        return None
    raise TemplateError(f"template: can't evaluate field {name} in type {_go_type(value)}")


def _go_type(value) -> str:
    return {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}"}.get(type(value), "interface {}")


def _index(container, *keys):
    value = container
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, "")
        elif isinstance(value, (list, tuple, str)):
            if not isinstance(key, int) or not -1 < key < len(value):
                raise TemplateError(f"template: error calling index: index out of range: {key}")
            value = value[key]
        elif value is None:
            raise TemplateError("template: error calling index: index of untyped nil")
        else:
            raise TemplateError(f"template: error calling index: can't index item of type {_go_type(value)}")
    return value


def _sprint(*args) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_value(arg)
    return out


def _printf(fmt: str, *args) -> str:
    values = iter(args)

    def one(m: re.Match) -> str:
        verb = m.group(2)
        if verb == "%":
            return "%"
        value = next(values, None)
        if verb == "q":
            return json.dumps(go_value(value), ensure_ascii=False)
        if verb == "d" and isinstance(value, (int, float)):
            return f"{int(value):{m.group(1)}d}"
        return f"{go_value(value):{m.group(1).replace('-', '<')}}" if m.group(1) else go_value(value)

    return re.sub(r"%([-0-9]*)([vsdqt%])", one, fmt)


def _compare(op):
    def compare(a, *others):
        if op == "eq":
            return any(a == b for b in others)
        b = others[0]
        try:
            return {"ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
        except TypeError:
            raise TemplateError(f"template: error calling {op}: incompatible types for comparison") from None
    return compare


def _len(value) -> int:
    if value is None:
        raise TemplateError("template: error calling len: len of nil pointer")
    if not isinstance(value, (str, list, tuple, dict)):
        raise TemplateError(f"template: error calling len: len of type {_go_type(value)}")
    return len(value)


def _truncate(s, n: int) -> str:
    s = go_value(s)
    return s[:n] if len(s) > n else s


FUNCTIONS = {
    # Go's builtins
    "index": _index,
    "len": _len,
    "print": _sprint,
    "println": lambda *a: " ".join(go_value(x) for x in a) + "\n",
    "printf": _printf,
    "not": lambda a: not truth(a),
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
    "slice": lambda v, *ix: v[ix[0]:ix[1]] if len(ix) > 1 else v[ix[0]:] if ix else v,
    **{op: _compare(op) for op in ("eq", "ne", "lt", "le", "gt", "ge")},
    # docker's (cli/templates)
    "json": go_json,
    "join": lambda items, sep: sep.join(go_value(x) for x in (items or [])),
    "split": lambda s, sep: go_value(s).split(sep),
    "lower": lambda s: go_value(s).lower(),
    "upper": lambda s: go_value(s).upper(),
    "title": lambda s: go_value(s).title(),
    "pad": lambda s, left, right: " " * left + go_value(s) + " " * right,
    "truncate": _truncate,
}


class _Scope:
    def __init__(self, root):
        self.frames: list[dict] = [{"$": root}]

    def get(self, name: str):
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise TemplateError(f"template: undefined variable: {name}")

    def set(self, name: str, value, *, declare: bool) -> None:
        if declare:
            self.frames[-1][name] = value
            return
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise TemplateError(f"template: undefined variable: {name}")


def _operand(op: _Operand, dot, scope: _Scope):
    if op.kind == "field":
        value = dot
        for name in op.chain:
            value = _field(value, name)
        return value
    if op.kind == "var":
        value = scope.get(op.value)
    elif op.kind == "pipe":
        value = _pipeline(op.value, dot, scope)
    elif op.kind == "ident":
        if op.value not in FUNCTIONS:
            raise TemplateError(f'template: function "{op.value}" not defined')
        return FUNCTIONS[op.value]()
    else:
        return op.value
    for name in op.chain:
        value = _field(value, name)
    return value


def _command(cmd: list[_Operand], dot, scope: _Scope, piped: tuple):
    first, rest = cmd[0], cmd[1:]
    if first.kind == "ident":
        fn = FUNCTIONS.get(first.value)
        if fn is None:
            raise TemplateError(f'template: function "{first.value}" not defined')
        args = [_operand(a, dot, scope) for a in rest] + list(piped)
        try:
            return fn(*args)
        except TypeError:
            raise TemplateError(f"template: wrong number of args for {first.value}: got {len(args)}") from None
    value = _operand(first, dot, scope)
    if callable(value):  # a method of the data, e.g. ps's .Label "k"
        return value(*([_operand(a, dot, scope) for a in rest] + list(piped)))
    if rest or piped:
        raise TemplateError(f"template: can't give argument to non-function {_describe(first)}")
    return value


def _describe(op: _Operand) -> str:
    return "." + ".".join(op.chain) if op.kind == "field" else str(op.value)


def _pipeline(pipe: _Pipeline, dot, scope: _Scope):
    value = None
    for i, cmd in enumerate(pipe.commands):
        value = _command(cmd, dot, scope, (value,) if i else ())
    if pipe.decl and len(pipe.decl) == 1:
        scope.set(pipe.decl[0], value, declare=not pipe.assign)
    return value


def _execute(nodes: list[_Node], dot, scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.text)
        elif node.kind == "print":
            value = _pipeline(node.pipe, dot, scope)
            if not node.pipe.decl:
                out.append(go_value(value))
        elif node.kind in ("if", "with"):
            scope.frames.append({})
            value = _pipeline(node.pipe, dot, scope)
            if truth(value):
                _execute(node.body, value if node.kind == "with" else dot, scope, out)
            else:
                _execute(node.other, dot, scope, out)
            scope.frames.pop()
        elif node.kind == "range":
            _range(node, dot, scope, out)


def _range(node: _Node, dot, scope: _Scope, out: list[str]) -> None:
    pipe = node.pipe
    value = _pipeline(_Pipeline((), pipe.commands), dot, scope)
    if isinstance(value, dict):
        items = sorted((k, v) for k, v in value.items() if not callable(v))
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [(i, i) for i in range(value)]
    elif value is None:
        items = []
    else:
        raise TemplateError(f"template: range can't iterate over {go_value(value)}")
    if not items:
        _execute(node.other, dot, scope, out)
        return
    for key, elem in items:
        frame: dict = {}
        if len(pipe.decl) == 1:
            frame[pipe.decl[0]] = elem
        elif len(pipe.decl) == 2:
            frame[pipe.decl[0]], frame[pipe.decl[1]] = key, elem
        scope.frames.append(frame)
        _execute(node.body, elem, scope, out)
        scope.frames.pop()


def render(template: str, data) -> str:
    """Execute ``template`` on ``data`` like Go's text/template."""
    out: list[str] = []
    _execute(parse(template), data, _Scope(data), out)
    return "".join(out)
