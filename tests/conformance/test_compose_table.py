"""suites/compose/README.md carries the table of Compose implementations
generated from the engine profiles: it must not go stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import FIXTURES_DIR, SUITES_DIR
from conformance.errors import ConformanceError
from conformance.listing import COMPOSE_TABLE_BEGIN, COMPOSE_TABLE_END, compose_table
from conformance.profile import ComposeProfile, parse_profile


def test_readme_table_is_the_generated_one():
    readme = (SUITES_DIR / "compose" / "README.md").read_text()
    assert COMPOSE_TABLE_BEGIN in readme and COMPOSE_TABLE_END in readme, "the README lost the table's markers"
    committed = readme.split(COMPOSE_TABLE_BEGIN, 1)[1].split(COMPOSE_TABLE_END, 1)[0].strip()
    generated = "\n".join(compose_table(FIXTURES_DIR)).strip()
    assert committed == generated, (
        "suites/compose/README.md's table differs from the profiles: replace the lines between its markers "
        "with the output of `conformance list --compose-table`")


def test_table_lists_scheme_and_compose_deviations_only(tmp_path: Path):
    engines = tmp_path / "engines"
    engines.mkdir()
    (engines / "a.toml").write_text('name = "a"\nargv = ["a"]\n[compose]\nargv = ["a-compose"]\ncontainer_names = "v2"\n'
                                    '[deviations."compose/test_x.py::test_y"]\nmatch = "x"\n'
                                    'evidence = "a-compose 1 does | not. More detail."\n'
                                    '[deviations."cli/test_x.py::test_z"]\nmatch = "x"\nevidence = "not compose."\n')
    (engines / "b.toml").write_text('name = "b"\nargv = ["b"]\n')
    lines = compose_table(tmp_path)
    assert "| a | `a-compose` | v2: `project-service-1` | 1 |" in lines
    assert "| `test_x.py::test_y` | a-compose 1 does \\| not. |" in lines
    assert not any("test_z" in line or "| b |" in line for line in lines)


def test_compose_table_is_parsed_and_validated():
    profile = parse_profile('name = "x"\nargv = ["x"]\n[compose]\nargv = ["x", "compose"]\ncontainer_names = "v1"\n')
    assert profile.compose == ComposeProfile(("x", "compose"), "v1")
    assert profile.compose.container_name("p", "web", 2) == "p_web_2"
    assert ComposeProfile(("y",), "v2").container_name("p", "web") == "p-web-1"
    assert parse_profile('name = "x"\nargv = ["x"]\n').compose is None
    for bad in ('argv = ["x"]\ncontainer_names = "v3"', 'container_names = "v1"', 'argv = ["x"]\ncontainer_names = "v1"\nextra = 1'):
        with pytest.raises(ConformanceError, match=r"\[compose\]"):
            parse_profile(f'name = "x"\nargv = ["x"]\n[compose]\n{bad}\n')
