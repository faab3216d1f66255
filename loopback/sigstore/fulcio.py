"""Fulcio and its CT log: a code-signing leaf per identity token, from the stack's own root,
with the identity as SAN, the issuer in Fulcio's extensions and an embedded SCT."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import struct
import time
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ._crypto import ca_certificate, key_usage, new_key, spki
from .oidc import GITHUB_ISSUER, OIDCIssuer

_FULCIO_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_FULCIO_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


# What real Fulcio writes from a GitHub Actions token's claims (its docs/oid-info.md), each a DER
# UTF8String; gh attestation verify applies its policy to these.
_GITHUB_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("1.3.6.1.4.1.57264.1.9", "https://github.com/{job_workflow_ref}"),  # build signer URI
    ("1.3.6.1.4.1.57264.1.10", "{job_workflow_sha}"),  # build signer digest
    ("1.3.6.1.4.1.57264.1.11", "{runner_environment}"),  # runner environment
    ("1.3.6.1.4.1.57264.1.12", "https://github.com/{repository}"),  # source repository URI
    ("1.3.6.1.4.1.57264.1.13", "{sha}"),  # source repository digest
    ("1.3.6.1.4.1.57264.1.14", "{ref}"),  # source repository ref
    ("1.3.6.1.4.1.57264.1.15", "{repository_id}"),  # source repository identifier
    ("1.3.6.1.4.1.57264.1.16", "https://github.com/{repository_owner}"),  # source repository owner URI
    ("1.3.6.1.4.1.57264.1.17", "{repository_owner_id}"),  # source repository owner identifier
    ("1.3.6.1.4.1.57264.1.18", "https://github.com/{workflow_ref}"),  # build config URI
    ("1.3.6.1.4.1.57264.1.19", "{workflow_sha}"),  # build config digest
    ("1.3.6.1.4.1.57264.1.20", "{event_name}"),  # build trigger
    ("1.3.6.1.4.1.57264.1.21", "https://github.com/{repository}/actions/runs/{run_id}/attempts/{run_attempt}"),
    ("1.3.6.1.4.1.57264.1.22", "{repository_visibility}"),  # source repository visibility at signing
)


def _der(tag: int, data: bytes) -> bytes:
    length = len(data)
    if length < 0x80:
        return bytes([tag, length]) + data
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + data


def _der_octet_string(data: bytes) -> bytes:
    return _der(0x04, data)


def _utf8_string(text: str) -> bytes:
    return _der(0x0C, text.encode())


def github_extensions(claims: dict[str, Any]) -> list[x509.UnrecognizedExtension]:
    """The extensions for a GitHub Actions token; none for another issuer's or a partial token."""
    try:
        values = [(oid, template.format(**claims)) for oid, template in _GITHUB_EXTENSIONS]
    except KeyError:
        return []
    return [x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), _utf8_string(value)) for oid, value in values]


class Fulcio:
    def __init__(self, oidc: OIDCIssuer) -> None:
        self.oidc = oidc
        self.ca_key = new_key()
        self.ct_key = new_key()
        self.root = ca_certificate(self.ca_key, f"loopback fulcio {secrets.token_hex(4)}", dt.datetime.now(dt.UTC))
        self.ct_log_id = hashlib.sha256(spki(self.ct_key)).digest()
        # Issuers this Fulcio does not federate with: it refuses their tokens, as real Fulcio does.
        self.rejected_issuers: set[str] = set()

    def signing_cert(self, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            claims = self.oidc.claims(authorization)
        except (ValueError, jwt.PyJWTError) as exc:
            return 401, {"message": f"invalid identity token: {exc}"}
        if claims["iss"] in self.rejected_issuers:
            return 400, {
                "code": 3,
                "message": f"There was an error processing the identity token: unknown issuer {claims['iss']}",
            }
        request = json.loads(body)
        csr = x509.load_pem_x509_csr(base64.b64decode(request["certificateSigningRequest"]))
        if not csr.is_signature_valid:
            return 400, {"message": "CSR signature does not verify (no proof of possession)"}
        # Fulcio's rule for GitHub Actions: the SAN is the workflow URI, not the token's sub.
        if claims["iss"] == GITHUB_ISSUER and "job_workflow_ref" in claims:
            subject = f"https://github.com/{claims['job_workflow_ref']}"
        else:
            subject = claims["sub"]
        extensions = github_extensions(claims) if claims["iss"] == GITHUB_ISSUER else []
        leaf = self._issue(csr.public_key(), subject, claims["iss"], extensions)
        pem = [cert.public_bytes(serialization.Encoding.PEM).decode() for cert in (leaf, self.root)]
        return 201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": pem}}}

    def _issue(
        self, public_key: Any, subject: str, issuer: str, extensions: list[x509.UnrecognizedExtension]
    ) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.root.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(minutes=10))
            .add_extension(key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(subject)]), critical=True)
            .add_extension(x509.UnrecognizedExtension(_FULCIO_ISSUER_V1, issuer.encode()), critical=False)
            .add_extension(x509.UnrecognizedExtension(_FULCIO_ISSUER_V2, _utf8_string(issuer)), critical=False)
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        # The SCT signs the certificate's TBS without the SCT extension itself (RFC 6962 3.2),
        # so sign once without it, then add it last: removing it gives back the same TBS.
        tbs = builder.sign(self.ca_key, hashes.SHA256()).tbs_certificate_bytes
        sct = self._sct(tbs)
        return builder.add_extension(
            x509.UnrecognizedExtension(_SCT_LIST, _der_octet_string(struct.pack("!H", len(sct)) + sct)),
            critical=False,
        ).sign(self.ca_key, hashes.SHA256())

    def _sct(self, tbs: bytes) -> bytes:
        timestamp = int(time.time() * 1000)
        issuer_key_hash = hashlib.sha256(spki(self.ca_key)).digest()
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp, 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)
        )
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        body = (
            b"\x00"
            + self.ct_log_id
            + struct.pack("!QH", timestamp, 0)
            + bytes([4, 3])  # sha256, ecdsa
            + struct.pack("!H", len(signature))
            + signature
        )
        return struct.pack("!H", len(body)) + body
