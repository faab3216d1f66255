"""The provenance metadata embedded in the ONNX (``metadata_props``).

Torch-free, so the manifest and the verifier can read and compare it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from . import __version__
from .settings import MODEL_ID, UPSTREAM_REPO

EXPORTER = "u2netp-mirror"
INPUT_NAME = "input"
OUTPUT_NAME = "saliency_map"
OPSET = 17
TRACE_HEIGHT = 320
TRACE_WIDTH = 320

# What upstream's data loader does before inference (RescaleT(320) + ToTensorLab(flag=0))
# and what its test script does after, so consumers can reproduce it.
PREPROCESSING = {
    "color_order": "RGB",
    "resize": [TRACE_HEIGHT, TRACE_WIDTH],
    "scale": "divide by the image's maximum value",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "layout": "NCHW",
    "dtype": "float32",
}
POSTPROCESSING = "d0 is a sigmoid saliency map in [0, 1]; upstream then min-max normalises it per image"

# The keys the manifest cross-checks against its own inputs.
CROSS_CHECKED = (
    "model_id",
    "upstream_commit",
    "upstream_module_sha256",
    "upstream_pinned",
    "checkpoint_sha256",
)


def build_metadata(
    *,
    upstream_commit: str,
    upstream_module_sha256: str,
    upstream_pinned: bool,
    checkpoint_sha256: str,
    license_spdx: str,
    torch_version: str,
    onnx_version: str,
    selected_output: str,
) -> dict[str, str]:
    """The metadata_props to embed, as a sorted str → str mapping."""
    props = {
        "model_id": MODEL_ID,
        "upstream_repo": UPSTREAM_REPO,
        "upstream_commit": upstream_commit,
        "upstream_module_sha256": upstream_module_sha256,
        "upstream_pinned": "true" if upstream_pinned else "false",
        "checkpoint_sha256": checkpoint_sha256,
        "license": license_spdx,
        "exporter": EXPORTER,
        "exporter_version": __version__,
        "torch_version": torch_version,
        "onnx_version": onnx_version,
        "opset": str(OPSET),
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "selected_output": selected_output,
        "preprocessing": json.dumps(PREPROCESSING, sort_keys=True, separators=(",", ":")),
        "postprocessing": POSTPROCESSING,
    }
    return dict(sorted(props.items()))


def read_metadata(model_bytes_or_proto: object) -> dict[str, str]:
    """metadata_props of an ONNX model (bytes or ModelProto) as a dict."""
    import onnx  # onnx is a base dependency, but keep `import mirror.metadata` instant.

    if isinstance(model_bytes_or_proto, bytes):
        proto = onnx.load_model_from_string(model_bytes_or_proto)
    else:
        proto = model_bytes_or_proto
    return {prop.key: prop.value for prop in proto.metadata_props}  # type: ignore[attr-defined]


def compare(found: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    """Human-readable differences between two metadata mappings over ``expected``'s keys."""
    return [
        f"{key}: ONNX has {found.get(key, '<missing>')!r}, expected {value!r}"
        for key, value in expected.items()
        if found.get(key) != value
    ]
