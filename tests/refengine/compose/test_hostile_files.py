"""Hostile Compose files: refused with one line, quickly, never a traceback."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from reference_runtime.compose import textfile
from reference_runtime.compose.errors import ComposeError
from reference_runtime.compose.interpolate import interpolate_tree
from reference_runtime.compose.loader import LoadOptions, check_project_name, load
from reference_runtime.compose.yaml12 import TooLarge
from reference_runtime.compose.yaml12 import load as load_yaml


def laughs(levels: int, width: int = 10) -> str:
    """The "billion laughs": each level an alias list of ``width`` copies of the one below."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly():
    started = time.monotonic()
    with pytest.raises(TooLarge, match="aliases are expanded"):
        load_yaml(laughs(9))
    assert time.monotonic() - started < 5


def test_small_aliases_still_work():
    assert load_yaml("x: &x {a: 1}\ny: *x\n") == {"x": {"a": 1}, "y": {"a": 1}}


@pytest.mark.parametrize("text,message", [
    ("services:\n  web:\n    image: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper than"),
    ("x-bomb:\n" + "".join("  " + line + "\n" for line in laughs(9).splitlines()) + "services: {}\n",
     "aliases are expanded"),
    ("services: {web: {image: '${'}}", "invalid interpolation format for services.web.image"),
    ("\x00", "yaml:"),
])
def test_hostile_files_are_one_line_errors(tmp_path, text, message):
    (tmp_path / "compose.yaml").write_text(text)
    with pytest.raises(ComposeError, match=message.replace(".", r"\.").replace("$", r"\$").replace("{", r"\{")) \
            as info:
        load(LoadOptions(), environ={}, cwd=str(tmp_path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "directory"])
def test_a_file_that_is_not_a_regular_file_is_refused_without_waiting(tmp_path, special):
    path = tmp_path / "special"
    if special == "fifo":
        os.mkfifo(path)
    elif special == "directory":
        path.mkdir()
    else:
        path = Path(special)
    started = time.monotonic()
    with pytest.raises((ComposeError, IsADirectoryError)):
        textfile.read_text(str(path))
    assert time.monotonic() - started < 5
    (tmp_path / "compose.yaml").write_text(f"services: {{web: {{image: x, env_file: {path}}}}}\n")
    with pytest.raises(ComposeError):
        load(LoadOptions(), environ={}, cwd=str(tmp_path))


def test_oversized_and_non_utf8_files_are_one_line_errors(tmp_path):
    (tmp_path / "big.yaml").write_bytes(b"#" * (textfile.MAX_BYTES + 1))
    with pytest.raises(ComposeError, match="larger than"):
        load(LoadOptions(files=["big.yaml"]), environ={}, cwd=str(tmp_path))
    (tmp_path / "compose.yaml").write_text("services: {web: {image: x}}\n")
    (tmp_path / ".env").write_bytes(b"A=\xff\n")
    with pytest.raises(ComposeError, match="invalid UTF-8"):
        load(LoadOptions(), environ={}, cwd=str(tmp_path))


def test_duplicate_keys_are_an_error_not_last_one_wins():
    with pytest.raises(yaml.YAMLError, match='mapping key "image" already defined at line 1'):
        load_yaml("image: a\nimage: b\n")
    assert load_yaml("a: &a {x: 1}\nb: {<<: *a, x: 2}\n")["b"] == {"x": 2}


def test_interpolation_nested_thousands_deep_or_growing_without_bound_is_refused():
    with pytest.raises(ComposeError, match="invalid interpolation format"):
        interpolate_tree({"a": "${A:-" * 2000 + "x" + "}" * 2000}, {})
    with pytest.raises(ComposeError, match="grow beyond"):
        interpolate_tree({"a": ["${BIG}"] * 100}, {"BIG": "b" * (1 << 20)})


def test_a_project_name_with_a_trailing_newline_is_invalid():
    with pytest.raises(ComposeError, match="invalid project name"):
        check_project_name("demo\n")


def test_an_image_or_network_name_that_looks_like_a_flag_stays_a_name():
    from reference_runtime.compose.normalise import normalise_service
    from reference_runtime.compose.project import Project
    from reference_runtime.compose.translate import create_argv
    from reference_runtime.engine.flags import parse_command

    document = {"services": {"web": normalise_service({"image": "--privileged", "command": ["img", "sh"]}, "/w", "web")}}
    p = Project.build(name="demo", working_dir="/w", config_files=["/w/compose.yaml"], document=document,
                      environment={})
    parsed = parse_command("create", create_argv(p, p.services["web"], 1))
    assert not parsed.opts["privileged"]
    assert parsed.args == ["--privileged", "img", "sh"]


@pytest.mark.parametrize("item", ["web=\u00b2", "web=99999999999999999999999", "web=-1", "web"])
def test_a_scale_that_is_no_count_is_a_one_line_error(item):
    from reference_runtime.compose.commands import _parse_scale

    with pytest.raises(ComposeError, match="invalid scale option"):
        _parse_scale([item])
