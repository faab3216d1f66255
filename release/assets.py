"""The release's files and how they relate: names, bundles, and the ONNX ↔ manifest hash."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mirror.contract import MANIFEST_NAME, MODEL_CARD_NAME, ONNX_NAME, bundle_name, licence_copy_name
from mirror.errors import MirrorError
from mirror.hashing import sha256_file
from mirror.manifest import load_manifest

from .errors import VerificationFailed


def bundle_path(path: Path) -> Path:
    """Where the Sigstore bundle of ``path`` lives: right beside it, ``<name>.sigstore.json``."""
    return path.with_name(bundle_name(path.name))


def licence_copies(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The upstream licence files a release carries beside the model, by name, with the sha256
    the (signed) manifest records for each: LICENSE always, NOTICE when upstream has one."""
    upstream = manifest["upstream"]
    copies = {licence_copy_name("LICENSE"): upstream["license_sha256"]}
    if upstream["notice_present"]:
        copies[licence_copy_name("NOTICE")] = upstream["notice_sha256"]
    return copies


def described_files(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Every file beside the ONNX whose sha256 the (signed) manifest records: the licence copies,
    and the model card (manifests made by u2netp-mirror 0.3.0 and later)."""
    files = licence_copies(manifest)
    if (card := manifest["outputs"].get("model_card_sha256")) is not None:
        files[MODEL_CARD_NAME] = card
    return files


def checked_manifest(dist: Path, onnx_sha256: str | None = None) -> tuple[dict[str, Any], str]:
    """Load dist's manifest (schema-checked) and confirm the ONNX is the one it describes.

    Pass ``onnx_sha256`` if it is already known, to save hashing the ONNX again.
    Returns the manifest and the ONNX's sha256; raises ``VerificationFailed`` otherwise.
    """
    onnx_path, manifest_path = dist / ONNX_NAME, dist / MANIFEST_NAME
    try:
        manifest = load_manifest(manifest_path)
    except MirrorError as exc:  # ManifestError: keep its one-line text, name the check
        raise VerificationFailed("manifest schema", str(exc)) from None
    if not onnx_path.is_file():
        raise VerificationFailed("onnx sha256", f"{onnx_path}: missing")
    onnx_sha256 = onnx_sha256 or sha256_file(onnx_path)
    expected = manifest["outputs"]["onnx_sha256"]
    if onnx_sha256 != expected:
        raise VerificationFailed(
            "onnx sha256",
            f"{onnx_path} has sha256 {onnx_sha256[:16]}…, the manifest says {expected[:16]}… "
            "(the ONNX is not the one the manifest describes)",
        )
    return manifest, onnx_sha256
