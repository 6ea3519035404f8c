"""--format templates, tables and human units (pure)."""

from __future__ import annotations

import json

import pytest

from reference_runtime.engine.format import (container_status, format_rows, go_value, human_duration, human_size,
                                             render)
from reference_runtime.errors import ContainerError

ROW = {"ID": "0123456789ab", "Names": "web", "Status": "Up 3 seconds", "Labels": {"a": "1"}, "N": 2,
       "State": {"Running": True, "ExitCode": 0}}


@pytest.mark.parametrize("template,expected", [
    ("{{.ID}} {{.Names}}", "0123456789ab web"),
    ("{{.State.Running}}/{{.State.ExitCode}}", "true/0"),
    ('{{index .Labels "a"}}', "1"),
    ("{{json .Labels}}", '{"a":"1"}'),
    ("{{.Names | upper}}", "WEB"),
    ("{{ .ID }}", "0123456789ab"),
    ("{{.Labels}}", "map[a:1]"),
    ("{{.Missing}}", "<no value>"),
])
def test_render(template, expected):
    assert render(template, ROW) == expected


def test_json_of_everything_round_trips():
    assert json.loads(render("{{json .}}", ROW)) == ROW


def test_unknown_function_is_an_error():
    with pytest.raises(ContainerError, match="not defined"):
        render("{{frob .ID}}", ROW)


def test_table_has_header_and_aligned_columns():
    lines = format_rows("table {{.ID}}\\t{{.Names}}", [ROW, {**ROW, "ID": "x"}], {"ID": "CONTAINER ID", "Names": "NAMES"})
    assert lines[0].split() == ["CONTAINER", "ID", "NAMES"]
    assert lines[1].index("web") == lines[0].index("NAMES") == lines[2].index("web")


def test_go_values():
    assert go_value([1, "a"]) == "[1 a]" and go_value(None) == "<no value>" and go_value(False) == "false"


def test_human_units():
    assert human_duration(0.4) == "Less than a second"
    assert human_duration(59) == "59 seconds"
    assert human_duration(61) == "About a minute"
    assert human_duration(3 * 3600) == "3 hours"
    assert human_size(1984000) == "1.984MB"
    assert human_size(0) == "0B"


def test_ps_status_column():
    assert container_status({"Status": "running"}, 100, 97, 0) == "Up 3 seconds"
    assert container_status({"Status": "exited", "ExitCode": 3}, 200, 0, 80) == "Exited (3) 2 minutes ago"
    assert container_status({"Status": "created"}, 0, 0, 0) == "Created"
