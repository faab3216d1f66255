"""An RFC 3161 timestamp authority: a DER TimeStampReq answered with a TimeStampResp (CMS
SignedData over TSTInfo, ESSCertIDv2, the request's nonce copied as is, whole-second time)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._crypto import ca_certificate, key_usage, new_key


class TimestampAuthority:
    def __init__(self) -> None:
        self.root_key = new_key()
        self.key = new_key()
        now = dt.datetime.now(dt.UTC)
        self.root = ca_certificate(self.root_key, f"loopback tsa root {secrets.token_hex(4)}", now)
        self.leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback tsa")]))
            .issuer_name(self.root.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()),
                critical=False,
            )
            .sign(self.root_key, hashes.SHA256())
        )
        self.timestamps = 0
        self._lock = threading.Lock()

    def timestamp(self, body: bytes) -> bytes:
        request = tsp.TimeStampReq.load(body)
        with self._lock:
            self.timestamps += 1
            serial = self.timestamps
        info = {
            "version": "v1",
            "policy": "1.3.6.1.4.1.57264.2",
            "message_imprint": request["message_imprint"],
            "serial_number": serial,
            # Whole seconds: some verifiers reject fractional times.
            "gen_time": dt.datetime.now(dt.UTC).replace(microsecond=0),
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"]  # the request's INTEGER, byte for byte
        tst_info = tsp.TSTInfo(info)
        leaf_der = self.leaf.public_bytes(serialization.Encoding.DER)
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(tst_info.dump()).digest()]},
                {
                    "type": "signing_certificate_v2",
                    "values": [{"certs": [{"cert_hash": hashlib.sha256(leaf_der).digest()}]}],
                },
            ]
        )
        # The signature covers the attributes DER-encoded as a SET (RFC 5652 5.4).
        signature = self.key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        leaf = asn1_x509.Certificate.load(leaf_der)
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {"issuer_and_serial_number": {"issuer": leaf.issuer, "serial_number": leaf.serial_number}}
                ),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {"content_type": "tst_info", "content": tst_info},
                "certificates": [leaf] if request["cert_req"].native else [],
                "signer_infos": [signer],
            }
        )
        return tsp.TimeStampResp(
            {
                "status": {"status": "granted"},
                "time_stamp_token": {"content_type": "signed_data", "content": signed_data},
            }
        ).dump()
