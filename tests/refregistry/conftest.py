"""Fixtures for refregistry's tests (helpers: refregistry_testlib.py)."""
from __future__ import annotations

import httpx
import pytest

from refregistry_testlib import Pusher, Server, start_server, stop_server


@pytest.fixture
def server_factory(tmp_path):
    started: list[Server] = []

    def factory(settings: dict | None = None, name: str = "registry") -> Server:
        server = start_server(tmp_path / name, settings or {})
        started.append(server)
        return server

    yield factory
    for server in started:
        stop_server(server.process)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("plain"), {})
    yield server
    stop_server(server.process)


@pytest.fixture
def client(plain):
    with httpx.Client(base_url=plain.url, timeout=60) as c:
        yield c


@pytest.fixture
def push(client):
    return Pusher(client)
