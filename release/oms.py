"""The OpenSSF model-signing signature over the whole release directory.

``model_signing verify sigstore DIR --signature u2netp_mirror_v1.oms.sigstore.json …`` (the
OpenSSF ``model-signing`` package, v1.x) accepts a Sigstore bundle holding a DSSE envelope whose
in-toto statement has predicate ``https://model_signing/signature/v1.0``: ``resources`` lists
every file of the model directory (name, algorithm, digest) in name order, ``serialization``
says how they were hashed, and the one subject's sha256 is taken over the concatenated raw
digests, in that order.  It re-hashes the directory (ignoring the signature itself) and
requires exactly those files.

This module writes that statement with sigstore-python (``dsse.StatementBuilder``,
``Signer.sign_dsse``) and reads it back for ``verify``: model-signing itself is a consumer's
tool, not a dependency.  The statement is signed last, so the resources include every other
bundle of the release.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sigstore import dsse

from mirror.contract import MODEL_ID, OMS_NAME
from mirror.hashing import is_sha256_hex

from .attestation import StatementError, read_in_toto
from .redact import printable

PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# model-signing's "files" serialization: each file hashed whole with sha256, symbolic links
# refused, the signature itself left out.
SERIALIZATION = {"method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": [OMS_NAME]}


def root_digest(files: Mapping[str, str]) -> str:
    """sha256 over the files' raw sha256 digests, in name order: the statement's subject digest."""
    hasher = hashlib.sha256()
    for name in sorted(files):
        hasher.update(bytes.fromhex(files[name]))
    return hasher.hexdigest()


def build_statement(files: Mapping[str, str]) -> dsse.Statement:
    """The statement over ``files`` (name -> sha256): every file of the release but this signature."""
    resources = [{"name": name, "algorithm": "sha256", "digest": files[name]} for name in sorted(files)]
    return (
        dsse.StatementBuilder()
        .subjects([dsse.Subject(name=MODEL_ID, digest=dsse.DigestSet({"sha256": root_digest(files)}))])
        .predicate_type(PREDICATE_TYPE)
        .predicate({"serialization": dict(SERIALIZATION), "resources": resources})
        .build()
    )


def read_statement(payload_type: str, payload: bytes) -> dict[str, str]:
    """The files (name -> sha256) a verified envelope's statement signs; ``StatementError`` if it
    is not a model-signing v1.0 statement, or its subject is not the digest of its resources."""
    statement = read_in_toto(payload_type, payload, PREDICATE_TYPE, PREDICATE_TYPE)
    return _files_of(statement)


def _files_of(statement: dict[str, Any]) -> dict[str, str]:
    try:
        predicate = statement["predicate"]
        serialization = predicate["serialization"]
        if serialization.get("method") != "files" or serialization.get("hash_type") != "sha256":
            raise StatementError(f"serialization is {printable(serialization, 120)}, not files hashed with sha256")
        files: dict[str, str] = {}
        for resource in predicate["resources"]:
            name, algorithm, digest = resource["name"], resource["algorithm"], resource["digest"]
            if not isinstance(name, str) or name in files or algorithm != "sha256" or not is_sha256_hex(digest):
                raise StatementError(f"a malformed or repeated resource {printable(name, 80)!r}")
            files[name] = digest
        (subject,) = statement["subject"]
        if subject["digest"]["sha256"] != root_digest(files):
            raise StatementError("its subject's sha256 is not the digest of its resources")
    except StatementError:
        raise
    except (KeyError, TypeError, ValueError):  # ValueError: not exactly one subject
        raise StatementError("it lacks one subject, serialization or resources") from None
    return files
