"""The Compose specification's interpolation and docker compose's dotenv format (pure)."""

from __future__ import annotations

import pytest

from reference_runtime.compose import dotenv
from reference_runtime.compose.errors import ComposeError
from reference_runtime.compose.interpolate import interpolate, interpolate_tree

ENV = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize("template,expected", [
    ("$SET", "value"), ("${SET}", "value"), ("x${SET}y", "xvaluey"), ("$SET-$SET", "value-value"),
    ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${SET:-d}", "value"),
    ("${UNSET-d}", "d"), ("${EMPTY-d}", ""),
    ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("$$", "$"), ("$${SET}", "${SET}"), ("cost $$5", "cost $5"),
    ("${UNSET:-${SET}}", "value"), ("${UNSET:-a ${EMPTY:-b} c}", "a b c"),
    ("${UNSET:-}", ""), ("no dollars", "no dollars"),
])
def test_interpolation_rules(template, expected):
    assert interpolate(template, ENV) == expected


@pytest.mark.parametrize("template,message", [
    ("${UNSET:?must be set}", "required variable UNSET is missing a value: must be set"),
    ("${EMPTY:?}", "required variable EMPTY is missing a value"),
    ("${UNSET?gone}", "required variable UNSET is missing a value: gone"),
])
def test_required_variables(template, message):
    with pytest.raises(ComposeError) as info:
        interpolate(template, ENV)
    assert str(info.value) == message


def test_set_but_empty_passes_the_plain_question_mark():
    assert interpolate("${EMPTY?x}", ENV) == ""


@pytest.mark.parametrize("template", ["${", "${SET", "${1A}", "$", "a $ b", "${SET:-x", "${SET!x}"])
def test_invalid_templates_name_the_key(template):
    with pytest.raises(ComposeError, match=r"invalid interpolation format for services\.web\.image"):
        interpolate_tree({"services": {"web": {"image": template}}}, ENV)


def test_unset_variables_are_reported_once_each_and_become_empty():
    seen = []
    assert interpolate("$A ${A} ${B:-x} $C", {}, seen.append) == "  x "
    assert seen == ["A", "A", "C"]


def test_an_unused_default_is_not_evaluated():
    assert interpolate("${SET:-${NOPE:?boom}}", ENV) == "value"


def test_only_values_are_interpolated_never_keys():
    tree = {"services": {"$SET": {"environment": ["A=$SET"], "scale": 2}}}
    assert interpolate_tree(tree, ENV) == {"services": {"$SET": {"environment": ["A=value"], "scale": 2}}}


def test_dotenv_format():
    text = "\n".join([
        "# a comment", "", "PLAIN=1", "export EXPORTED=2", "SPACED = three ", "SINGLE='lit $PLAIN # kept'",
        'DOUBLE="a\\nb $PLAIN"', "INLINE=x # comment", "EXPANDED=${PLAIN}0", "FROM_CALLER", "NOT_SET",
        "EMPTY=",
    ])
    assert dotenv.parse(text, {"FROM_CALLER": "caller"}) == {
        "PLAIN": "1", "EXPORTED": "2", "SPACED": "three", "SINGLE": "lit $PLAIN # kept", "DOUBLE": "a\nb 1",
        "INLINE": "x", "EXPANDED": "10", "FROM_CALLER": "caller", "EMPTY": "",
    }


@pytest.mark.parametrize("text", ["A='open", 'B="open', "BAD KEY=1"])
def test_dotenv_errors_name_the_file_and_line(text):
    with pytest.raises(ComposeError, match=r"failed to read x\.env: line 1"):
        dotenv.parse(text, source="x.env")


def test_missing_env_file(tmp_path):
    with pytest.raises(ComposeError, match="Couldn't find env file"):
        dotenv.read(str(tmp_path / "none.env"))
