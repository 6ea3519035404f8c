"""Variable substitution as the classic builder's shell lexer does it."""

from __future__ import annotations

import pytest

from reference_runtime.build.shellexpand import ExpandError, env_dict, expand, expand_words

ENV = {"A": "a", "EMPTY": "", "SP": "x y"}


@pytest.mark.parametrize("text, expected", [
    ("$A", "a"), ("${A}", "a"), ("pre${A}post", "preapost"), ("$A$A", "aa"),
    ("$UNSET", ""), ("${UNSET}", ""),
    ("${A:-d}", "a"), ("${EMPTY:-d}", "d"), ("${UNSET:-d}", "d"),
    ("${A:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${UNSET:+alt}", ""),
    ("${EMPTY-d}", ""), ("${UNSET-d}", "d"), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("${UNSET:-${A}}", "a"),
    ("'$A'", "$A"), ('"$A"', "a"), ('"\\$A"', "$A"), ("\\$A", "$A"),
    ('"a\\nb"', "a\\nb"), ('"q\\"q"', 'q"q'), ("a\\ b", "a b"),
    ("$", "$"), ("a$", "a$"), ("$-", ""), ("100%", "100%"),
])
def test_expand(text, expected):
    assert expand(text, ENV) == expected


def test_backtick_escape():
    assert expand("a`$A", ENV, "`") == "a$A"
    assert expand("C:\\path", ENV, "`") == "C:\\path"


def test_words_split_unquoted_expansions_only():
    assert expand_words("$SP '$SP' \"$SP\" z", ENV) == ["x", "y", "$SP", "x y", "z"]


@pytest.mark.parametrize("text, message", [
    ("${A", "missing '}'"), ("${}", "bad substitution"), ("${:x}", "bad substitution"),
    ("'open", "matching single-quote"), ('"open', "matching double-quote"),
    ("${UNSET:?must be set}", "UNSET: must be set"), ("${A%x}", "missing ':' in substitution"),
    ("${A:%x}", "unsupported modifier (%)"),
])
def test_errors(text, message):
    with pytest.raises(ExpandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(text, ENV)


def test_env_dict_first_definition_wins():
    assert env_dict(["A=1", "B=x=y", "A=2", "C"]) == {"A": "1", "B": "x=y", "C": ""}
