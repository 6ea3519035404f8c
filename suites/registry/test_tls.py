"""TLS: the registry serves a certificate from the test CA; clients trusting
that CA connect, others are refused, and so is a wrong host name."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import httpx
import pytest

from .conftest import DOCKER_INSECURE, TLS, describe


def _host_port(registry) -> tuple[str, int]:
    parts = urlsplit(registry.url)
    return parts.hostname, parts.port or 443


def _handshake(host: str, port: int, context: ssl.SSLContext, server_hostname: str) -> None:
    with socket.create_connection((host, port), timeout=30) as sock:
        with context.wrap_socket(sock, server_hostname=server_hostname):
            pass


@pytest.fixture
def tls_registry(registry, request):
    """The main registry if it is served over https (a --registry URL), else the suite's TLS configuration."""
    reg = registry if registry.url.startswith("https://") else request.getfixturevalue("registry_basic")
    if not reg.url.startswith("https://") or not reg.endpoint.ca:
        pytest.skip("needs an https registry and its CA (--registry-ca, or --registry-impl)")
    return reg


@pytest.mark.spec(TLS, "served over TLS with the configured certificate: a client trusting its CA connects")
@pytest.mark.requires("tls")
def test_client_trusting_the_ca_connects(tls_registry):
    with tls_registry.client() as c:
        r = c.get("/v2/")
        assert r.status_code == 200, describe(r)
        assert r.url.scheme == "https"


@pytest.mark.spec(DOCKER_INSECURE, "a client that does not trust the registry's CA is refused (certificate verify failed)")
@pytest.mark.requires("tls")
def test_client_not_trusting_the_ca_is_refused(tls_registry):
    host, port = _host_port(tls_registry)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(host, port, ssl.create_default_context(), host)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(tls_registry.url + "/v2/", verify=True, timeout=30)


@pytest.mark.spec(DOCKER_INSECURE, "a certificate for another host name is refused even from a trusted CA")
@pytest.mark.requires("tls")
def test_wrong_host_name_is_refused(tls_registry):
    host, port = _host_port(tls_registry)
    context = ssl.create_default_context(cafile=str(tls_registry.endpoint.ca))
    _handshake(host, port, context, host)  # the right name passes with the same context
    with pytest.raises(ssl.SSLCertVerificationError, match="(?i)hostname|match"):
        _handshake(host, port, context, "wrong-host.invalid")


@pytest.mark.spec(TLS, "the TLS port does not serve the API in plain HTTP")
@pytest.mark.requires("tls")
def test_plain_http_on_the_tls_port_gets_no_api(tls_registry):
    host, port = _host_port(tls_registry)
    try:
        r = httpx.get(f"http://{host}:{port}/v2/", timeout=30)
    except httpx.HTTPError:
        return  # connection refused or reset: no API either
    assert r.status_code == 400 and "Docker-Distribution-API-Version" not in r.headers, describe(r)
