"""The swarm CA, node certificates, and mutual TLS over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from reference_runtime.swarm import ca
from reference_runtime.swarm.errors import CertificateError, Code, RpcError, SwarmError
from reference_runtime.swarm.ids import new_id
from reference_runtime.swarm.token import format_token, new_secret, role_for_token
from reference_runtime.swarm.wire import ANONYMOUS_MAX_FRAME, RpcClient, RpcServer, peer_identity

CLUSTER = new_id()


def run(coroutine, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


@pytest.fixture(scope="module")
def root():
    return ca.RootCA.create()


def node(root_ca: ca.RootCA, role: str, cluster: str = CLUSTER, node_id: str | None = None):
    """(cert_pem, key_pem, node_id) of a new node of ``role``."""
    node_id = node_id or new_id()
    key_pem, csr_pem = ca.make_key_and_csr()
    return root_ca.issue(csr_pem, node_id, role, cluster), key_pem, node_id


# The root CA


def test_root_ca_is_dockers(root):
    cert = x509.load_pem_x509_certificate(root.cert_pem)
    assert cert.subject.rfc4514_string() == "CN=swarm-ca" and cert.issuer == cert.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    now = datetime.now(timezone.utc)
    assert timedelta(minutes=59) < now - cert.not_valid_before_utc < timedelta(minutes=61)
    assert abs(cert.not_valid_after_utc - now - timedelta(days=7300)) < timedelta(minutes=1)
    assert len(root.digest) == 50


def test_save_and_load(root, tmp_path):
    directory = tmp_path / "swarm" / "certificates"
    root.save(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "swarm-root-ca.key").stat().st_mode) == 0o600
    assert (directory / "swarm-root-ca.crt").read_bytes() == root.cert_pem
    assert ca.RootCA.load(directory) == root
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []

    worker_copy = tmp_path / "worker"
    ca.RootCA(root.cert_pem).save(worker_copy)  # workers keep the certificate only
    assert sorted(p.name for p in worker_copy.iterdir()) == ["swarm-root-ca.crt"]
    loaded = ca.RootCA.load(worker_copy)
    assert loaded.key_pem is None and loaded.digest == root.digest
    with pytest.raises(CertificateError, match="only managers sign"):
        loaded.issue(ca.make_key_and_csr()[1], new_id(), "worker", CLUSTER)

    with pytest.raises(SwarmError, match="cannot read the swarm root CA"):
        ca.RootCA.load(tmp_path / "nothing")


def test_a_root_ca_must_be_whole(root):
    other = ca.RootCA.create()
    with pytest.raises(CertificateError, match="does not belong"):
        ca.RootCA(root.cert_pem, other.key_pem)
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        ca.RootCA(b"garbage")
    cert_pem, _, _ = node(root, "manager")
    with pytest.raises(CertificateError, match="self-signed CA"):
        ca.RootCA(cert_pem)


def test_node_certificate_files(root, tmp_path):
    cert_pem, key_pem, _ = node(root, "worker")
    ca.save_node_certificate(tmp_path / "certs", cert_pem, key_pem)
    assert stat.S_IMODE((tmp_path / "certs" / "swarm-node.key").stat().st_mode) == 0o600
    assert ca.load_node_certificate(tmp_path / "certs") == (cert_pem, key_pem)
    with pytest.raises(SwarmError, match="cannot read this node's certificate"):
        ca.load_node_certificate(tmp_path)


# Node certificates


@pytest.mark.parametrize("role, names", [
    ("manager", ["swarm-manager", "NODE", "swarm-ca"]),
    ("worker", ["swarm-worker", "NODE"]),
])
def test_issued_certificate_fields(root, role, names):
    key_pem, csr_pem = ca.make_key_and_csr()
    node_id = new_id()
    cert = x509.load_pem_x509_certificate(root.issue(csr_pem, node_id, role, CLUSTER))
    subject = {a.oid: a.value for a in cert.subject}
    assert subject == {NameOID.COMMON_NAME: node_id, NameOID.ORGANIZATIONAL_UNIT_NAME: f"swarm-{role}",
                       NameOID.ORGANIZATION_NAME: CLUSTER}
    assert cert.issuer == x509.load_pem_x509_certificate(root.cert_pem).subject
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(root.cert_pem))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [n.replace("NODE", node_id) for n in names]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=90, hours=1)
    own_key = serialization.load_pem_private_key(key_pem, None)
    assert cert.public_key() == own_key.public_key()
    assert ca.node_identity(cert.public_bytes(serialization.Encoding.PEM)) == (node_id, role, CLUSTER)


def csr_for(key, subject=x509.Name([])) -> bytes:
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def test_the_node_does_not_choose_its_identity(root):
    key = ec.generate_private_key(ec.SECP256R1())
    claimed = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "swarm-manager")])
    cert_pem = root.issue(csr_for(key, claimed), "n1", "worker", CLUSTER)
    assert ca.node_identity(cert_pem) == ("n1", "worker", CLUSTER)


def test_bad_signing_requests_are_refused(root):
    with pytest.raises(CertificateError, match="ECDSA P-256"):
        root.issue(csr_for(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "n", "worker", CLUSTER)
    with pytest.raises(CertificateError, match="ECDSA P-256"):
        root.issue(csr_for(ec.generate_private_key(ec.SECP384R1())), "n", "worker", CLUSTER)
    with pytest.raises(CertificateError, match="invalid certificate signing request"):
        root.issue(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                   "n", "worker", CLUSTER)
    with pytest.raises(CertificateError, match="larger than"):
        root.issue(b"x" * 20000, "n", "worker", CLUSTER)
    # a request signed by another key than the one it asks a certificate for
    der = bytearray(x509.load_pem_x509_csr(ca.make_key_and_csr()[1]).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CertificateError):
        root.issue(tampered, "n", "worker", CLUSTER)
    _, csr_pem = ca.make_key_and_csr()
    with pytest.raises(CertificateError, match="role"):
        root.issue(csr_pem, "n", "admin", CLUSTER)
    with pytest.raises(CertificateError, match="invalid node ID"):
        root.issue(csr_pem, "n,O=other", "worker", CLUSTER)
    with pytest.raises(CertificateError, match="invalid cluster ID"):
        root.issue(csr_pem, "n", "worker", "")


# Mutual TLS over loopback


@pytest.fixture(scope="module")
def manager(root):
    return node(root, "manager")


def member_server(root, manager, *, cluster_id=CLUSTER, allow_anonymous=True, tokens=None):
    """A manager's server: whoami for members, the join methods for everyone."""
    seen = []

    async def whoami(params, peer):
        seen.append(peer)
        return {"node_id": peer.node_id, "role": peer.role, "cluster_id": peer.cluster_id}

    async def issue(csr_pem, role, peer):
        node_id = new_id()
        return {"node_id": node_id, "certificate": root.issue(csr_pem, node_id, role, CLUSTER).decode()}

    tokens = tokens or {}
    handlers = {"whoami": whoami, **ca.join_handlers(lambda: root.cert_pem, lambda t: role_for_token(t, tokens), issue)}
    server = RpcServer(handlers, cluster_id=cluster_id, open_methods=ca.JOIN_METHODS)
    context = ca.server_context(manager[0], manager[1], root.cert_pem, allow_anonymous=allow_anonymous)
    return server, context, seen


