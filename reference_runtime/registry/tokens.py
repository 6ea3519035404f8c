"""Bearer tokens as distribution 2.8 accepts them: JWTs signed RS256/ES256
(and their 384/512 siblings) whose header carries ``x5c``, a certificate
chain that leads to a certificate of ``auth.token.rootcertbundle`` (or, as
libtrust allows, a ``jwk`` or ``kid`` naming the key of such a certificate by
its libtrust key ID, as token servers like docker_auth send); claims
``iss``, ``aud``, ``exp``, ``nbf`` and ``access`` (distribution's token spec,
docs/spec/auth/jwt.md). Also scopes (``repository:NAME:pull,push``) and the
tokens refregistry's own endpoint issues. No I/O: keys and certificates come in
as objects, time as a number.

>>> parse_scope("repository:library/busybox:pull,push")
Access(type='repository', name='library/busybox', actions=('pull', 'push'))
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .manifests import load_json

# distribution's token.Leeway: clock skew allowed on exp and nbf.
LEEWAY = 60
_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}


class TokenError(ValueError):
    """The token is malformed, untrusted, expired or for someone else."""


@dataclass(frozen=True)
class Access:
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


@dataclass(frozen=True)
class Claims:
    subject: str
    expires: float
    access: tuple[Access, ...]

    def allows(self, type_: str, name: str, action: str) -> bool:
        return any(a.type == type_ and a.name == name and (action in a.actions or "*" in a.actions)
                   for a in self.access)


def parse_scope(scope: str) -> Access:
    """``type:name:actions``; the name may itself hold ':' (a host:port prefix)."""
    type_, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not type_ or not name:
        raise TokenError(f"malformed scope {scope!r}")
    return Access(type_, name, tuple(a for a in actions.split(",") if a))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise TokenError("token is not base64url") from None


def algorithm_for(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        for alg, curve in _EC_CURVES.items():
            if isinstance(key.curve, curve):
                return alg
    raise TokenError("the signing key must be RSA or EC P-256/P-384/P-521")


def sign(claims: dict, key, chain: list[x509.Certificate]) -> str:
    """A JWT of ``claims`` with ``x5c`` = the DER certificates of ``chain``."""
    alg = algorithm_for(key)
    header = {"typ": "JWT", "alg": alg,
              "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]}
    signing_input = f"{_b64encode(json.dumps(header).encode())}.{_b64encode(json.dumps(claims).encode())}"
    hash_ = _HASHES[alg[2:]]()
    if alg.startswith("RS"):
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hash_)
    else:
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hash_)))
        size = (key.curve.key_size + 7) // 8
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return f"{signing_input}.{_b64encode(signature)}"


def issue_claims(*, issuer: str, service: str, subject: str, access: list[Access], now: float,
                 expiration: int) -> dict:
    return {
        "iss": issuer, "sub": subject, "aud": service,
        "exp": int(now) + expiration, "nbf": int(now) - 1, "iat": int(now),
        "jti": _b64encode(os.urandom(16)),
        "access": [{"type": a.type, "name": a.name, "actions": list(a.actions)} for a in access],
    }


def key_id(public_key) -> str:
    """libtrust's key ID: SHA-256 of the DER SubjectPublicKeyInfo, 240 bits, base32 in groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, len(encoded), 4))


def _jwk_public_key(jwk) -> object:
    """An EC or RSA public key from a JSON Web Key (RFC 7517)."""
    if not isinstance(jwk, dict):
        raise TokenError("token jwk header is not an object")
    try:
        if jwk.get("kty") == "EC":
            curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[jwk["crv"]]()
            x, y = (int.from_bytes(_b64decode(jwk[c]), "big") for c in ("x", "y"))
            return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
        if jwk.get("kty") == "RSA":
            n, e = (int.from_bytes(_b64decode(jwk[c]), "big") for c in ("n", "e"))
            return rsa.RSAPublicNumbers(e, n).public_key()
    except (KeyError, TypeError, ValueError):
        raise TokenError("token jwk header is not a valid key") from None
    raise TokenError("token jwk header has an unsupported key type")


def _trusted_key(header: dict, roots: list[x509.Certificate]):
    """The key of a root certificate that ``jwk`` or ``kid`` names (libtrust key IDs)."""
    trusted = {key_id(root.public_key()): root.public_key() for root in roots}
    wanted = key_id(_jwk_public_key(header["jwk"])) if "jwk" in header else header.get("kid")
    if not isinstance(wanted, str) or wanted not in trusted:
        raise TokenError("token signed by an untrusted key")
    return trusted[wanted]


