"""The provenance metadata embedded in the ONNX (``metadata_props``).

Torch-free, so the manifest and the verifier can read and compare it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from . import __version__
from .contract import MODEL_ID

EXPORTER = "u2netp-mirror"
INPUT_NAME = "input"
OUTPUT_NAME = "saliency_map"
OPSET = 17
TRACE_HEIGHT = 320
TRACE_WIDTH = 320
# The rewrite export applies after the trace (mirror/resize_sizes.py), as the manifest names it
# (export.graph_rewrites) for anyone reproducing the bytes.  Here, not there, because that
# module needs onnx and the manifest step must not import it before checking its arguments.
RESIZE_SIZES_REWRITE = (
    "mirror.resize_sizes: Resizes sized like a tensor read Concat(Shape(src, end=2), Shape(tar, start=2))"
)

# What upstream's data loader does before inference (RescaleT(320) + ToTensorLab(flag=0))
# and what its test script does after, so consumers can reproduce it.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSING = {
    "color_order": "RGB",
    "resize": [TRACE_HEIGHT, TRACE_WIDTH],
    "scale": "divide by the image's maximum value",
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
    "layout": "NCHW",
    "dtype": "float32",
}
POSTPROCESSING = "d0 is a sigmoid saliency map in [0, 1]; upstream then min-max normalises it per image"


def build_metadata(
    *,
    upstream_repo: str,
    upstream_commit: str,
    upstream_module_sha256: str,
    upstream_pinned: bool,
    checkpoint_sha256: str,
    license_spdx: str,
    torch_version: str,
    onnx_version: str,
    selected_output: str,
    build_kind: str,
) -> dict[str, str]:
    """The metadata_props to embed, as a sorted str → str mapping."""
    props = {
        "model_id": MODEL_ID,
        "build_kind": build_kind,
        "upstream_repo": upstream_repo,
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


# ModelProto field numbers (onnx.proto): metadata_props = 14, a StringStringEntryProto
# with key = 1 and value = 2.
_METADATA_PROPS, _KEY, _VALUE = 14, 1, 2
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
# Ours is about 2 KiB.  A file from elsewhere could carry any amount, and every entry is
# decoded: refuse more than this many bytes of metadata_props in all.
MAX_METADATA_BYTES = 1 << 20


def _varint(stream: BinaryIO) -> int:
    result = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise ValueError("truncated varint")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(stream: BinaryIO, end: int, metadata_limit: int | None = None) -> Iterator[tuple[int, int, bytes | None]]:
    """(field number, wire type, payload of length-delimited fields we keep) up to ``end``.

    Other payloads are skipped with a seek, so a large graph is never read.  A metadata entry
    longer than ``metadata_limit`` is refused before it is read.
    """
    while stream.tell() < end:
        tag = _varint(stream)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            _varint(stream)
            yield number, wire, None
        elif wire in (_FIXED64, _FIXED32):
            stream.seek(8 if wire == _FIXED64 else 4, io.SEEK_CUR)
            yield number, wire, None
        elif wire == _LENGTH_DELIMITED:
            length = _varint(stream)
            if stream.tell() + length > end:
                raise ValueError("field runs past the end of the message")
            if number in (_METADATA_PROPS, _KEY, _VALUE):
                if metadata_limit is not None and number == _METADATA_PROPS and length > metadata_limit:
                    raise ValueError(f"a metadata entry of {length:,} bytes; refusing to read it")
                yield number, wire, stream.read(length)
            else:
                stream.seek(length, io.SEEK_CUR)
                yield number, wire, None
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if stream.tell() != end:
        raise ValueError("message runs past its end")


def read_metadata(source: Path | bytes) -> dict[str, str]:
    """The metadata_props of a serialised ONNX model, read without importing onnx.

    A hand-written protobuf reader for one field, because ``import onnx`` alone costs about
    0.2 s (numpy and a C extension) and is all verify would need it for; this keeps
    ``u2netp-mirror verify`` fast and onnx out of the operators' install.  Raises
    ``ValueError`` for anything that is not a well-formed protobuf message.
    """
    with io.BytesIO(source) if isinstance(source, bytes) else Path(source).open("rb") as stream:
        end = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        props: dict[str, str] = {}
        total = 0
        for number, wire, payload in _fields(stream, end, metadata_limit=MAX_METADATA_BYTES):
            if number != _METADATA_PROPS or wire != _LENGTH_DELIMITED or payload is None:
                continue
            total += len(payload)
            if total > MAX_METADATA_BYTES:
                raise ValueError(f"metadata_props hold over {MAX_METADATA_BYTES >> 20} MiB; refusing to read them")
            entry = {n: p for n, w, p in _fields(io.BytesIO(payload), len(payload)) if p is not None}
            try:
                key = entry.get(_KEY, b"").decode("utf-8")
                value = entry.get(_VALUE, b"").decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("metadata is not UTF-8") from None
            if key in props:
                # onnx keeps both entries; readers disagree on which one counts.
                raise ValueError(f"metadata key {key[:60]!r} appears twice")
            props[key] = value
        return props


def compare(found: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    """Human-readable differences between two metadata mappings over ``expected``'s keys."""
    return [
        f"{key}: ONNX has {found.get(key, '<missing>')!r}, expected {value!r}"
        for key, value in expected.items()
        if found.get(key) != value
    ]
