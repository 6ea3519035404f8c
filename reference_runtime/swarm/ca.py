"""The swarm's certificate authority and TLS: the root CA made at ``swarm init``,
node certificates signed from a node's CSR, the TLS contexts nodes talk
through, and the two join calls a new node makes before it has a certificate.

On disk (``<root>/swarm/certificates/``, mode 0700)::

    swarm-root-ca.crt   the root CA certificate (every node)
    swarm-root-ca.key   its key, 0600 (managers only: they sign)
    swarm-node.crt      this node's certificate: CN node ID, OU role, O cluster ID
    swarm-node.key      its key, 0600 (made on the node; never leaves it)

Certificates are docker's (swarmkit ``ca/certificates.go``): ECDSA P-256, a root
``CN=swarm-ca`` valid 20 years, node certificates valid 90 days, both
backdated an hour against clock skew; a node certificate's DNS names are its
role's OU and its node ID, plus ``swarm-ca`` on managers.

Joining, before a node has a certificate: it downloads the root CA over TLS
that verifies nothing (:func:`fetch_root_ca`) and trusts it only if its digest
is the one in the join token; it then sends its CSR and the token over TLS
that verifies the manager against that CA (:func:`request_certificate`).
Managers accept such a peer without a client certificate, but only for the
methods of :data:`JOIN_METHODS` (``server_context(allow_anonymous=True)``
plus ``RpcServer(open_methods=JOIN_METHODS)``; see :mod:`.wire`).
"""

from __future__ import annotations

import hmac
import os
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..atomicfile import write_atomic
from .errors import CertificateError, Code, RpcError, SwarmError
from .token import ca_digest, parse_token
from .wire import MANAGER_OU, ROLE_OUS, Handler, Peer, RpcClient

ROOT_CN = "swarm-ca"  # also the DNS name managers carry: they are the CA's servers
ROOT_VALIDITY = timedelta(seconds=630720000)  # swarmkit's RootCAExpiration, 20 years
NODE_VALIDITY = timedelta(hours=2160)  # DefaultNodeCertExpiration, 90 days
BACKDATE = timedelta(hours=1)  # CertBackdate

ROOT_CERT = "swarm-root-ca.crt"
ROOT_KEY = "swarm-root-ca.key"
NODE_CERT = "swarm-node.crt"
NODE_KEY = "swarm-node.key"

