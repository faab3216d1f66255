"""Shorten the shape arithmetic the tracer emits for upstream's ``_upsample_like``.

``F.interpolate(src, size=tar.shape[2:])`` traces, with dynamic axes, to a chain per Resize::

    Concat(Slice(Shape(src), 0, 2), Cast(Concat(Unsqueeze(Gather(Shape(tar), 2)),
                                                 Unsqueeze(Gather(Shape(tar), 3)))))

which is ``Concat(Shape(src, end=2), Shape(tar, start=2))`` (Shape's start/end exist since
opset 15).  The long form costs nothing per inference, but onnxruntime optimises every
node of it at every session start: on U2NETP it is 550 of the traced graph's 1,025 nodes
(258 of them Constants, for 38 Resizes), and replacing it halves session creation (median of
20 alternated pairs on the bench machine, 0.50x).  The values are
the same int64 sizes, so outputs are bit-identical and N/H/W stay dynamic.

Only Resizes whose sizes come from exactly that chain are touched; anything else is left as
the exporter wrote it.  torch-free: needs only onnx.
"""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper


class _Graph:
    """Lookups over one graph: which node makes a tensor, and the value of a constant."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.producer = {output: node for node in graph.node for output in node.output}
        self.initializers = {tensor.name: tensor for tensor in graph.initializer}

    def node(self, tensor: str, op_type: str) -> onnx.NodeProto | None:
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type == op_type else None

    def constant(self, tensor: str) -> object:
        """The value of a Constant node's output or an initializer, as a list; else None."""
        if tensor in self.initializers:
            return numpy_helper.to_array(self.initializers[tensor]).tolist()
        node = self.node(tensor, "Constant")
        if node is None or len(node.attribute) != 1 or node.attribute[0].name != "value":
            return None
        return numpy_helper.to_array(node.attribute[0].t).tolist()


def _attribute(node: onnx.NodeProto, name: str) -> object:
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return None


def _spatial_source(graph: _Graph, sizes: str) -> tuple[str, str] | None:
    """(src, tar) if ``sizes`` is the traced ``src.shape[:2] + tar.shape[2:]`` chain, else None."""
    concat = graph.node(sizes, "Concat")
    if concat is None or len(concat.input) != 2 or _attribute(concat, "axis") != 0:
        return None
    head, cast = graph.node(concat.input[0], "Slice"), graph.node(concat.input[1], "Cast")
    if head is None or cast is None or _attribute(cast, "to") != onnx.TensorProto.INT64:
        return None
    src_shape = graph.node(head.input[0], "Shape")
    if src_shape is None or src_shape.attribute:
        return None
    # Slice(data, starts, ends[, axes[, steps]]): only [0:2] on axis 0 with step 1.
    bounds = [graph.constant(name) for name in head.input[1:]]
    if bounds[:2] != [[0], [2]] or bounds[2:] not in ([], [[0]], [[0], [1]]):
        return None
    spatial = graph.node(cast.input[0], "Concat")
    if spatial is None or len(spatial.input) != 2 or _attribute(spatial, "axis") != 0:
        return None
    targets = set()
    for part, axis in zip(spatial.input, (2, 3), strict=True):
        unsqueeze = graph.node(part, "Unsqueeze")
        gather = graph.node(unsqueeze.input[0], "Gather") if unsqueeze is not None else None
        tar_shape = graph.node(gather.input[0], "Shape") if gather is not None else None
        if unsqueeze is None or graph.constant(unsqueeze.input[1]) != [0]:
            return None
        if gather is None or tar_shape is None or tar_shape.attribute or graph.constant(gather.input[1]) != axis:
            return None
        targets.add(tar_shape.input[0])
    if len(targets) != 1:
        return None
    return src_shape.input[0], targets.pop()


def _names_read(graph: onnx.GraphProto) -> set[str]:
    names = {output.name for output in graph.output}
    for node in graph.node:
        names.update(node.input)
        for attribute in node.attribute:
            # A subgraph (If, Loop) may read outer tensors by name.
            for subgraph in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
                names |= _names_read(subgraph)
    return names


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove nodes and initializers nothing reads any more, and their value_info."""
    while True:
        read = _names_read(graph)
        kept = [node for node in graph.node if any(name in read for name in node.output)]
        if len(kept) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(kept)
    # An initializer also listed as a graph input is an overridable default: keep it.
    read |= {graph_input.name for graph_input in graph.input}
    kept_initializers = [tensor for tensor in graph.initializer if tensor.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers)
    made = {name for node in graph.node for name in node.output} | {i.name for i in graph.input}
    made |= {i.name for i in graph.initializer}
    kept_info = [info for info in graph.value_info if info.name in made]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)


def simplify_resize_sizes(model: onnx.ModelProto) -> int:
    """Rewrite, in place, each matching Resize's sizes input; return how many were rewritten.

    Deterministic: new names come from a counter in graph order, and each tensor's shape
    slice is taken once however many Resizes use it.
    """
    graph = _Graph(model.graph)
    if any(name.startswith("resize_sizes/") for name in graph.producer):
        return 0  # our names are taken (or this graph was rewritten already): change nothing
    shape_slices: dict[tuple[str, str], str] = {}
    inserted_before: dict[int, list[onnx.NodeProto]] = {}

    def shape_slice(tensor: str, bound: str, value: int, into: list[onnx.NodeProto]) -> str:
        if (tensor, bound) not in shape_slices:
            name = f"resize_sizes/shape_{len(shape_slices)}"
            shape = helper.make_node("Shape", [tensor], [name], name=name)
            shape.attribute.append(helper.make_attribute(bound, value))
            into.append(shape)
            shape_slices[tensor, bound] = name
        return shape_slices[tensor, bound]

    for index, node in enumerate(model.graph.node):
        if node.op_type != "Resize" or len(node.input) != 4 or not node.input[3]:
            continue
        source = _spatial_source(graph, node.input[3])
        if source is None:
            continue
        src, tar = source
        new_nodes: list[onnx.NodeProto] = []
        leading = shape_slice(src, "end", 2, new_nodes)
        spatial = shape_slice(tar, "start", 2, new_nodes)
        sizes = f"resize_sizes/sizes_{len(inserted_before)}"
        new_nodes.append(helper.make_node("Concat", [leading, spatial], [sizes], name=sizes, axis=0))
        inserted_before[index] = new_nodes
        node.input[3] = sizes

    if inserted_before:
        # Inserted just before their Resize: every input they read (src, tar) is made
        # earlier, so the node list stays topologically sorted as the format requires.
        nodes = []
        for index, node in enumerate(model.graph.node):
            nodes.extend(inserted_before.get(index, []))
            nodes.append(node)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        _drop_unused(model.graph)
    return len(inserted_before)
