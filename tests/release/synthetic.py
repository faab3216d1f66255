"""A release made without torch: what the operator's tests verify on the base install.

The ONNX here is a protobuf ModelProto holding only the embedded metadata (verify reads that,
and hashes the bytes; it never runs the model), and the manifest is the manifest step's own
layout (``mirror.manifest_document``) filled with made-up values.  Everything is signed for real by the caller.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mirror import __version__
from mirror.contract import MANIFEST_NAME, MODEL_CARD_NAME, ONNX_NAME, licence_copy_name
from mirror.fixture import fixture_text
from mirror.jsonio import canonical_json
from mirror.manifest_document import UpstreamFacts, manifest_document
from mirror.metadata import build_metadata
from mirror.model_card import release_card
from mirror.provenance import FileRecord
from mirror.settings import UpstreamPin

LICENCE = fixture_text("apache-2.0.txt").encode("utf-8")
PINS = UpstreamPin(
    repo_url="https://github.com/xuebinqin/U-2-Net",
    commit="5" * 40,
    module_sha256="6" * 64,
    license_sha256=hashlib.sha256(LICENCE).hexdigest(),
    checkpoint_sha256="7" * 64,
)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def model_bytes(metadata: dict[str, str]) -> bytes:
    """A ModelProto: ir_version 8, a producer name, and ``metadata`` as metadata_props (field 14)."""
    proto = _varint(1 << 3) + _varint(8) + _field(2, b"u2netp-mirror synthetic")
    for key, value in metadata.items():
        proto += _field(14, _field(1, key.encode()) + _field(2, value.encode()))
    return proto


# What the manifest step records where upstream's 18 saved maps were reproduced.
HELD_WITNESS: dict[str, Any] = {
    "images_compared": 18,
    "worst_max_diff": 1,
    "worst_mean_diff": 0.03,
    "threshold": 1,
    "reason": "genuine weights reproduce upstream's maps within 1/255",
    "decoder": "IJG libjpeg 9d",
    "held": True,
    "per_image": [{"image": "a.png", "max_diff": 1, "mean_diff": 0.03, "over_1": 0.0, "over_2": 0.0}],
}


def write_release(
    dist: Path,
    pins: UpstreamPin = PINS,
    build_kind: str = "audited",
    version: str = __version__,
    witness: dict[str, Any] | None = None,
) -> None:
    """ONNX, manifest and licence copy in ``dist``, as an export and manifest of ``pins`` would leave them.

    An "audited" build records an upstream witness that held (``HELD_WITNESS``) unless ``witness`` is given.

    ``version`` is the u2netp-mirror that made it (embedded in the ONNX and the manifest).
    """
    metadata = build_metadata(
        upstream_repo=pins.repo_url,
        upstream_commit=pins.commit,
        upstream_module_sha256=pins.module_sha256,
        upstream_pinned=True,
        checkpoint_sha256=pins.checkpoint_sha256,
        license_spdx="Apache-2.0",
        torch_version="2.13.0+cpu",
        onnx_version="1.23.2",
        selected_output="d0",
        build_kind=build_kind,
    )
    metadata["exporter_version"] = version
    onnx = model_bytes(metadata)
    onnx_sha256 = hashlib.sha256(onnx).hexdigest()
    dist.mkdir(parents=True, exist_ok=True)
    (dist / ONNX_NAME).write_bytes(onnx)
    (dist / licence_copy_name("LICENSE")).write_bytes(LICENCE)
    card = release_card(
        "# a synthetic release's card\n",
        onnx_sha256=onnx_sha256,
        onnx_size=len(onnx),
        build_kind=build_kind,
        upstream_commit=pins.commit,
    )
    (dist / MODEL_CARD_NAME).write_bytes(card)
    shapes = [[1, 320, 320], [1, 45, 77], [2, 64, 48]]
    onnx_record = FileRecord("onnx", "dist", ONNX_NAME, onnx_sha256, len(onnx))
    licence = FileRecord("license", "dist", licence_copy_name("LICENSE"), pins.license_sha256, len(LICENCE))
    # The layout is the manifest step's own (mirror.manifest_document); only the values are made up here.
    document = manifest_document(
        build_kind=build_kind,
        upstream=UpstreamFacts(
            pin=pins,
            commit=pins.commit,
            module_path="model/u2net.py",
            module_sha256=pins.module_sha256,
            checkpoint_path="saved_models/u2netp/u2netp.pth",
            checkpoint_sha256=pins.checkpoint_sha256 or "7" * 64,
            license_path="LICENSE",
            license_sha256=pins.license_sha256,
        ),
        metadata=metadata,
        onnx=onnx_record,
        witness=witness if witness is not None or build_kind != "audited" else HELD_WITNESS,
        model_card_sha256=hashlib.sha256(card).hexdigest(),
        graph_rewrites=["mirror.resize_sizes: a synthetic manifest's rewrite"],
        validation={
            "onnx_checker": "onnx.checker.check_model(full_check=True)",
            "runtime": "onnxruntime 1.32.0 CPUExecutionProvider",
            "reference": "torch eager d0",
            "seed": 0,
            "tolerance": 1e-4,
            "mean_tolerance": 1e-6,
            "shapes": [
                {"batch": b, "height": h, "width": w, "max_abs_diff": 1e-6, "mean_abs_diff": 1e-8} for b, h, w in shapes
            ],
            "max_abs_diff": 1e-6,
            "mean_abs_diff": 1e-8,
            "passed": True,
        },
        toolchain={
            "python": "3.11.7",
            "torch": metadata["torch_version"],
            "onnx": metadata["onnx_version"],
            "onnxruntime": "1.32.0",
            "numpy": "2.4.6",
            "u2netp_mirror": version,
        },
        run_provenance={
            "schema": "ai-run-provenance-v1",
            "entrypoint": "invoke manifest",
            "argv": ["invoke", "manifest"],
            "args": {
                "allow_unpinned": False,
                "tolerance": 1e-4,
                "mean_tolerance": 1e-6,
                "seed": 0,
                "validation_shapes": shapes,
            },
            "inputs": [
                FileRecord("upstream_module", "upstream", "model/u2net.py", pins.module_sha256, 1).as_dict(),
                FileRecord("license", "upstream", "LICENSE", pins.license_sha256, len(LICENCE)).as_dict(),
                FileRecord(
                    "checkpoint", "upstream", "saved_models/u2netp/u2netp.pth", pins.checkpoint_sha256 or "7" * 64, 1
                ).as_dict(),
            ],
            "outputs": [onnx_record.as_dict(), licence.as_dict()],
        },
    )
    (dist / MANIFEST_NAME).write_bytes(canonical_json(document))
