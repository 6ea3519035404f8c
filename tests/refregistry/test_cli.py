"""``refregistry`` on bad input: one line on stderr, exit status 1 (2 for bad
usage), never a traceback."""
import socket
import subprocess

import pytest

from refregistry_testlib import REFREGISTRY


def run(*args, timeout=60):
    return subprocess.run([*REFREGISTRY, *args], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result, status=1, needle=""):
    assert result.returncode == status, result
    assert "Traceback" not in result.stderr
    errors = [l for l in result.stderr.splitlines() if "error" in l]
    assert len(errors) == 1 and needle in errors[0], result.stderr


@pytest.mark.parametrize("text,needle", [
    ("version: 0.1\nstorage: {filesystem: {rootdirectory: /tmp/x}}\nnonsense: 1\n", "nonsense"),
    ("version: 0.1\nstorage: [", "malformed YAML"),
    ("version: 0.1\nhttp: {addr: 'nope'}\nstorage: {filesystem: {rootdirectory: /tmp/x}}\n", "host:port"),
    ("\x00\x01", ""),
])
@pytest.mark.parametrize("command", ["serve", "garbage-collect"])
def test_bad_config(tmp_path, text, needle, command):
    config = tmp_path / "config.yml"
    config.write_text(text)
    assert_one_line_error(run(command, str(config)), needle=needle)


def test_missing_config(tmp_path):
    assert_one_line_error(run("serve", str(tmp_path / "absent.yml")), needle="cannot read configuration")


def test_bad_usage():
    result = run("frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert run("garbage-collect").returncode == 2


def config(tmp_path, extra=""):
    path = tmp_path / "config.yml"
    path.write_text(f"version: 0.1\nhttp: {{addr: '127.0.0.1:0'}}\n"
                    f"storage: {{filesystem: {{rootdirectory: '{tmp_path / 'root'}'}}}}\n{extra}")
    return path


def test_missing_tls_files(tmp_path):
    result = run("serve", str(config(tmp_path, f"http: {{addr: '127.0.0.1:0', tls: {{certificate: "
                                               f"'{tmp_path}/no.crt', key: '{tmp_path}/no.key'}}}}\n")))
    assert_one_line_error(result, needle="http.tls")


def test_missing_htpasswd(tmp_path):
    result = run("serve", str(config(tmp_path, f"auth: {{htpasswd: {{realm: r, path: '{tmp_path}/none'}}}}\n")))
    assert_one_line_error(result, needle="htpasswd")


def test_bad_token_files(tmp_path):
    (tmp_path / "roots.pem").write_text("not a certificate")
    result = run("serve", str(config(tmp_path, f"auth: {{token: {{realm: 'http://x/t', service: s, issuer: i, "
                                               f"rootcertbundle: '{tmp_path}/roots.pem'}}}}\n")))
    assert_one_line_error(result, needle="PEM certificate")


def test_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "config.yml"
        path.write_text(f"version: 0.1\nhttp: {{addr: '127.0.0.1:{port}'}}\n"
                        f"storage: {{filesystem: {{rootdirectory: '{tmp_path / 'root'}'}}}}\n")
        assert_one_line_error(run("serve", str(path)), needle="cannot listen")


def test_unusable_storage(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    path = tmp_path / "config.yml"
    path.write_text(f"version: 0.1\nstorage: {{filesystem: {{rootdirectory: '{tmp_path / 'file'}'}}}}\n")
    assert_one_line_error(run("garbage-collect", str(path)), needle="storage directory")


def test_negative_grace_period(tmp_path):
    assert_one_line_error(run("garbage-collect", str(config(tmp_path)), "--grace-period", "-1"), needle="grace")
