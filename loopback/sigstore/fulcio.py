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


def _der_octet_string(data: bytes) -> bytes:
    length = len(data)
    if length < 0x80:
        return b"\x04" + bytes([length]) + data
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return b"\x04" + bytes([0x80 | len(encoded)]) + encoded + data


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
        leaf = self._issue(csr.public_key(), subject, claims["iss"])
        pem = [cert.public_bytes(serialization.Encoding.PEM).decode() for cert in (leaf, self.root)]
        return 201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": pem}}}

    def _issue(self, public_key: Any, subject: str, issuer: str) -> x509.Certificate:
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
            .add_extension(
                # V2 holds a DER UTF8String.
                x509.UnrecognizedExtension(_FULCIO_ISSUER_V2, b"\x0c" + bytes([len(issuer)]) + issuer.encode()),
                critical=False,
            )
        )
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
