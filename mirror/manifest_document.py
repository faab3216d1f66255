"""The manifest's layout, built from plain values, torch-free.

The manifest step fills it from a real export; tests (and anything else that needs a manifest
without torch) fill it from their own values.  Either way the document has one shape, spelled
here once; ``manifest.schema.json`` is its contract with readers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .contract import MODEL_ID
from .license import SPDX_ID
from .manifest import SCHEMA_ID
from .metadata import INPUT_NAME, OPSET, OUTPUT_NAME, RESIZE_SIZES_REWRITE, TRACE_HEIGHT, TRACE_WIDTH
from .provenance import FileRecord
from .settings import UpstreamPin

EXPORTER = "torch.onnx.export (TorchScript, dynamo=False)"


@dataclass(frozen=True)
class UpstreamFacts:
    """What the audit found and what it was held to: the manifest's ``upstream`` section."""

    pin: UpstreamPin
    commit: str
    module_path: str
    module_sha256: str
    checkpoint_path: str
    checkpoint_sha256: str
    license_path: str
    license_sha256: str
    notice_sha256: str | None = None
    # Each pin that is missing or does not hold (empty: every pin holds).
    pin_problems: Sequence[str] = ()
    allow_unpinned: bool = False


def upstream_section(facts: UpstreamFacts) -> dict[str, Any]:
    pin = facts.pin
    return {
        "repo": pin.repo_url,
        "commit": facts.commit,
        "module_path": facts.module_path,
        "module_sha256": facts.module_sha256,
        "checkpoint_path": facts.checkpoint_path,
        "checkpoint_sha256": facts.checkpoint_sha256,
        "license_path": facts.license_path,
        "license_sha256": facts.license_sha256,
        "license_spdx": SPDX_ID,
        "notice_present": facts.notice_sha256 is not None,
        "notice_sha256": facts.notice_sha256,
        "pinned": not facts.pin_problems,
        "pin_problems": list(facts.pin_problems),
        "allow_unpinned": facts.allow_unpinned,
        "pin": {
            "source": pin.source,
            "commit": pin.commit,
            "module_sha256": pin.module_sha256,
            "license_sha256": pin.license_sha256,
            "checkpoint_sha256": pin.checkpoint_sha256,
        },
    }


def export_section(
    metadata: Mapping[str, str], graph_rewrites: Sequence[str] = (RESIZE_SIZES_REWRITE,)
) -> dict[str, Any]:
    """The export settings, and the metadata the ONNX carries (as written)."""
    return {
        "opset": OPSET,
        "height": TRACE_HEIGHT,
        "width": TRACE_WIDTH,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "dynamic_axes": ["batch", "height", "width"],
        "selected_upstream_output": metadata.get("selected_output", ""),
        "exporter": EXPORTER,
        "graph_rewrites": list(graph_rewrites),
        "metadata_written": dict(metadata),
    }


def manifest_document(
    *,
    build_kind: str,
    upstream: UpstreamFacts,
    metadata: Mapping[str, str],
    onnx: FileRecord,
    validation: Mapping[str, Any],
    toolchain: Mapping[str, str],
    run_provenance: Mapping[str, Any],
    graph_rewrites: Sequence[str] = (RESIZE_SIZES_REWRITE,),
    witness: Mapping[str, Any] | None = None,
    model_card_sha256: str | None = None,
) -> dict[str, Any]:
    """The whole manifest (not yet checked against its schema: ``manifest_bytes`` does that).

    ``witness`` is the upstream witness's verdict (``mirror.witness``), where the checkout holds
    upstream's test set; it is left out where it does not.  ``model_card_sha256`` ties the card
    the release ships to the signed manifest (the build job's, which the publish job checks).
    """
    outputs: dict[str, Any] = {"onnx_path": onnx.path, "onnx_sha256": onnx.sha256, "onnx_size": onnx.size}
    if model_card_sha256 is not None:
        outputs["model_card_sha256"] = model_card_sha256
    document = {
        "schema": SCHEMA_ID,
        "model_id": MODEL_ID,
        "build_kind": build_kind,
        "upstream": upstream_section(upstream),
        "export": export_section(metadata, graph_rewrites),
        "outputs": outputs,
        "validation": dict(validation),
        "toolchain": dict(toolchain),
        "run_provenance": dict(run_provenance),
    }
    if witness is not None:
        document["witness"] = dict(witness)
    return document
