"""Rekor v1: canonical (RFC 8785) entries in an RFC 6962 Merkle tree, answered with a signed
entry timestamp, an inclusion proof and a signed checkpoint."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import rfc8785
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ._crypto import b64, new_key, spki


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


class Rekor:
    """``url`` says where the log is served: real Rekor names its checkpoints after its host
    ("rekor.sigstore.dev - <tree id>", signed as "rekor.sigstore.dev"), and verifiers such as
    sigstore-js match that name against the log's base URL in the trusted root."""

    def __init__(self, url: Callable[[], str]) -> None:
        self._url = url
        self.key = new_key()
        self.log_id = hashlib.sha256(spki(self.key)).digest()
        self.tree_id = secrets.randbelow(2**48)
        self.leaves: list[bytes] = []
        self._lock = threading.Lock()

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

    def add_entry(self, body: bytes) -> tuple[int, dict[str, Any]]:
        canonical = self._canonical_entry(json.loads(body))
        if canonical is None:
            return 400, {"message": "only hashedrekord 0.0.1 and dsse 0.0.1 are supported here"}
        with self._lock:
            self.leaves.append(_leaf_hash(canonical))
            index, leaves = len(self.leaves) - 1, list(self.leaves)
        integrated = int(time.time())
        encoded = b64(canonical)
        log_id = self.log_id.hex()
        promise = rfc8785.dumps({"body": encoded, "integratedTime": integrated, "logID": log_id, "logIndex": index})
        root = _tree_hash(leaves)
        host = urlsplit(self._url()).netloc
        note = f"{host} - {self.tree_id}\n{len(leaves)}\n{b64(root)}\n"
        note_signature = self.key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = f"{note}\n\u2014 {host} {b64(self.log_id[:4] + note_signature)}\n"
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
                "signedEntryTimestamp": b64(self.key.sign(promise, ec.ECDSA(hashes.SHA256()))),
            },
        }
        return 201, {secrets.token_hex(32): entry}
