"""rename, port and top: docker top's table read from ps output (pure), and
rename/port on created containers (files only, no kernel)."""

from __future__ import annotations

import json

import pytest

from reference_runtime.engine import cli
from reference_runtime.engine.format import table, top_processes
from reference_runtime.errors import ContainerError

BASE = "localhost/conformance/busybox:base"

PS_EF = """\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 07:01 ?        00:00:02 /sbin/init
root       26666   26665  0 07:34 ?        00:00:00 sleep 1002
root       26668   26666  0 07:34 ?        00:00:00 sh  -c   echo  a
root       26670       1  0 07:34 ?        00:00:00 ps -ef
"""


def test_top_keeps_the_containers_processes_with_whole_commands():
    titles, rows = top_processes(PS_EF, {26666, 26668})
    assert titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert rows == [["root", "26666", "26665", "0", "07:34", "?", "00:00:00", "sleep 1002"],
                    ["root", "26668", "26666", "0", "07:34", "?", "00:00:00", "sh -c echo a"]]


def test_top_keeps_thread_rows_after_a_kept_process():
    out = "PID TID CMD\n7 - sleep\n- 7 -\n8 - other\n- 8 -\n"
    assert top_processes(out, {7})[1] == [["7", "-", "sleep"], ["-", "7", "-"]]


def test_top_needs_a_pid_column():
    with pytest.raises(ContainerError, match="PID field"):
        top_processes("USER COMMAND\nroot sleep\n", {1})


def test_top_table_is_docker_tabwriter_of_20_wide_columns():
    titles, rows = top_processes(PS_EF, {26666})
    lines = table([titles, *rows], min_width=20)
    assert lines[0] == "".join(t.ljust(20) for t in titles[:-1]) + "CMD"
    assert lines[1].index("sleep 1002") == lines[0].index("CMD")
    assert table([["a-cell-of-twenty-chars", "b"]], min_width=20) == ["a-cell-of-twenty-chars   b"]


@pytest.fixture
def root(tmp_path, image_archive):
    from reference_runtime.image.store import ImageStore

    ImageStore(tmp_path / "image").load(image_archive)
    return str(tmp_path)


def call(capsys, root: str, *argv: str) -> tuple[int, str, str]:
    status = cli.main(["--root", root, *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_rename_moves_the_name(root, capsys):
    status, cid, _ = call(capsys, root, "create", "--name", "old", BASE, "true")
    assert status == 0
    assert call(capsys, root, "rename", "old", "new") == (0, "", "")
    status, out, _ = call(capsys, root, "inspect", "new")
    assert status == 0 and json.loads(out)[0]["Id"] == cid.strip() and json.loads(out)[0]["Name"] == "/new"
    assert call(capsys, root, "inspect", "--type", "container", "old")[0] == 1
    assert call(capsys, root, "create", "--name", "old", BASE, "true")[0] == 0  # the old name is free


@pytest.mark.parametrize("new,needle", [
    ("taken", 'The container name "/taken" is already in use'),
    ("first", "same name as its current name"),
    ("b@d", "Invalid container name (b@d)"),
])
def test_rename_refusals_exit_1_and_keep_the_name(root, capsys, new, needle):
    call(capsys, root, "create", "--name", "first", BASE, "true")
    call(capsys, root, "create", "--name", "taken", BASE, "true")
    status, out, err = call(capsys, root, "rename", "first", new)
    assert status == 1 and out == "" and needle in err and err.count("\n") == 1
    assert call(capsys, root, "inspect", "--format", "{{.Name}}", "first")[1] == "/first\n"


def test_port_without_published_ports(root, capsys):
    call(capsys, root, "create", "--name", "cc", BASE, "true")
    assert call(capsys, root, "port", "cc") == (0, "", "")
    status, out, err = call(capsys, root, "port", "cc", "80")
    assert (status, out) == (1, "") and "No public port '80/tcp' published for cc" in err
