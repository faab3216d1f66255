"""Trace U2NETP's d0 to ONNX opset 17 with dynamic batch, height and width.

Imports torch: import this module only where torch is needed.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import onnx
import torch
from torch import nn

from .errors import ExportError
from .metadata import INPUT_NAME, OPSET, OUTPUT_NAME, TRACE_HEIGHT, TRACE_WIDTH
from .resize_sizes import simplify_resize_sizes

_DYNAMIC_AXES = {0: "batch", 2: "height", 3: "width"}


def _strip_doc_strings(graph: onnx.GraphProto) -> None:
    # The TorchScript exporter can leave source locations in doc strings: absolute
    # paths that would differ between two copies of the same checkout.
    graph.doc_string = ""
    for node in graph.node:
        node.doc_string = ""
        for attribute in node.attribute:
            if attribute.HasField("g"):
                _strip_doc_strings(attribute.g)
            for subgraph in attribute.graphs:
                _strip_doc_strings(subgraph)


@dataclass(frozen=True)
class Exported:
    """The serialised ONNX, and the input it was traced with and torch's output for it."""

    model_bytes: bytes
    example: torch.Tensor
    # head(example), taken from the tracing forward pass: tracing runs the real eager
    # kernels, so this is torch's reference output for the example without a second pass.
    # None if the exporter did not run the model exactly once.
    example_output: torch.Tensor | None


def export_model(head: nn.Module, metadata: dict[str, str], example: torch.Tensor | None = None) -> Exported:
    """Trace ``head`` (one input, one output) at ``example`` (default zeros, 1x3x320x320) to ONNX.

    ``metadata`` is embedded as metadata_props.  The graph does not depend on the example's
    values, only on its shape.  Uses the TorchScript exporter (``dynamo=False``): it emits
    opset 17 natively and keeps upstream's size-driven resizes dynamic, where the dynamo
    exporter (torch 2.13) only targets opset 18 and down-converts, and takes ~30x longer.
    The traced resize-size arithmetic is then shortened (see :mod:`mirror.resize_sizes`).
    """
    if example is None:
        example = torch.zeros(1, 3, TRACE_HEIGHT, TRACE_WIDTH, dtype=torch.float32)
    outputs: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _module, _args, output: outputs.append(output.detach().clone()))
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Tracer and deprecation warnings about upstream code are expected and not actionable.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                head,
                (example,),
                buffer,  # type: ignore[arg-type]  # a file object works (and is documented); the hint says path
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: _DYNAMIC_AXES, OUTPUT_NAME: _DYNAMIC_AXES},
                do_constant_folding=True,
                export_params=True,
            )
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {exc})") from exc
    finally:
        hook.remove()

    model = onnx.load_model_from_string(buffer.getvalue())
    simplify_resize_sizes(model)
    _strip_doc_strings(model.graph)
    model.doc_string = ""
    _embed(model, metadata)
    return Exported(model.SerializeToString(deterministic=True), example, outputs[0] if len(outputs) == 1 else None)


def _embed(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)


def with_metadata(model_bytes: bytes, metadata: dict[str, str]) -> bytes:
    """The same model with ``metadata`` as its metadata_props: the bytes an export with it would give."""
    model = onnx.load_model_from_string(model_bytes)
    _embed(model, metadata)
    return model.SerializeToString(deterministic=True)
