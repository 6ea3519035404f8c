"""What every refengine test leaves behind is removed: at the end of the session,
the bridges, packet-filter chains and DNS servers of every state root a test made
under pytest's temporary directory (a fixture that tears down its own root does
so earlier; this catches roots made by hand, also when a test failed)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _no_network_leftovers(tmp_path_factory):
    yield
    from reference_runtime.net.cleanup import remove_all, remove_orphans

    base = tmp_path_factory.getbasetemp()
    for lock in base.rglob("networks/lock"):
        remove_all(str(lock.parent.parent))
    remove_orphans()  # roots a test deleted before this point
