"""htpasswd lines: bcrypt in Apache's $2y$ form, verified like distribution does."""

import bcrypt
import pytest

from conformance.errors import ConformanceError
from conformance.htpasswd import htpasswd_line, verify, write_htpasswd


def test_line_is_user_and_2y_bcrypt():
    line = htpasswd_line("alice", "pw")
    user, _, hashed = line.partition(":")
    assert user == "alice" and hashed.startswith("$2y$05$")
    assert bcrypt.checkpw(b"pw", ("$2b$" + hashed[4:]).encode())


@pytest.mark.parametrize("user,password,ok", [("alice", "pw", True), ("alice", "PW", False), ("bob", "pw", False)])
def test_verify(user, password, ok):
    assert verify(htpasswd_line("alice", "pw"), user, password) is ok


@pytest.mark.parametrize("user", ["", "a:b", "a\nb"])
def test_bad_user_names_are_refused(user):
    with pytest.raises(ConformanceError, match="htpasswd user name"):
        htpasswd_line(user, "pw")


def test_file_has_one_line_per_user(tmp_path):
    path = write_htpasswd(tmp_path / "htpasswd", {"alice": "a", "bob": "b"})
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["alice", "bob"]
    assert verify(lines[1], "bob", "b")
