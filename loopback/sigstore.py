"""A small but real Sigstore stack on 127.0.0.1 for the tests: OIDC, Fulcio, CT log, Rekor v1.

Written in Python (rather than wrapping @sigstore/mock in Node) so the test session needs no
second runtime.  Each part does the real cryptography that sigstore-python checks:

* OIDC: a discovery document and key set, ES256-signed identity tokens (aud "sigstore"), and
  GitHub Actions' ambient token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL) for the CI path.
* Fulcio (POST /api/v2/signingCert): checks the Bearer token's signature and claims and the
  CSR's proof of possession, issues a code-signing leaf from its own root whose SAN is the
  identity (for GitHub Actions tokens the workflow URI, as real Fulcio does) and whose issuer
  extensions carry ``iss``, with an embedded SCT signed
  by the stack's CT log key over the RFC 6962 precertificate entry.
* Rekor v1 (POST /api/v1/log/entries): stores the canonical (RFC 8785) entry in an
  RFC 6962 Merkle tree, answers with a signed entry timestamp, an inclusion proof and a
  signed checkpoint.
* Timestamp authority (POST /api/v1/timestamp): answers a DER TimeStampReq with an RFC 3161
  TimeStampResp (CMS SignedData over TSTInfo, ESSCertIDv2, the request's nonce copied as is,
  whole-second time) signed by a time-stamping leaf under its own root.

``trust_config()`` gives the ClientTrustConfig (trusted root + signing config) that points
sigstore-python at this stack.  Two stacks have unrelated keys, so one stack's bundles do
not verify against the other's trust root.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import rfc8785
from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .http import LoopbackHTTPServer

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_FULCIO_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_FULCIO_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_EPOCH_START = "2020-01-01T00:00:00Z"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _der_octet_string(data: bytes) -> bytes:
    length = len(data)
    if length < 0x80:
        return b"\x04" + bytes([length]) + data
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return b"\x04" + bytes([0x80 | len(encoded)]) + encoded + data


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _tree_hash(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _tree_hash(leaves[:split]) + _tree_hash(leaves[split:])).digest()


def _audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    # RFC 6962 section 2.1.1, bottom-up.
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*_audit_path(index, leaves[:split]), _tree_hash(leaves[split:])]
    return [*_audit_path(index - split, leaves[split:]), _tree_hash(leaves[:split])]


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey, common_name: str, now: dt.datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "u2netp-mirror tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


class SigstoreStack:
    """Start with ``start()``, stop with ``stop()``; ``url`` is http://127.0.0.1:PORT."""

    def __init__(self) -> None:
        self.oidc_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        self.tsa_root_key = ec.generate_private_key(ec.SECP256R1())
        self.tsa_key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.root = _ca_certificate(self.ca_key, f"loopback fulcio {secrets.token_hex(4)}", now)
        self.tsa_root = _ca_certificate(self.tsa_root_key, f"loopback tsa root {secrets.token_hex(4)}", now)
        self.tsa_leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback tsa")]))
            .issuer_name(self.tsa_root.subject)
            .public_key(self.tsa_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.tsa_root_key.public_key()),
                critical=False,
            )
            .sign(self.tsa_root_key, hashes.SHA256())
        )
        self.timestamps = 0
        # Issuers this Fulcio does not federate with: it refuses their tokens, as real Fulcio does.
        self.rejected_issuers: set[str] = set()
        # GitHub Actions' token endpoint: what a job with `id-token: write` would be given.
        self.actions_request_token = secrets.token_hex(16)
        self.actions_identity = ""
        self.rekor_log_id = hashlib.sha256(_spki(self.rekor_key)).digest()
        self.ct_log_id = hashlib.sha256(_spki(self.ct_key)).digest()
        self.tree_id = secrets.randbelow(2**48)
        self.leaves: list[bytes] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> SigstoreStack:
        stack = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                stack.requests.append(("GET", self.path))
                if self.path.startswith("/actions/id-token?"):
                    status, answer = stack.actions_id_token(self.path, self.headers.get("Authorization", ""))
                    self._reply(status, answer)
                elif self.path == "/.well-known/openid-configuration":
                    self._reply(200, stack.discovery())
                elif self.path == "/jwks":
                    self._reply(200, stack.jwks())
                else:
                    self._reply(404, {"message": "not found"})

            def do_POST(self) -> None:
                stack.requests.append(("POST", self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    if self.path == "/api/v2/signingCert":
                        status, answer = stack.fulcio(self.headers.get("Authorization", ""), body)
                    elif self.path == "/api/v1/log/entries":
                        status, answer = stack.rekor(body)
                    elif self.path == "/api/v1/timestamp":
                        self._reply(200, stack.timestamp(body), "application/timestamp-reply")
                        return
                    else:
                        status, answer = 404, {"message": "not found"}
                except (ValueError, KeyError, TypeError, OSError) as exc:
                    status, answer = 400, {"message": f"bad request: {exc}"}
                self._reply(status, answer)

        server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server  # only a running server is ever shut down (shutdown() waits for its loop)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- OIDC ------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
            "authorization_endpoint": f"{self.url}/auth",
            "token_endpoint": f"{self.url}/token",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self.oidc_key.public_key().public_numbers()

        def coordinate(value: int) -> str:
            return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()

        return {
            "keys": [
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "kid": "k1",
                    "alg": "ES256",
                    "use": "sig",
                    "x": coordinate(numbers.x),
                    "y": coordinate(numbers.y),
                }
            ]
        }

    def token(self, identity: str, issuer: str = GITHUB_ISSUER, lifetime: int = 600) -> str:
        """An identity token for ``identity``, shaped like GitHub Actions' for a workflow URI.

        For ``https://github.com/OWNER/REPO/.github/workflows/F@REF`` the ``sub`` is
        ``repo:OWNER/REPO:ref:REF`` and ``job_workflow_ref`` names the workflow, as on GitHub;
        anything else becomes the ``sub`` as it is.
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": identity,
            "aud": "sigstore",
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + lifetime,
        }
        workflow = identity.removeprefix("https://github.com/")
        if issuer == GITHUB_ISSUER and workflow != identity and "@" in workflow:
            repository, ref = workflow.split("/.github/")[0], workflow.split("@", 1)[1]
            claims |= {
                "sub": f"repo:{repository}:ref:{ref}",
                "job_workflow_ref": workflow,
                "repository": repository,
                "ref": ref,
            }
        return jwt.encode(claims, self.oidc_key, algorithm="ES256", headers={"kid": "k1"})

    def actions_id_token(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        """GET /actions/id-token?audience=sigstore, as ACTIONS_ID_TOKEN_REQUEST_URL serves it."""
        query = parse_qs(urlsplit(path).query)
        if authorization.lower() != f"bearer {self.actions_request_token}":
            return 403, {"message": "bad request token"}
        if query.get("audience") != ["sigstore"] or not self.actions_identity:
            return 400, {"message": "bad audience or no workflow identity"}
        return 200, {"value": self.token(self.actions_identity)}

    @property
    def actions_env(self) -> dict[str, str]:
        """The environment of a GitHub Actions job with `permissions: id-token: write`."""
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/actions/id-token",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.actions_request_token,
        }

    def _claims(self, authorization: str) -> dict[str, Any]:
        if not authorization.startswith("Bearer "):
            raise ValueError("missing bearer token")
        return jwt.decode(
            authorization.removeprefix("Bearer "),
            self.oidc_key.public_key(),
            algorithms=["ES256"],
            audience="sigstore",
        )

    # -- Fulcio + CT log ------------------------------------------------------------------

    def fulcio(self, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            claims = self._claims(authorization)
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
            .add_extension(_key_usage(digital_signature=True), critical=True)
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
        issuer_key_hash = hashlib.sha256(_spki(self.ca_key)).digest()
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

    # -- Rekor v1 --------------------------------------------------------------------------

    @staticmethod
    def _canonical_entry(proposed: dict[str, Any]) -> bytes | None:
        """Rekor's canonical form of a proposed entry (what it stores and signs), or None if unsupported."""
        kind, version, spec = proposed.get("kind"), proposed.get("apiVersion"), proposed.get("spec", {})
        if (kind, version) == ("hashedrekord", "0.0.1"):
            return rfc8785.dumps(
                {
                    "apiVersion": "0.0.1",
                    "kind": "hashedrekord",
                    "spec": {
                        "data": {
                            "hash": {
                                "algorithm": spec["data"]["hash"]["algorithm"],
                                "value": spec["data"]["hash"]["value"],
                            }
                        },
                        "signature": {
                            "content": spec["signature"]["content"],
                            "publicKey": {"content": spec["signature"]["publicKey"]["content"]},
                        },
                    },
                }
            )
        if (kind, version) == ("dsse", "0.0.1"):
            # Rekor keeps hashes of the envelope and its payload, and the signatures with their
            # verifier, in place of the envelope itself.
            content = spec["proposedContent"]
            envelope = json.loads(content["envelope"])
            (verifier,) = content["verifiers"]
            return rfc8785.dumps(
                {
                    "apiVersion": "0.0.1",
                    "kind": "dsse",
                    "spec": {
                        "envelopeHash": {
                            "algorithm": "sha256",
                            "value": hashlib.sha256(content["envelope"].encode()).hexdigest(),
                        },
                        "payloadHash": {
                            "algorithm": "sha256",
                            "value": hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest(),
                        },
                        "signatures": [
                            {"signature": signature["sig"], "verifier": verifier}
                            for signature in envelope["signatures"]
                        ],
                    },
                }
            )
        return None

    def rekor(self, body: bytes) -> tuple[int, dict[str, Any]]:
        canonical = self._canonical_entry(json.loads(body))
        if canonical is None:
            return 400, {"message": "only hashedrekord 0.0.1 and dsse 0.0.1 are supported here"}
        with self._lock:
            self.leaves.append(_leaf_hash(canonical))
            index, leaves = len(self.leaves) - 1, list(self.leaves)
        integrated = int(time.time())
        encoded = _b64(canonical)
        log_id = self.rekor_log_id.hex()
        promise = rfc8785.dumps({"body": encoded, "integratedTime": integrated, "logID": log_id, "logIndex": index})
        root = _tree_hash(leaves)
        origin = f"loopback-rekor - {self.tree_id}"
        note = f"{origin}\n{len(leaves)}\n{_b64(root)}\n"
        note_signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = f"{note}\n\u2014 loopback-rekor {_b64(self.rekor_log_id[:4] + note_signature)}\n"
        entry = {
            "body": encoded,
            "integratedTime": integrated,
            "logID": log_id,
            "logIndex": index,
            "verification": {
                "inclusionProof": {
                    "checkpoint": checkpoint,
                    "hashes": [h.hex() for h in _audit_path(index, leaves)],
                    "logIndex": index,
                    "rootHash": root.hex(),
                    "treeSize": len(leaves),
                },
                "signedEntryTimestamp": _b64(self.rekor_key.sign(promise, ec.ECDSA(hashes.SHA256()))),
            },
        }
        return 201, {secrets.token_hex(32): entry}

    # -- timestamp authority ---------------------------------------------------------------

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
        leaf_der = self.tsa_leaf.public_bytes(serialization.Encoding.DER)
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
        signature = self.tsa_key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
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

    # -- trust config ----------------------------------------------------------------------

    def trust_config(self) -> dict[str, Any]:
        """A ClientTrustConfig (v0.1) JSON document for this stack."""

        def key(private: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
            return {
                "rawBytes": _b64(_spki(private)),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": _EPOCH_START},
            }

        def service(url: str) -> dict[str, Any]:
            return {
                "url": url,
                "majorApiVersion": 1,
                "validFor": {"start": _EPOCH_START},
                "operator": "u2netp-mirror tests",
            }

        root_der = self.root.public_bytes(serialization.Encoding.DER)
        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [
                    {
                        "baseUrl": self.url,
                        "hashAlgorithm": "SHA2_256",
                        "publicKey": key(self.rekor_key),
                        "logId": {"keyId": _b64(self.rekor_log_id)},
                    }
                ],
                "certificateAuthorities": [
                    {
                        "subject": {"organization": "u2netp-mirror tests", "commonName": "loopback fulcio"},
                        "uri": self.url,
                        "certChain": {"certificates": [{"rawBytes": _b64(root_der)}]},
                        "validFor": {"start": _EPOCH_START},
                    }
                ],
                "ctlogs": [
                    {
                        "baseUrl": self.url,
                        "hashAlgorithm": "SHA2_256",
                        "publicKey": key(self.ct_key),
                        "logId": {"keyId": _b64(self.ct_log_id)},
                    }
                ],
                "timestampAuthorities": [
                    {
                        "subject": {"organization": "u2netp-mirror tests", "commonName": "loopback tsa"},
                        "uri": f"{self.url}/api/v1/timestamp",
                        "certChain": {
                            "certificates": [
                                {"rawBytes": _b64(self.tsa_leaf.public_bytes(serialization.Encoding.DER))},
                                {"rawBytes": _b64(self.tsa_root.public_bytes(serialization.Encoding.DER))},
                            ]
                        },
                        "validFor": {"start": _EPOCH_START},
                    }
                ],
            },
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.url)],
                "oidcUrls": [service(self.url)],
                "rekorTlogUrls": [service(self.url)],
                "tsaUrls": [service(f"{self.url}/api/v1/timestamp")],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }
