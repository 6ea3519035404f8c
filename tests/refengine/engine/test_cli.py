"""The CLI's argument errors: exit status 125 and exactly one line on stderr,
never a traceback; other commands' errors exit 1 like docker's CLI."""

from __future__ import annotations

import pytest

from reference_runtime.engine import cli

BASE = "localhost/conformance/busybox:base"


@pytest.mark.parametrize("argv,needle", [
    (["run", "--no-such-flag", BASE, "true"], "unknown flag: --no-such-flag"),
    (["run", "--memory", "lots", BASE, "true"], "lots"),
    (["run", "--restart", "sometimes", BASE, "true"], "sometimes"),
    (["run", "--pids-limit", "many", BASE, "true"], "many"),
    (["run"], "requires at least 1 argument"),
    (["ps", "extra"], "accepts no arguments"),
    (["frobnicate"], "unknown command"),
    (["--bogus", "ps"], "unknown flag: --bogus"),
    (["run", "--restart", "always", "--rm", BASE, "true"], "Conflicting options"),
    (["run", "--pull=never", "localhost/absent:x", "true"], "absent"),
    (["run", "-v", "relative/dst", BASE, "true"], "invalid volume specification"),
    (["run", "--network", "nonet", BASE, "true"], "nonet"),
])
def test_engine_errors_exit_125_with_one_line(loaded_root, capsys, argv, needle):
    status = cli.main(["--root", str(loaded_root), *argv])
    out, err = capsys.readouterr()
    assert status == 125
    assert needle in err
    assert err.count("\n") == 1 and err.startswith("refengine: ")
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def loaded_root(tmp_path_factory, image_archive):
    from reference_runtime.image.store import ImageStore

    root = tmp_path_factory.mktemp("root")
    ImageStore(root / "image").load(image_archive)
    return root


@pytest.mark.parametrize("argv", [["kill", "-s", "SIGNOPE", "c"], ["inspect", "nothing"], ["rm", "nothing"], ["stop", "nothing"],
                                  ["volume", "inspect", "nothing"], ["logs", "nothing"]])
def test_missing_objects_exit_1(tmp_path, capsys, argv):
    status = cli.main(["--root", str(tmp_path), *argv])
    _, err = capsys.readouterr()
    assert status == 1
    assert ("nothing" in err or "SIGNOPE" in err) and "Traceback" not in err


def test_version_answers(tmp_path, capsys):
    assert cli.main(["--root", str(tmp_path), "version"]) == 0
    assert cli.VERSION in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("refengine version ")


def test_one_table_of_commands_and_every_flag_table_has_a_handler():
    from reference_runtime.build import cli as build_cli
    from reference_runtime.engine import commands, flags

    build_cli._specs()  # the builder registers its commands' flags (flags.register)
    builder = {"build", "image prune", "builder prune"}
    assert set(commands.HANDLERS) == set(flags.COMMANDS) - builder
    import importlib

    for name, (module, handler) in commands.HANDLERS.items():
        assert callable(getattr(importlib.import_module(f"reference_runtime.engine.{module}"), handler)), name


@pytest.mark.parametrize("error, command, status", [
    ("usage", "ps", 125), ("engine", "run", 125), ("engine", "create", 125), ("engine", "start", 125),
    ("engine", "rm", 1), ("engine", "build", 1), ("oserror", "run", 125), ("oserror", "build", 1),
    ("interrupt", "run", 130), ("pipe", "logs", 1),
])
def test_one_error_to_exit_status_mapping_for_every_cli(error, command, status, capsys):
    from reference_runtime.engine import exits
    from reference_runtime.errors import ContainerError

    exc = {"usage": exits.UsageError("unknown flag: --x"), "engine": ContainerError("No such container: c"),
           "oserror": PermissionError(13, "Permission denied", "/x"), "interrupt": KeyboardInterrupt(),
           "pipe": BrokenPipeError()}[error]
    assert exits.status_of(exc, command) == status
    err = capsys.readouterr().err
    assert err.count("\n") == (1 if error in ("usage", "engine", "oserror") else 0), err
    if error == "oserror":
        assert err == "refengine: Permission denied: /x\n"
