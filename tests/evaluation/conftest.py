"""A labelled image set and models built by the tests: synthetic scenes whose masks are known exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image, ImageDraw

from tests.helpers import ONNX


def scene(seed: int, height: int = 96, width: int = 128) -> tuple[Image.Image, Image.Image]:
    """A red ellipse (the salient object) on green-grey noise, and its mask."""
    rng = np.random.default_rng(seed)
    background = rng.normal([70, 140, 80], 18, size=(height, width, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(background)
    mask = Image.new("L", (width, height), 0)
    left, top = int(rng.integers(5, width // 2)), int(rng.integers(5, height // 2))
    box = (left, top, left + int(rng.integers(25, width // 2)), top + int(rng.integers(20, height // 2)))
    ImageDraw.Draw(image).ellipse(box, fill=(200 + seed % 40, 40, 30))
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return image, mask


@pytest.fixture(scope="session")
def labelled(tmp_path_factory) -> Path:
    """DUTS-like: Image/*.jpg|png and Mask/*.png, plus the awkward cases."""
    root = tmp_path_factory.mktemp("labelled")
    images, masks = root / "Image", root / "Mask"
    images.mkdir()
    masks.mkdir()
    for seed in range(8):
        image, mask = scene(seed)
        image.save(images / f"scene{seed}.{'jpg' if seed % 2 else 'png'}", quality=95)
        mask.save(masks / f"scene{seed}.png")
    image, mask = scene(20)
    image.convert("L").save(images / "grey.png")  # a grey image is made RGB
    mask.save(masks / "grey.png")
    image, mask = scene(21)
    image.convert("RGBA").save(images / "alpha.png")  # so is one with an alpha channel
    mask.save(masks / "alpha.png")
    scene(22)[0].save(images / "lonely.png")  # no mask: agreement only
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")  # unreadable: skipped
    (images / "notes.txt").write_text("not an image, not counted\n")
    return root


def _saliency_graph(name: str, input_name: str, dims: list, outputs: int, gain: float) -> onnx.ModelProto:
    """sigmoid(gain * (R - G)) on the normalised input: finds red things, our scenes' objects."""
    nodes = [
        helper.make_node("Slice", [input_name, "r0", "r1", "axis"], ["red"]),
        helper.make_node("Slice", [input_name, "g0", "g1", "axis"], ["green"]),
        helper.make_node("Sub", ["red", "green"], ["contrast"]),
        helper.make_node("Mul", ["contrast", "gain"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["d0"]),
    ]
    names = ["d0"]
    for index in range(1, outputs):  # side outputs after d0, as upstream's U2NETP has six of them
        nodes.append(helper.make_node("Identity", ["d0"], [f"d{index}"]))
        names.append(f"d{index}")
    out_dims = [dims[0], 1, dims[2], dims[3]]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, out_dims) for n in names],
        initializer=[
            helper.make_tensor("r0", TensorProto.INT64, [1], [0]),
            helper.make_tensor("r1", TensorProto.INT64, [1], [1]),
            helper.make_tensor("g0", TensorProto.INT64, [1], [1]),
            helper.make_tensor("g1", TensorProto.INT64, [1], [2]),
            helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
            helper.make_tensor("gain", TensorProto.FLOAT, [], [gain]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    """A reference baseline that knows what our scenes look like: dynamic N/H/W, no metadata."""
    path = tmp_path_factory.mktemp("models") / "reference.onnx"
    onnx.save(_saliency_graph("reference", "image", ["n", 3, "h", "w"], 1, 2.0), path)
    return path


@pytest.fixture(scope="session")
def rembg_shaped(tmp_path_factory) -> Path:
    """Shaped like rembg's u2netp.onnx: input.1 fixed at 1x3x320x320, seven outputs, d0 first."""
    path = tmp_path_factory.mktemp("models") / "u2netp.onnx"
    onnx.save(_saliency_graph("rembg-like", "input.1", [1, 3, 320, 320], 7, 1.5), path)
    return path


@pytest.fixture(scope="session")
def random_candidate(exported_dist) -> Path:
    """Our export of the fixture: U2NETP's interface with random weights."""
    return exported_dist / ONNX