@contextlib.asynccontextmanager
async def listening(server, context):
    host, port = await server.listen_tcp("127.0.0.1", 0, context)
    try:
        yield port
    finally:
        await server.close()


def test_a_member_is_accepted_and_known(root, manager):
    async def main():
        server, context, seen = member_server(root, manager)
        async with listening(server, context) as port:
            for role in ("worker", "manager"):
                cert_pem, key_pem, node_id = node(root, role)
                client = RpcClient.tcp("127.0.0.1", port, ca.client_context(cert_pem, key_pem, root.cert_pem))
                assert await client.call("whoami", {}) == {"node_id": node_id, "role": role, "cluster_id": CLUSTER}
                assert await client.call("whoami", {}) == {"node_id": node_id, "role": role, "cluster_id": CLUSTER}
                await client.close()
                assert seen[-1].address.startswith("127.0.0.1:") and not seen[-1].local
    run(main())


def refused(client: RpcClient, method: str = "whoami"):
    async def attempt():
        with pytest.raises(RpcError) as e:
            await client.call(method, {}, timeout=5)
        await client.close()
        return e.value
    return attempt()


def test_a_certificate_of_another_ca_is_refused(root, manager):
    async def main():
        server, context, seen = member_server(root, manager)
        async with listening(server, context) as port:
            stranger = ca.RootCA.create()
            cert_pem, key_pem, _ = node(stranger, "manager")
            # it trusts our CA, so it gets as far as the server's verdict on its own certificate
            client = RpcClient.tcp("127.0.0.1", port, ca.client_context(cert_pem, key_pem, root.cert_pem))
            assert (await refused(client)).code == Code.UNAVAILABLE
            # and a node of the other CA does not trust our manager at all
            client = RpcClient.tcp("127.0.0.1", port, ca.client_context(cert_pem, key_pem, stranger.cert_pem))
            error = await refused(client)
            assert error.code == Code.UNAVAILABLE and "certificate verify failed" in error.message
        assert seen == []
    run(main())


