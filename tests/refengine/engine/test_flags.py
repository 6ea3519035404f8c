"""docker's command-line grammar and value parsers (pure)."""

from __future__ import annotations

import pytest

from reference_runtime.engine.flags import (parse_bytes, parse_command, parse_go_duration, parse_restart,
                                            parse_signal, parse_timestamp, split_command)
from reference_runtime.errors import ContainerError


def test_run_stops_parsing_flags_at_the_image():
    p = parse_command("run", ["-d", "--rm", "-e", "A=1", "--env=B=2", "img", "sh", "-c", "--not-a-flag"])
    assert p.opts["detach"] and p.opts["rm"]
    assert p.opts["env"] == ["A=1", "B=2"]
    assert p.args == ["img", "sh", "-c", "--not-a-flag"]


def test_combined_short_flags_and_attached_values():
    p = parse_command("run", ["-dit", "-eX=1", "-w/tmp", "img"])
    assert p.opts["detach"] and p.opts["interactive"] and p.opts["tty"]
    assert p.opts["env"] == ["X=1"] and p.opts["workdir"] == "/tmp"


def test_other_commands_accept_flags_after_operands():
    p = parse_command("rm", ["c1", "-f", "c2", "-v"])
    assert p.args == ["c1", "c2"] and p.opts["force"] and p.opts["volumes"]


def test_bool_flag_with_explicit_value():
    assert parse_command("run", ["--rm=false", "img"]).opts["rm"] is False
    with pytest.raises(ContainerError, match="maybe"):
        parse_command("run", ["--rm=maybe", "img"])


@pytest.mark.parametrize("argv,message", [
    (["--no-such-flag", "img"], "unknown flag: --no-such-flag"),
    (["-Q", "img"], "unknown shorthand flag: 'Q' in -Q"),
    (["--memory", "lots", "img"], 'invalid argument "lots" for "-m, --memory" flag'),
    (["--restart", "sometimes", "img"], "sometimes"),
    (["--pids-limit", "many", "img"], "many"),
    (["--name"], "flag needs an argument: --name"),
    ([], 'requires at least 1 argument'),
])
def test_bad_run_flags_are_one_line_errors(argv, message):
    with pytest.raises(ContainerError) as info:
        parse_command("run", argv)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_commands_and_groups_resolve_aliases():
    assert split_command(["container", "ls", "-a"]) == ("ps", ["-a"])
    assert split_command(["volume", "rm", "v"]) == ("volume rm", ["v"])
    assert split_command(["info"]) == ("system info", [])
    with pytest.raises(ContainerError, match="unknown command"):
        split_command(["frobnicate"])


@pytest.mark.parametrize("text,value", [("16m", 16 << 20), ("1g", 1 << 30), ("512k", 512 << 10), ("1024", 1024),
                                        ("1.5g", int(1.5 * (1 << 30))), ("16MB", 16 << 20), ("7b", 7)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["lots", "", "m", "-1m", "1.2.3m", "16x"])
def test_parse_bytes_rejects(text):
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_parse_restart():
    assert parse_restart("no") == ("no", 0)
    assert parse_restart("on-failure") == ("on-failure", 0)
    assert parse_restart("on-failure:5") == ("on-failure", 5)
    for bad in ("sometimes", "always:3", "on-failure:x", "on-failure:-1", ""):
        with pytest.raises(ValueError):
            parse_restart(bad)


def test_parse_signal():
    assert [parse_signal(s) for s in ("SIGKILL", "KILL", "kill", "9", "SIGRTMIN+1")] == [9, 9, 9, 9, 35]
    for bad in ("SIGNOPE", "0", "65", "-1"):
        with pytest.raises(ValueError):
            parse_signal(bad)


def test_parse_go_duration():
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        parse_go_duration("10 minutes")


def test_durations_beyond_go_s_int64_are_invalid():
    assert parse_go_duration("2562047h") > 0
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration("99999999h")


@pytest.mark.parametrize("value", ["2026-13-45", "2026-01-01T25:61", "garbage", "-5", "nan"])
def test_impossible_times_are_one_wording(value):
    with pytest.raises(ValueError, match=r"^invalid time .*: use RFC 3339"):
        parse_timestamp(value, 0.0)


def test_container_names_are_ascii_and_fit_a_file_name():
    from reference_runtime.engine.spec import valid_container_name

    assert valid_container_name("a" * 255)
    assert not valid_container_name("a" * 256)
    assert not valid_container_name("caf\u00e9")
