"""The ClientTrustConfig (trusted root and signing config, v0.1/v0.2) that points
sigstore-python (and any verifier) at the loopback services."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ._crypto import EPOCH_START, b64, spki
from .fulcio import Fulcio
from .rekor import Rekor
from .tsa import TimestampAuthority


def trust_config(url: str, fulcio: Fulcio, rekor: Rekor, tsa: TimestampAuthority) -> dict[str, Any]:
    # Long, as the document it returns is: one literal, in the order the format has it.
    """A ClientTrustConfig (v0.1) JSON document for this stack."""

    def key(private: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
        return {
            "rawBytes": b64(spki(private)),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": EPOCH_START},
        }

    def service(url: str) -> dict[str, Any]:
        return {
            "url": url,
            "majorApiVersion": 1,
            "validFor": {"start": EPOCH_START},
            "operator": "u2netp-mirror tests",
        }

    root_der = fulcio.root.public_bytes(serialization.Encoding.DER)
    return {
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [
                {
                    "baseUrl": url,
                    "hashAlgorithm": "SHA2_256",
                    "publicKey": key(rekor.key),
                    "logId": {"keyId": b64(rekor.log_id)},
                }
            ],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "u2netp-mirror tests", "commonName": "loopback fulcio"},
                    "uri": url,
                    "certChain": {"certificates": [{"rawBytes": b64(root_der)}]},
                    "validFor": {"start": EPOCH_START},
                }
            ],
            "ctlogs": [
                {
                    "baseUrl": url,
                    "hashAlgorithm": "SHA2_256",
                    "publicKey": key(fulcio.ct_key),
                    "logId": {"keyId": b64(fulcio.ct_log_id)},
                }
            ],
            "timestampAuthorities": [
                {
                    "subject": {"organization": "u2netp-mirror tests", "commonName": "loopback tsa"},
                    "uri": f"{url}/api/v1/timestamp",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": b64(tsa.leaf.public_bytes(serialization.Encoding.DER))},
                            {"rawBytes": b64(tsa.root.public_bytes(serialization.Encoding.DER))},
                        ]
                    },
                    "validFor": {"start": EPOCH_START},
                }
            ],
        },
        "signingConfig": {
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service(url)],
            "oidcUrls": [service(url)],
            "rekorTlogUrls": [service(url)],
            "tsaUrls": [service(f"{url}/api/v1/timestamp")],
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        },
    }