def test_a_certificate_of_another_cluster_is_refused(root, manager):
    async def main():
        server, context, seen = member_server(root, manager)
        async with listening(server, context) as port:
            cert_pem, key_pem, _ = node(root, "manager", cluster=new_id())
            client = RpcClient.tcp("127.0.0.1", port, ca.client_context(cert_pem, key_pem, root.cert_pem))
            assert (await refused(client)).code == Code.UNAVAILABLE
        assert seen == []
    run(main())


def test_only_managers_serve(root):
    """A worker's certificate cannot stand in for a manager's: clients check the name."""
    async def main():
        worker = node(root, "worker")
        server, context, seen = member_server(root, worker)
        async with listening(server, context) as port:
            cert_pem, key_pem, _ = node(root, "manager")
            client = RpcClient.tcp("127.0.0.1", port, ca.client_context(cert_pem, key_pem, root.cert_pem))
            error = await refused(client)
            assert error.code == Code.UNAVAILABLE and "certificate verify failed" in error.message
        assert seen == []
    run(main())


def test_without_a_certificate_only_the_join_methods(root, manager):
    async def main():
        server, context, seen = member_server(root, manager)
        async with listening(server, context) as port:
            client = RpcClient.tcp("127.0.0.1", port, ca.join_client_context(root.cert_pem))
            assert (await client.call("ca.root", {}))["ca"] == root.cert_pem.decode()
            with pytest.raises(RpcError) as e:
                await client.call("whoami", {})
            assert e.value.code == Code.UNAUTHENTICATED
            with pytest.raises(RpcError) as e:
                await client.call("nosuch", {})
            assert e.value.code == Code.UNAUTHENTICATED  # not even which methods exist
            # a peer without a certificate gets small frames only
            with pytest.raises(RpcError) as e:
                await client.call("ca.issue", {"token": "x", "csr": "y" * ANONYMOUS_MAX_FRAME}, timeout=5)
            assert e.value.code == Code.UNAVAILABLE
            await client.close()
        assert seen == []
    run(main())


def test_a_server_without_anonymous_access_wants_a_certificate(root, manager):
    async def main():
        server, context, seen = member_server(root, manager, allow_anonymous=False)
        async with listening(server, context) as port:
            client = RpcClient.tcp("127.0.0.1", port, ca.join_client_context(root.cert_pem))
            assert (await refused(client, "ca.root")).code == Code.UNAVAILABLE
    run(main())


def test_tls_1_2_is_refused(root, manager):
    async def main():
        server, context, _ = member_server(root, manager)
        async with listening(server, context) as port:
            old = ca.join_client_context(root.cert_pem)
            old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_2
            assert (await refused(RpcClient.tcp("127.0.0.1", port, old), "ca.root")).code == Code.UNAVAILABLE
    run(main())


