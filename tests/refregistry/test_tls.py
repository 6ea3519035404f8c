"""TLS: refregistry serves the certificate of http.tls; clients that trust the
CA get through, others (and wrong host names) are refused."""
import socket
import ssl

import httpx
import pytest

from conformance import pki

from refregistry_testlib import start_server, stop_server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    ca = pki.make_ca()
    cert, key = pki.write_pem(pki.issue(ca, "refregistry", dns=["localhost"], ips=["127.0.0.1"]), directory, "server")
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    server = start_server(directory / "srv", {"http": {"tls": {"certificate": str(cert), "key": str(key)}}})
    server.ca = directory / "ca.crt"
    yield server
    stop_server(server.process)


def test_served_over_https_to_clients_trusting_the_ca(tls_server):
    assert tls_server.url.startswith("https://127.0.0.1:")
    r = httpx.get(f"{tls_server.url}/v2/", verify=ssl.create_default_context(cafile=str(tls_server.ca)))
    assert r.status_code == 200 and r.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    port = tls_server.url.rsplit(":", 1)[1]
    r = httpx.get(f"https://localhost:{port}/v2/", verify=ssl.create_default_context(cafile=str(tls_server.ca)))
    assert r.status_code == 200


def test_clients_without_the_ca_are_refused(tls_server):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server.url}/v2/")


def test_wrong_host_name_is_refused(tls_server):
    port = int(tls_server.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(tls_server.ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch|doesn't match"):
            context.wrap_socket(sock, server_hostname="registry.wrong.test")


def test_plain_http_to_the_tls_port_gets_no_api(tls_server):
    port = tls_server.url.rsplit(":", 1)[1]
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/v2/")
    except httpx.HTTPError:
        return
    assert "Docker-Distribution-API-Version" not in r.headers
