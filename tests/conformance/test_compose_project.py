"""conformance.compose.ComposeProject without an engine: the argv, working
directory and environment a compose call gets, and the names it tracks."""

from __future__ import annotations

import json
import re
import sys

import pytest

from conformance.compose import ComposeProject, new_project_name
from conformance.engine import Engine, EngineCallFailed
from conformance.errors import ConformanceError
from conformance.profile import parse_profile

#: A stand-in compose implementation: prints what it was called with.
ECHO = ("import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(), "
        "'env': {k: v for k, v in os.environ.items() if k.startswith(('COMPOSE_', 'CFT_'))}})); "
        "sys.exit(3 if 'fail' in sys.argv else 0)")


def project(tmp_path, scheme="v2") -> ComposeProject:
    profile = parse_profile(f'name = "fake"\nargv = ["fake"]\n[env]\nCFT_FROM_PROFILE = "p"\n'
                            f'[compose]\nargv = {json.dumps([sys.executable, "-c", ECHO])}\ncontainer_names = "{scheme}"\n')
    return ComposeProject(Engine(profile, run_id="t"), tmp_path / "proj")


def test_run_passes_the_project_name_from_the_project_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSE_FILE", "elsewhere.yml")  # the caller's compose settings never leak in
    p = project(tmp_path)
    seen = json.loads(p.run("up", "-d", env={"CFT_EXTRA": "x"}).stdout)
    assert seen == {"argv": ["-p", p.name, "up", "-d"], "cwd": str(tmp_path / "proj"),
                    "env": {"CFT_FROM_PROFILE": "p", "CFT_EXTRA": "x"}}


def test_other_project_names_are_tracked_for_teardown(tmp_path):
    p = project(tmp_path)
    assert json.loads(p.run("ps", project=None, env={"COMPOSE_PROJECT_NAME": "cftenv"}).stdout)["argv"] == ["ps"]
    assert json.loads(p.run("ps", project="cftother").stdout)["argv"] == ["-p", "cftother", "ps"]
    assert p.names_used == {p.name, "cftenv", "cftother"}


def test_check_raises_engine_call_failed(tmp_path):
    p = project(tmp_path)
    assert p.run("fail").returncode == 3
    with pytest.raises(EngineCallFailed, match="exit 3"):
        p.run("fail", check=True)


def test_new_project_names_are_recognisable():
    assert re.fullmatch(r"cft[0-9a-f]{8}", new_project_name())


def test_container_names_follow_the_scheme(tmp_path):
    v1, v2 = project(tmp_path / "a", "v1"), project(tmp_path / "b", "v2")
    assert v1.container_name("web", 2) == f"{v1.name}_web_2"
    assert v2.container_name("web", project="other") == "other-web-1"


def test_a_profile_without_compose_is_refused(tmp_path):
    with pytest.raises(ConformanceError, match=r"no \[compose\] table"):
        ComposeProject(Engine(parse_profile('name = "n"\nargv = ["n"]\n'), run_id="t"), tmp_path)
