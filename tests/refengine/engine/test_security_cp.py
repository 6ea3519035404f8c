"""cp's ownership rule: numeric ids only, never a name a name service would map."""

from __future__ import annotations

import io
import tarfile

from reference_runtime.engine.inside import _owned_by


def _tar(*members: tuple[str, int, int, str]) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, uid, gid, uname in members:
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.uname, info.gname = uid, gid, uname, uname
            tar.addfile(info, io.BytesIO(b""))
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r")


def test_owner_replaced_and_names_dropped():
    got = [(m.name, m.uid, m.gid, m.uname, m.gname) for m in _owned_by(_tar(("a", 1234, 5678, "evil")), (0, 0))]
    assert got == [("a", 0, 0, "", "")]


def test_archive_keeps_numeric_ids():
    got = [(m.uid, m.gid, m.uname) for m in _owned_by(_tar(("a", 1234, 5678, "root")), None)]
    assert got == [(1234, 5678, "")]
