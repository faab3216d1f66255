import onnx
import pytest
from onnx import TensorProto, helper

from mirror.metadata import read_metadata


def model_bytes(props: dict[str, str]) -> bytes:
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [1000], [0.5] * 1000)],
    )
    model = helper.make_model(graph, producer_name="test", doc_string="d")
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


@pytest.mark.parametrize(
    "props",
    [{}, {"model_id": "u2netp_mirror_v1"}, {"a": "", "é": "ünïcode", "json": '{"x":[1,2]}', "long": "v" * 5000}],
)
def test_reader_agrees_with_onnx(props, tmp_path):
    data = model_bytes(props)
    expected = {p.key: p.value for p in onnx.load_model_from_string(data).metadata_props}
    assert read_metadata(data) == expected == props
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    assert read_metadata(path) == props


def test_reader_on_an_exported_model(exported_dist):
    path = exported_dist / "u2netp_mirror_v1.onnx"
    assert read_metadata(path) == {p.key: p.value for p in onnx.load(path).metadata_props}


@pytest.mark.parametrize("cut", [1, 7, 100, -3])
def test_truncated_models_are_errors(cut):
    data = model_bytes({"model_id": "x"})
    with pytest.raises(ValueError):
        read_metadata(data[:cut])


@pytest.mark.parametrize("garbage", [b"\xff" * 20, b"\x0f\x00", b"\x72\xff\xff\xff\xff\x0f", b"not an onnx model"])
def test_garbage_is_an_error(garbage):
    with pytest.raises(ValueError):
        read_metadata(garbage)