def test_join(root, manager):
    """The whole join: the CA by its digest, then a certificate by the token's secret."""
    async def main():
        tokens = {"worker": format_token(root.cert_pem, new_secret()),
                  "manager": format_token(root.cert_pem, new_secret())}
        server, context, seen = member_server(root, manager, tokens=tokens)
        async with listening(server, context) as port:
            ca_pem = await ca.fetch_root_ca("127.0.0.1", port, tokens["manager"])
            assert ca_pem == root.cert_pem
            key_pem, csr_pem = ca.make_key_and_csr()
            answer = await ca.request_certificate("127.0.0.1", port, tokens["manager"], csr_pem, ca_pem)
            cert_pem = answer["certificate"].encode()
            assert ca.node_identity(cert_pem) == (answer["node_id"], "manager", CLUSTER)
            client = RpcClient.tcp("127.0.0.1", port, ca.client_context(cert_pem, key_pem, ca_pem))
            assert (await client.call("whoami", {}))["node_id"] == answer["node_id"]
            await client.close()

            # a token of the right CA with a wrong secret: docker's answer
            wrong = format_token(root.cert_pem, new_secret())
            with pytest.raises(RpcError) as e:
                await ca.request_certificate("127.0.0.1", port, wrong, csr_pem, ca_pem)
            assert (e.value.code, e.value.message) == (Code.INVALID_ARGUMENT, ca.BAD_JOIN_TOKEN)
            with pytest.raises(RpcError) as e:
                bad_csr = csr_for(ec.generate_private_key(ec.SECP384R1()))
                await ca.request_certificate("127.0.0.1", port, tokens["worker"], bad_csr, ca_pem)
            assert e.value.code == Code.INVALID_ARGUMENT and "P-256" in e.value.message

            # a token made for another CA: the downloaded CA is not trusted
            other = format_token(ca.RootCA.create().cert_pem, new_secret())
            with pytest.raises(SwarmError, match="^remote CA does not match fingerprint. Expected: [0-9a-f]{64}$"):
                await ca.fetch_root_ca("127.0.0.1", port, other)
            with pytest.raises(SwarmError, match="^invalid join token$"):
                await ca.fetch_root_ca("127.0.0.1", port, "SWMTKN-1-bad")
        assert [p.node_id for p in seen] == [answer["node_id"]]
    run(main())


def test_join_to_nobody_is_unavailable(root):
    async def main():
        with pytest.raises(RpcError) as e:
            await ca.fetch_root_ca("127.0.0.1", 1, format_token(root.cert_pem, new_secret()), timeout=3)
        assert e.value.code == Code.UNAVAILABLE
    run(main())


def test_peer_identity_needs_a_swarm_certificate():
    class Fake:  # the ssl module's view of a verified peer certificate
        def __init__(self, subject):
            self.subject = subject

        def getpeercert(self):
            return {"subject": self.subject} if self.subject is not None else None

    def subject(**fields):
        return tuple(((name, value),) for name, values in fields.items() for value in values)

    good = subject(organizationName=["c1"], organizationalUnitName=["swarm-worker"], commonName=["n1"])
    peer = peer_identity(Fake(good), "1.2.3.4:5")
    assert (peer.node_id, peer.role, peer.cluster_id, peer.authenticated) == ("n1", "worker", "c1", True)
    assert not peer_identity(Fake(None)).authenticated
    assert not peer_identity(None).authenticated
    for bad in (
        subject(organizationName=["c1"], organizationalUnitName=["swarm-admin"], commonName=["n1"]),
        subject(organizationName=["c1"], organizationalUnitName=["swarm-worker", "swarm-manager"], commonName=["n1"]),
        subject(organizationalUnitName=["swarm-worker"], commonName=["n1"]),
        subject(organizationName=["c1"], organizationalUnitName=["swarm-worker"]),
    ):
        with pytest.raises(SwarmError):
            peer_identity(Fake(bad))


def test_contexts_refuse_bad_material(root, manager):
    other = ca.RootCA.create()
    with pytest.raises(CertificateError, match="unusable"):
        ca.server_context(manager[0], other.key_pem, root.cert_pem)
    with pytest.raises(CertificateError, match="unusable"):
        ca.client_context(manager[0], manager[1], b"not a certificate")
    open_files = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                  if os.path.exists(f"/proc/self/fd/{fd}")]
    assert not [f for f in open_files if "swarm-tls" in f]  # the in-memory key files are closed
