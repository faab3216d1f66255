"""The resize-size rewrite keeps outputs bit-identical at any N/H/W and touches only what it recognises."""

import io
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mirror.resize_sizes import simplify_resize_sizes


class UpsampleLike(nn.Module):
    """upstream's pattern: a pooled branch brought back to another tensor's size, plus a fixed-scale resize."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = torch.relu(self.conv(x))
        low = F.max_pool2d(skip, 2, ceil_mode=True)
        lower = F.max_pool2d(low, 2, ceil_mode=True)
        up = F.interpolate(lower, size=low.shape[2:], mode="bilinear", align_corners=False)
        up = F.interpolate(up + low, size=skip.shape[2:], mode="bilinear", align_corners=False)
        # Sized by a scale, not by another tensor: the rewrite must leave it alone.
        doubled = F.interpolate(skip + up, scale_factor=2.0, mode="bilinear", align_corners=False)
        return torch.sigmoid(doubled.mean(dim=1, keepdim=True))


def traced() -> onnx.ModelProto:
    torch.manual_seed(0)  # the same weights every call
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = {0: "batch", 2: "height", 3: "width"}
        torch.onnx.export(
            UpsampleLike().eval(),
            (torch.zeros(1, 3, 32, 32),),
            buffer,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes, "output": axes},
        )
    return onnx.load_model_from_string(buffer.getvalue())


def run(model: onnx.ModelProto, image: np.ndarray) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": image})[0]


def resize_sizes_producers(model: onnx.ModelProto) -> list[str]:
    producers = {output: node.op_type for node in model.graph.node for output in node.output}
    resizes = [node for node in model.graph.node if node.op_type == "Resize"]
    return [producers.get(node.input[3], "-") if len(node.input) == 4 else "-" for node in resizes]


def test_rewrite_shortens_the_graph_and_keeps_outputs_identical_at_any_size():
    original = traced()
    rewritten = traced()
    assert simplify_resize_sizes(rewritten) == 2
    onnx.checker.check_model(rewritten, full_check=True)
    assert len(rewritten.graph.node) < len(original.graph.node)
    assert {"Gather", "Unsqueeze", "Cast", "Slice"}.isdisjoint(n.op_type for n in rewritten.graph.node)
    # The two tensor-sized Resizes now read Concat(Shape, Shape); the scale-sized one is as traced.
    assert resize_sizes_producers(rewritten) == ["Concat", "Concat", "-"]

    rng = np.random.default_rng(0)
    for shape in [(1, 3, 32, 32), (2, 3, 33, 17), (3, 3, 7, 50)]:  # dynamic N/H/W, odd and non-square
        image = rng.standard_normal(shape, dtype=np.float32)
        expected = run(original, image)
        assert expected.shape == (shape[0], 1, 2 * shape[2], 2 * shape[3])
        np.testing.assert_array_equal(run(rewritten, image), expected)


def test_rewrite_is_deterministic_and_a_second_pass_changes_nothing():
    first, second = traced(), traced()
    simplify_resize_sizes(first)
    simplify_resize_sizes(second)
    assert first.SerializeToString(deterministic=True) == second.SerializeToString(deterministic=True)
    before = first.SerializeToString(deterministic=True)
    assert simplify_resize_sizes(first) == 0
    assert first.SerializeToString(deterministic=True) == before


@pytest.mark.parametrize("change", ["slice end", "gather index", "two targets"])
def test_a_chain_that_does_not_mean_src_shape_plus_tar_shape_is_left_alone(change):
    model = traced()
    nodes = {node.name: node for node in model.graph.node}
    producers = {output: node for node in model.graph.node for output in node.output}
    resize = next(node for node in model.graph.node if node.op_type == "Resize")
    concat = producers[resize.input[3]]
    slice_, cast = producers[concat.input[0]], producers[concat.input[1]]
    spatial = producers[cast.input[0]]
    first_gather = producers[producers[spatial.input[0]].input[0]]
    if change == "slice end":
        constant = producers[slice_.input[2]]
        constant.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array([1], dtype=np.int64)))
    elif change == "gather index":
        constant = producers[first_gather.input[1]]
        constant.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array(3, dtype=np.int64)))
    else:  # H from one tensor, W from another
        tar = producers[first_gather.input[0]].input[0]
        other = next(n for n in nodes.values() if n.op_type == "Shape" and n.input[0] != tar)
        first_gather.input[0] = other.output[0]
    assert simplify_resize_sizes(model) == 1  # only the other tensor-sized Resize
    assert resize.input[3] == concat.output[0]
    assert concat in model.graph.node
