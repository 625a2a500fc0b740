"""Test PKI and NATS credentials, made on the fly (nothing is shipped in the repo).

* ``make_ca`` / ``issue_cert`` / ``self_signed``: EC P-256 X.509 certificates with the ``cryptography``
  package (IP SAN 127.0.0.1 and DNS localhost, so both Python's and Go's hostname checks pass).
* ``NatsOperator``: an operator, one account and its users as NKEYs (``nkeys`` package) with signed
  JWTs, the server config lines for operator mode with a MEMORY resolver, and ``.creds`` files in the
  format nats-py reads (the one ``nsc`` writes).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_DAY = datetime.timedelta(days=1)


@dataclass
class CertFiles:
    cert: Path
    key: Path


@dataclass
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> CertFiles:
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return CertFiles(cert_path, key_path)


def _builder(subject: str, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + _DAY)
    )


def _leaf_extensions(
    builder: x509.CertificateBuilder, usages: list[x509.ObjectIdentifier]
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )


def make_ca(directory: Path, cn: str = "pyresgate test CA") -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(cn, _name(cn), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    files = _write(directory, "ca", cert, key)
    return CA(cert, key, files.cert)


def issue_cert(directory: Path, ca: CA, stem: str, *, server: bool = True, client: bool = True) -> CertFiles:
    """A leaf certificate signed by ``ca`` for 127.0.0.1/localhost (server and/or client auth)."""
    key = ec.generate_private_key(ec.SECP256R1())
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    cert = _leaf_extensions(_builder(stem, ca.cert.subject, key.public_key()), usages).sign(
        ca.key, hashes.SHA256()
    )
    return _write(directory, stem, cert, key)


def self_signed(directory: Path, stem: str = "server") -> CertFiles:
    """A self-signed server certificate for 127.0.0.1/localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _leaf_extensions(
        _builder("localhost", _name("localhost"), key.public_key()), [ExtendedKeyUsageOID.SERVER_AUTH]
    ).sign(key, hashes.SHA256())
    return _write(directory, stem, cert, key)


# NATS NKEYs and JWTs (operator mode)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Key:
    def __init__(self, prefix: int) -> None:
        self.seed = nkeys.encode_seed(os.urandom(32), prefix)
        self.kp = nkeys.from_seed(bytearray(self.seed))
        self.public = self.kp.public_key.decode()


def _jwt(claims: dict[str, Any], signer: _Key) -> str:
    header = {"typ": "JWT", "alg": "ed25519-nkey"}
    body = {
        "jti": base64.b32encode(secrets.token_bytes(20)).decode().rstrip("="),
        "iat": int(time.time()),
        **claims,
    }
    signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(body).encode())
    return signing_input + "." + _b64url(bytes(signer.kp.sign(signing_input.encode())))


_UNLIMITED_ACCOUNT = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}


class NatsOperator:
    """An operator with one account; ``user_creds`` writes ``.creds`` files for new users of it
    (or, with ``foreign=True``, for a user signed by an account the server does not know)."""

    def __init__(self) -> None:
        self.operator = _Key(nkeys.PREFIX_BYTE_OPERATOR)
        self.account = _Key(nkeys.PREFIX_BYTE_ACCOUNT)
        self.operator_jwt = _jwt(
            {
                "iss": self.operator.public,
                "sub": self.operator.public,
                "name": "test-operator",
                "nats": {"type": "operator", "version": 2},
            },
            self.operator,
        )
        self.account_jwt = _jwt(
            {
                "iss": self.operator.public,
                "sub": self.account.public,
                "name": "test-account",
                "nats": {
                    "limits": _UNLIMITED_ACCOUNT,
                    "default_permissions": {"pub": {}, "sub": {}},
                    "type": "account",
                    "version": 2,
                },
            },
            self.operator,
        )

    def server_config(self) -> str:
        """nats-server config lines: operator mode, MEMORY resolver preloaded with the account."""
        return (
            f'operator: "{self.operator_jwt}"\n'
            "resolver: MEMORY\n"
            f'resolver_preload: {{\n  {self.account.public}: "{self.account_jwt}"\n}}\n'
        )

    def user_creds(self, path: Path, name: str = "test-user", *, foreign: bool = False) -> Path:
        signer = _Key(nkeys.PREFIX_BYTE_ACCOUNT) if foreign else self.account
        user = _Key(nkeys.PREFIX_BYTE_USER)
        user_jwt = _jwt(
            {
                "iss": signer.public,
                "sub": user.public,
                "name": name,
                "nats": {
                    "pub": {},
                    "sub": {},
                    "subs": -1,
                    "data": -1,
                    "payload": -1,
                    "type": "user",
                    "version": 2,
                },
            },
            signer,
        )
        path.write_text(
            "-----BEGIN NATS USER JWT-----\n"
            f"{user_jwt}\n"
            "------END NATS USER JWT------\n\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n"
            "NKEYs are sensitive and should be treated as secrets.\n\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{user.seed.decode()}\n"
            "------END USER NKEY SEED------\n\n"
            "*************************************************************\n"
        )
        return path