JOIN_METHODS = frozenset({"ca.root", "ca.issue"})
BAD_JOIN_TOKEN = "A valid join token is necessary to join this cluster"  # swarmkit's answer
MAX_CSR = 16 * 1024
_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_certificate(pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise CertificateError(f"{what} is not a PEM certificate: {e}") from None


def _load_p256_key(pem: bytes, what: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise CertificateError(f"{what} is not an unencrypted PEM key: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertificateError(f"{what} is not an ECDSA P-256 key")
    return key


def _write_secret(path: Path, data: bytes) -> None:
    """A key: 0600 from the temporary file's creation on."""
    write_atomic(path, data, mode=0o600)


def _private_dir(directory: Path) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def check_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    """The signing request in ``csr_pem`` if it is one the CA signs: PEM, signed by
    its own key (proof the requester holds it), an ECDSA P-256 key."""
    if len(csr_pem) > MAX_CSR:
        raise CertificateError(f"certificate signing request larger than {MAX_CSR} bytes")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
        valid = csr.is_signature_valid
        key = csr.public_key()
    except (ValueError, InvalidSignature) as e:
        raise CertificateError(f"invalid certificate signing request: {e}") from None
    if not valid:
        raise CertificateError("certificate signing request signature does not verify")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertificateError("certificate signing request key must be ECDSA P-256")
    return csr


def make_key_and_csr() -> tuple[bytes, bytes]:
    """A new node key and a CSR for it, both PEM. The subject is left empty: the
    CA writes the node's identity, it does not take the node's word for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return _key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class RootCA:
    """The cluster's root CA: its certificate, and its key where this node signs.

    >>> ca = RootCA.create()
    >>> key, csr = make_key_and_csr()
    >>> node_identity(ca.issue(csr, "node1", "worker", "cluster1"))
    ('node1', 'worker', 'cluster1')
    """

    cert_pem: bytes  # the exact bytes served by ca.root: the join token's digest covers them
    key_pem: bytes | None = None

    def __post_init__(self) -> None:
        cert = _load_certificate(self.cert_pem, "root CA certificate")
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            cert.verify_directly_issued_by(cert)
        except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
            raise CertificateError("root CA certificate is not a self-signed CA certificate") from None
        if not constraints.ca:
            raise CertificateError("root CA certificate is not a CA certificate")
        if self.key_pem is not None:
            key = _load_p256_key(self.key_pem, "root CA key")
            if key.public_key() != cert.public_key():
                raise CertificateError("root CA key does not belong to the root CA certificate")

    @classmethod
    def create(cls) -> RootCA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROOT_CN)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + ROOT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    @classmethod
    def load(cls, directory: Path) -> RootCA:
        """The CA saved in ``directory``, with its key if the key is there."""
        try:
            cert_pem = (directory / ROOT_CERT).read_bytes()
        except OSError as e:
            raise SwarmError(f"cannot read the swarm root CA: {e.strerror}: {directory / ROOT_CERT}") from None
        try:
            key_pem = (directory / ROOT_KEY).read_bytes()
        except FileNotFoundError:
            key_pem = None
        return cls(cert_pem, key_pem)

    def save(self, directory: Path) -> None:
        """Write the certificate, and the key if held, into ``directory`` (made 0700)."""
        _private_dir(directory)
        write_atomic(directory / ROOT_CERT, self.cert_pem)
        if self.key_pem is not None:
            _write_secret(directory / ROOT_KEY, self.key_pem)

    @property
    def digest(self) -> str:
        """The digest join tokens of this CA carry."""
        return ca_digest(self.cert_pem)

    def issue(self, csr_pem: bytes, node_id: str, role: str, cluster_id: str) -> bytes:
        """A node certificate (PEM) for the key of ``csr_pem``, naming ``node_id``
        (CN), ``role`` (OU ``swarm-manager``/``swarm-worker``) and ``cluster_id`` (O)."""
        if self.key_pem is None:
            raise CertificateError("this node holds no CA key: only managers sign certificates")
        if role not in ROLE_OUS:
            raise CertificateError(f"role must be one of {sorted(ROLE_OUS)}, not {role!r}")
        for what, value in (("node ID", node_id), ("cluster ID", cluster_id)):
            if not _NAME.fullmatch(value):
                raise CertificateError(f"invalid {what} {value!r}")
        csr = check_csr(csr_pem)
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem)
        ca_key = _load_p256_key(self.key_pem, "root CA key")
        ou = ROLE_OUS[role]
        names = [ou, node_id] + ([ROOT_CN] if ou == MANAGER_OU else [])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                x509.NameAttribute(NameOID.COMMON_NAME, node_id),
            ]))
            .issuer_name(ca_cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + NODE_VALIDITY, ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)


def node_identity(cert_pem: bytes) -> tuple[str, str, str]:
    """``(node_id, role, cluster_id)`` a node certificate names."""
    subject = _load_certificate(cert_pem, "node certificate").subject

    def single(oid: x509.ObjectIdentifier, name: str) -> str:
        values = subject.get_attributes_for_oid(oid)
        if len(values) != 1:
            raise CertificateError(f"node certificate must name exactly one {name}")
        return str(values[0].value)

    roles = {ou: role for role, ou in ROLE_OUS.items()}
    ou = single(NameOID.ORGANIZATIONAL_UNIT_NAME, "OU")
    if ou not in roles:
        raise CertificateError(f"node certificate has no swarm role: OU {ou!r}")
    return single(NameOID.COMMON_NAME, "CN"), roles[ou], single(NameOID.ORGANIZATION_NAME, "O")


def save_node_certificate(directory: Path, cert_pem: bytes, key_pem: bytes) -> None:
    """Write this node's certificate and key into ``directory`` (made 0700); the key
    first, so a certificate on disk always has its key beside it."""
    _private_dir(directory)
    _write_secret(directory / NODE_KEY, key_pem)
    write_atomic(directory / NODE_CERT, cert_pem)


def load_node_certificate(directory: Path) -> tuple[bytes, bytes]:
    """``(cert_pem, key_pem)`` of this node, as saved by :func:`save_node_certificate`."""
    try:
        return (directory / NODE_CERT).read_bytes(), (directory / NODE_KEY).read_bytes()
    except OSError as e:
        raise SwarmError(f"cannot read this node's certificate: {e.strerror}: {e.filename}") from None


# TLS. Names: clients check that the server's certificate carries
# "swarm-manager" (RpcClient.tcp's default server_name), as docker's do: only
# managers serve, so a worker's certificate cannot stand in for a manager's.
# Servers check the client's certificate against the CA, and wire.RpcServer
# checks its cluster ID.


def _context(side: int) -> ssl.SSLContext:
    context = ssl.SSLContext(side)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def _load_chain(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # The ssl module loads certificates and keys only from files: an anonymous
    # memory file keeps the key off the disk.
    fd = os.memfd_create("swarm-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    except ssl.SSLError as e:
        raise CertificateError(f"node certificate and key unusable: {e.reason or e}") from None
    finally:
        os.close(fd)


def _trust(context: ssl.SSLContext, ca_pem: bytes) -> None:
    try:
        context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError) as e:
        raise CertificateError(f"root CA certificate unusable: {e}") from None


def server_context(cert_pem: bytes, key_pem: bytes, ca_pem: bytes, *, allow_anonymous: bool = False) -> ssl.SSLContext:
    """TLS 1.3 for a manager's server: clients must present a certificate of the CA
    ``ca_pem`` — or, with ``allow_anonymous``, may present none at all (joining
    nodes); a certificate that is presented is always verified."""
    context = _context(ssl.PROTOCOL_TLS_SERVER)
    _load_chain(context, cert_pem, key_pem)
    _trust(context, ca_pem)
    context.verify_mode = ssl.CERT_OPTIONAL if allow_anonymous else ssl.CERT_REQUIRED
    return context


def client_context(cert_pem: bytes, key_pem: bytes, ca_pem: bytes) -> ssl.SSLContext:
    """TLS 1.3 for a node calling a manager: presents the node's certificate, verifies
    the server's against the CA and its name (``swarm-manager``)."""
    context = join_client_context(ca_pem)
    _load_chain(context, cert_pem, key_pem)
    return context


def join_client_context(ca_pem: bytes) -> ssl.SSLContext:
    """TLS 1.3 for a joining node, which has the CA but no certificate yet."""
    context = _context(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the name
    _trust(context, ca_pem)
    return context


def bootstrap_client_context() -> ssl.SSLContext:
    """TLS 1.3 that verifies nothing: only for fetching the root CA, whose digest
    the join token then checks."""
    context = _context(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# The join calls.


def join_handlers(
    get_ca_pem: Callable[[], bytes],
    role_for_token: Callable[[str], str | None],
    issue: Callable[[bytes, str, Peer], Awaitable[Any]],
) -> dict[str, Handler]:
    """The handlers of :data:`JOIN_METHODS` for a manager's RpcServer.

    ``ca.root`` -> ``{"ca": PEM}``. ``ca.issue`` with ``{"token", "csr"}``
    checks the token with ``role_for_token`` (e.g. :func:`.token.role_for_token`
    over the cluster's two tokens) and the CSR with :func:`check_csr`, then answers
    what ``issue(csr_pem, role, peer)`` returns: the caller makes the node ID,
    records the node and signs with :meth:`RootCA.issue`, e.g.
    ``{"node_id": ..., "certificate": PEM}``.
    """

    async def root(params: dict, peer: Peer) -> dict:
        return {"ca": get_ca_pem().decode("ascii")}

    async def issue_certificate(params: dict, peer: Peer) -> Any:
        token, csr = params.get("token"), params.get("csr")
        if not isinstance(token, str) or not isinstance(csr, str):
            raise RpcError(Code.INVALID_ARGUMENT, "ca.issue needs a token and a csr")
        role = role_for_token(token)
        if role is None:
            raise RpcError(Code.INVALID_ARGUMENT, BAD_JOIN_TOKEN)
        try:
            csr_pem = csr.encode("ascii")
            check_csr(csr_pem)
        except (CertificateError, UnicodeEncodeError) as e:
            raise RpcError(Code.INVALID_ARGUMENT, str(e)) from None
        return await issue(csr_pem, role, peer)

    return {"ca.root": root, "ca.issue": issue_certificate}


async def fetch_root_ca(host: str, port: int, token: str, timeout: float = 10.0) -> bytes:
    """The root CA certificate (PEM) of the manager at ``host:port``, trusted because
    its digest is the join token's. SwarmError for a malformed token or another CA;
    RpcError("Unavailable") when the manager cannot be reached."""
    digest, _ = parse_token(token)
    client = RpcClient.tcp(host, port, bootstrap_client_context())
    try:
        answer = await client.call("ca.root", {}, timeout)
    finally:
        await client.close()
    certificate = answer.get("ca") if isinstance(answer, Mapping) else None
    if not isinstance(certificate, str):
        raise SwarmError(f"{host}:{port} answered ca.root without a certificate")
    ca_pem = certificate.encode("utf-8")
    if not hmac.compare_digest(ca_digest(ca_pem), digest):
        # docker's words, with the expected digest in hex as docker prints it
        raise SwarmError(f"remote CA does not match fingerprint. Expected: {int(digest, 36):064x}")
    RootCA(ca_pem)  # well formed: a self-signed CA certificate
    return ca_pem


async def request_certificate(
    host: str, port: int, token: str, csr_pem: bytes, ca_pem: bytes, timeout: float = 10.0
) -> Any:
    """Send ``csr_pem`` with the join token to the manager at ``host:port``, verified
    against ``ca_pem``; returns the manager's answer (see :func:`join_handlers`)."""
    client = RpcClient.tcp(host, port, join_client_context(ca_pem))
    try:
        return await client.call("ca.issue", {"token": token, "csr": csr_pem.decode("ascii")}, timeout)
    finally:
        await client.close()
