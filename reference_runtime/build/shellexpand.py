"""Variable substitution in Dockerfile instructions, as the classic builder's
shell lexer does it (moby/buildkit ``frontend/dockerfile/shell/lex.go``).

``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR:+word}``, ``${VAR:?msg}``;
single quotes are literal, double quotes allow ``$`` and escape only ``"``,
``$`` and the escape character; an unquoted escape character escapes the next
character. Quotes are removed. :func:`expand_words` also splits on unquoted
whitespace (expanded values split, quoted ones do not). Pure.

>>> expand("${A:-x}/$B-'$C'", {"B": "b"})
'x/b-$C'
>>> expand_words('a "b c" $V', {"V": "d e"})
['a', 'b c', 'd', 'e']
"""

from __future__ import annotations

from typing import Mapping


class ExpandError(ValueError):
    """A malformed substitution (the message is the lexer's)."""


class _Words:
    __slots__ = ("words", "word", "in_word")

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.raw(ch)

    def raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def string(self, text: str) -> None:
        for ch in text:
            self.char(ch)

    def result(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
        return self.words


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str):
        self.text, self.env, self.escape = text, env, escape
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def process(self, stop: str = "") -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out), words.result()
            if ch == "'":
                part = self.single_quote()
                out.append(part)
                words.raw(part)
            elif ch == '"':
                part = self.double_quote()
                out.append(part)
                words.raw(part)
            elif ch == "$":
                part = self.dollar()
                out.append(part)
                words.string(part)
            else:
                ch = self.next()
                if ch == self.escape:
                    ch = self.next()
                    if not ch:
                        break
                    words.raw(ch)
                else:
                    words.char(ch)
                out.append(ch)
        if stop:
            raise ExpandError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def single_quote(self) -> str:
        self.next()
        end = self.text.find("'", self.pos)
        if end < 0:
            raise ExpandError("unexpected end of statement while looking for matching single-quote")
        part = self.text[self.pos:end]
        self.pos = end + 1
        return part

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpandError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                nxt = self.peek()
                if not nxt:
                    continue
                if nxt in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        start = self.pos
        ch = self.peek()
        if ch.isdigit():
            while self.peek().isdigit():
                self.next()
            return self.text[start:self.pos]
        if ch and ch in "@*#?-$!":  # shell special parameters: one character
            self.next()
            return ch
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.text[start:self.pos]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.env.get(name, "")
        self.next()
        ch = self.peek()
        if not ch:
            raise ExpandError("syntax error: missing '}'")
        if ch in "{}:":
            raise ExpandError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        if ch == ":" or ch in "-+?":
            modifier = self.next() if ch == ":" else ch
            colon = ch == ":"
            try:
                word, _ = self.process("}")
            except ExpandError:
                if not self.peek():
                    raise ExpandError("syntax error: missing '}'") from None
                raise
            found = name in self.env
            value = self.env.get(name, "")
            is_set = bool(value) if colon else found
            if modifier == "+":
                return word if is_set else ""
            if modifier == "-":
                return value if is_set else word
            if modifier == "?":
                if not is_set:
                    raise ExpandError(f"{name}: {word or 'is not allowed to be ' + ('empty' if found else 'unset')}")
                return value
            raise ExpandError(f"unsupported modifier ({modifier}) in substitution")
        if not ch:
            raise ExpandError("syntax error: missing '}'")
        raise ExpandError("missing ':' in substitution")


def expand(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word: quotes removed, variables substituted (unset ones are empty)."""
    return _Lexer(text, env, escape).process()[0]


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Like :func:`expand`, split into words on unquoted whitespace."""
    return _Lexer(text, env, escape).process()[1]


def env_dict(env_list: list[str] | None) -> dict[str, str]:
    """``["K=V", ...]`` -> ``{"K": "V"}``; the first definition of a key wins (as the lexer's lookup)."""
    out: dict[str, str] = {}
    for item in env_list or []:
        key, _, value = item.partition("=")
        out.setdefault(key, value)
    return out
