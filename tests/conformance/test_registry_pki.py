"""The test PKI: certificates chain, carry the right names and usages."""

import ssl
import stat
import threading
import socket

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from conformance import pki


@pytest.fixture(scope="module")
def ca():
    return pki.make_ca("unit test CA")


def test_ca_is_a_ca_limited_to_leaves(ca):
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    ca.cert.verify_directly_issued_by(ca.cert)


def test_server_certificate_chains_and_names_its_hosts(ca):
    server = pki.issue(ca, "registry", dns=["localhost"], ips=["127.0.0.1"])
    server.cert.verify_directly_issued_by(ca.cert)
    sans = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = server.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_client_certificate_is_for_client_auth(ca):
    client = pki.issue(ca, "alice", client=True)
    usage = client.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_write_pem_keeps_the_key_private(ca, tmp_path):
    cert, key = pki.write_pem(pki.issue(ca, "x", dns=["x"]), tmp_path / "d", "server")
    assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_tls_handshake_succeeds_only_for_the_right_name_and_ca(ca, tmp_path):
    cert, key = pki.write_pem(pki.issue(ca, "registry", ips=["127.0.0.1"], dns=["localhost"]), tmp_path, "server")
    pki.write_pem(ca, tmp_path, "ca")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(n):
        for _ in range(n):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, args=(3,), daemon=True)
    thread.start()
    trusting = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))

    def handshake(ctx, name):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=name):
                pass

    handshake(trusting, "localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(trusting, "elsewhere.invalid")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(ssl.create_default_context(), "localhost")
    thread.join(10)
    listener.close()
