"""Go templates as ``inspect``/``ps --format`` users write them, ps's
COMMAND column, and docker cp's SRC_PATH/DEST_PATH table (pure)."""

from __future__ import annotations

import json

import pytest

from reference_runtime.engine.copyrules import Dest, destination, probe, renamed
from reference_runtime.engine.format import ps_command
from reference_runtime.engine.gotemplate import TemplateError, go_json, parse, render
from reference_runtime.errors import ContainerError

DOC = {
    "Id": "a" * 64,
    "Name": "/web",
    "Config": {"Env": ["B=2", "PATH=/bin"], "Cmd": ["sh", "-c", "exit 3"], "Entrypoint": None,
               "Labels": {"k": "v", "com.example.note": "a b"}},
    "State": {"Status": "exited", "Running": False, "ExitCode": 3},
    "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}},
    "Mounts": [{"Type": "volume", "Destination": "/data"}, {"Type": "bind", "Destination": "/host"}],
    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}},
}


@pytest.mark.parametrize("template,expected", [
    ("{{json .Config.Env}}", '["B=2","PATH=/bin"]'),
    ('{{index .Config.Labels "com.example.note"}}', "a b"),
    ('{{index .Config.Labels "missing"}}', ""),
    ("{{len .Id}}", "64"),
    ("{{range .Config.Cmd}}[{{.}}]{{end}}", "[sh][-c][exit 3]"),
    ("{{range $i, $a := .Config.Cmd}}{{$i}}:{{$a}} {{end}}", "0:sh 1:-c 2:exit 3 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "com.example.note=a b;k=v;"),
    ("{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}", "exited 3 false"),
    ("{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}", "on-failure 3"),
    ("{{range .Mounts}}{{.Type}} {{.Destination}};{{end}}", "volume /data;bind /host;"),
    ("{{.Name}}", "/web"),
    ('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', "8080"),
    ('{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{(index $conf 0).HostPort}}{{end}}', "80/tcp -> 8080"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "down"),
    ('{{if eq .State.Status "running"}}r{{else if eq .State.Status "exited"}}e{{else}}?{{end}}', "e"),
    ("{{with .HostConfig.RestartPolicy}}{{.Name}}{{end}}", "on-failure"),
    ("{{range .Config.Entrypoint}}x{{else}}none{{end}}", "none"),
    ("{{$n := .Name}}{{range .Config.Cmd}}{{$n}}{{end}}", "/web/web/web"),
    ("{{$.Name}}{{range .Mounts}}{{$.Name}}{{end}}", "/web/web/web"),
    ('{{join .Config.Cmd ","}}', "sh,-c,exit 3"),
    ("{{.Name | upper}}", "/WEB"),
    ('{{split "a:b" ":"}}', "[a b]"),
    ('{{printf "%s=%d" .Name .State.ExitCode}}', "/web=3"),
    ("{{println .Name}}", "/web\n"),
    ("a  {{- .Name -}}  b", "a/webb"),
    ("{{/* a comment */}}x", "x"),
    ("{{.Config.Labels}}", "map[com.example.note:a b k:v]"),
    ("{{.Mounts}}", "[map[Destination:/data Type:volume] map[Destination:/host Type:bind]]"),
    ("{{not .State.Running}} {{and 1 0}} {{or 0 2}} {{ne 1 2}} {{lt 1 2}}", "true 0 2 true true"),
    ('{{"}}"}}', "}}"),
])
def test_templates_users_write(template, expected):
    assert render(template, DOC) == expected


def test_a_callable_is_a_method_and_json_leaves_it_out():
    row = {"ID": "abc", "Label": lambda k: {"tier": "web"}.get(k, "")}
    assert render('{{.Label "tier"}}/{{.Label "none"}}', row) == "web/"
    assert json.loads(go_json(row)) == {"ID": "abc"}


def test_json_escapes_like_go():
    assert go_json({"a": "<&>", "b": "é"}) == '{"a":"\\u003c\\u0026\\u003e","b":"é"}'


@pytest.mark.parametrize("template,message", [
    ("{{frob .Id}}", 'function "frob" not defined'),
    ("{{range .Config.Cmd}}", "without {{end}}"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{.Name", "unclosed action"),
    ("{{(index .Config.Cmd 0}}", "unclosed left paren"),
    ("{{$x}}", "undefined variable"),
])
def test_bad_templates_are_errors(template, message):
    with pytest.raises(TemplateError, match=message.replace("{", "\\{").replace("(", "\\(")):
        render(template, DOC)


def test_runtime_errors():
    with pytest.raises(TemplateError, match="index out of range"):
        render("{{index .Config.Cmd 9}}", DOC)
    with pytest.raises(TemplateError, match="can't evaluate field X in type string"):
        render("{{.Name.X}}", DOC)
    with pytest.raises(TemplateError, match="can't give argument to non-function"):
        render('{{.Name "x"}}', DOC)


def test_parse_nests_else_if_chains():
    tree = parse("{{if .A}}a{{else if .B}}b{{else}}c{{end}}!")
    assert [n.kind for n in tree] == ["if", "text"]
    assert tree[0].other[0].kind == "if" and tree[0].other[0].other[0].text == "c"


@pytest.mark.parametrize("args,trunc,expected", [
    (["-c", "exit 3"], True, "\"sh -c 'exit 3'\""),
    (["-c", "echo a long command line"], True, "\"sh -c 'echo a long …\""),
    (["-c", "echo a long command line"], False, "\"sh -c 'echo a long command line'\""),
    ([], True, '"sh"'),
    (["-c", 'echo "hi"'], False, '"sh -c \'echo \\"hi\\"\'"'),
])
def test_ps_command_column(args, trunc, expected):
    assert ps_command("sh", args, trunc=trunc) == expected


# -- docker cp's SRC_PATH/DEST_PATH table -------------------------------------------------

@pytest.mark.parametrize("src_is_dir,dest,dest_path,expected", [
    (False, Dest(exists=False), "/out/new.txt", "as"),          # created at DEST_PATH
    (False, Dest(exists=True), "/out/old.txt", "as"),           # overwritten
    (False, Dest(exists=True, is_dir=True), "/out", "into"),    # copied into, basename kept
    (True, Dest(exists=False), "/out/new", "as"),               # created, contents copied into it
    (True, Dest(exists=True, is_dir=True), "/out", "into"),     # nested (or content, for /.)
    (True, Dest(exists=True, is_dir=True), "/out/", "into"),
])
def test_cp_destination_rules(src_is_dir, dest, dest_path, expected):
    assert destination(src_is_dir=src_is_dir, dest=dest, dest_path=dest_path) == expected


@pytest.mark.parametrize("src_is_dir,dest,dest_path,message", [
    (False, Dest(exists=False), "/out/missing/", "no such directory"),
    (True, Dest(exists=True), "/out/file", "cannot copy directory"),
    (False, Dest(exists=False, parent_is_dir=False), "/nodir/x", 'directory "/nodir" does not exist'),
])
def test_cp_destination_errors(src_is_dir, dest, dest_path, message):
    with pytest.raises(ContainerError, match=message):
        destination(src_is_dir=src_is_dir, dest=dest, dest_path=dest_path)


def test_cp_probe_and_rename(tmp_path):
    (tmp_path / "d").mkdir()
    assert probe(str(tmp_path / "d")) == Dest(exists=True, is_dir=True, parent_is_dir=True)
    assert probe(str(tmp_path / "nodir" / "x")) == Dest(exists=False, is_dir=False, parent_is_dir=False)
    assert [renamed(n, "new") for n in ("src", "src/sub/y", ".", "./x")] == ["new", "new/sub/y", "new", "new/x"]