def _verify_signature(public_key, alg: str, signing_input: bytes, signature: bytes) -> None:
    hash_ = _HASHES[alg[2:]]()
    try:
        if alg.startswith("RS"):
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise TokenError(f"{alg} token signed by a non-RSA certificate")
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hash_)
        else:
            if not isinstance(public_key, ec.EllipticCurvePublicKey) or \
                    not isinstance(public_key.curve, _EC_CURVES[alg]):
                raise TokenError(f"{alg} token signed by a certificate of another key type")
            size = (public_key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise TokenError("malformed ECDSA signature")
            der = encode_dss_signature(int.from_bytes(signature[:size], "big"),
                                       int.from_bytes(signature[size:], "big"))
            public_key.verify(der, signing_input, ec.ECDSA(hash_))
    except InvalidSignature:
        raise TokenError("token signature does not verify") from None


def _verify_chain(chain: list[x509.Certificate], roots: list[x509.Certificate], now: float) -> None:
    """Each certificate issued by the next; the last one is, or is issued by, a root."""
    for cert in chain:
        if not cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp():
            raise TokenError("a certificate of the token's x5c chain is not valid now")
    for child, parent in zip(chain, chain[1:]):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise TokenError("the token's x5c chain is broken") from None
    last = chain[-1]
    for root in roots:
        if last == root:
            _check_issuers(chain, roots)
            return
        try:
            last.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        _check_issuers([*chain, root], roots)
        return
    raise TokenError("the token's x5c chain does not lead to a trusted root certificate")


def _check_issuers(path: list[x509.Certificate], roots: list[x509.Certificate]) -> None:
    """RFC 5280 6.1.4 (k) and (m), as Go's x509.Verify applies them for distribution: every
    certificate that signed another in *path* (leaf first) is a CA unless it is a trust anchor,
    and none has more intermediates below it than its pathLenConstraint allows."""
    for position, issuer in enumerate(path[1:], start=1):
        try:
            constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if issuer not in roots and (constraints is None or not constraints.ca):
            raise TokenError("a certificate of the token's x5c chain signs another but is not a CA "
                             "(BasicConstraints CA:TRUE is missing)")
        below = position - 1  # intermediates between the leaf and this issuer
        if constraints is not None and constraints.path_length is not None and below > constraints.path_length:
            raise TokenError(f"the token's x5c chain has {below} intermediate certificates below one whose "
                             f"path length is limited to {constraints.path_length}")


def verify(token: str, *, roots: list[x509.Certificate], issuer: str, service: str, now: float) -> Claims:
    """Check a token as distribution 2.8's token access controller does."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token is not a JWT")
    try:
        header_bytes, claims_bytes = _b64decode(parts[0]), _b64decode(parts[1])
    except TokenError:
        raise TokenError("token header or claims are not JSON") from None
    header = load_json(header_bytes, "token header", TokenError)
    claims = load_json(claims_bytes, "token claims", TokenError)
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("token header or claims are not JSON objects")
    alg = header.get("alg")
    if alg not in ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"):
        raise TokenError(f"unsupported token algorithm {alg!r}")
    x5c = header.get("x5c")
    if x5c is not None:
        if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
            raise TokenError("token x5c header is not a certificate chain")
        try:
            chain = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c]
        except ValueError:
            raise TokenError("token x5c holds an invalid certificate") from None
        _verify_chain(chain, roots, now)
        signing_key = chain[0].public_key()
    elif "jwk" in header or "kid" in header:
        signing_key = _trusted_key(header, roots)
    else:
        raise TokenError("token header names no signing key (x5c, jwk or kid)")
    _verify_signature(signing_key, alg, f"{parts[0]}.{parts[1]}".encode(), _b64decode(parts[2]))
    if claims.get("iss") != issuer:
        raise TokenError("token issuer is not trusted")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if service not in audiences:
        raise TokenError("token audience is not this service")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or now > exp + LEEWAY:
        raise TokenError("token is expired")
    if nbf is not None and (not isinstance(nbf, (int, float)) or now < nbf - LEEWAY):
        raise TokenError("token is not valid yet")
    access = []
    for entry in claims.get("access") or []:
        if not isinstance(entry, dict):
            raise TokenError("malformed access claim")
        type_, name, actions = entry.get("type"), entry.get("name"), entry.get("actions") or []
        if not isinstance(type_, str) or not isinstance(name, str) or not isinstance(actions, list) or \
                not all(isinstance(a, str) for a in actions):
            raise TokenError("malformed access claim")
        access.append(Access(type_, name, tuple(actions)))
    subject = claims.get("sub")
    return Claims(subject=subject if isinstance(subject, str) else "", expires=float(exp), access=tuple(access))
