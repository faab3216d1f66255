import onnx
import pytest
from onnx import TensorProto, helper

from mirror.metadata import read_metadata
from tests.helpers import MODEL_ID, ONNX


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
    [{}, {"model_id": MODEL_ID}, {"a": "", "é": "ünïcode", "json": '{"x":[1,2]}', "long": "v" * 5000}],
)
def test_reader_agrees_with_onnx(props, tmp_path):
    data = model_bytes(props)
    expected = {p.key: p.value for p in onnx.load_model_from_string(data).metadata_props}
    assert read_metadata(data) == expected == props
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    assert read_metadata(path) == props


def test_reader_on_an_exported_model(exported_dist):
    path = exported_dist / ONNX
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


def test_oversized_metadata_is_refused_quickly():
    from mirror.metadata import MAX_METADATA_BYTES

    data = model_bytes({f"k{i}": "v" * 4096 for i in range(MAX_METADATA_BYTES // 4096 + 2)})
    with pytest.raises(ValueError, match="over 1 MiB"):
        read_metadata(data)
    one_huge = model_bytes({"k": "v" * (MAX_METADATA_BYTES + 1)})
    with pytest.raises(ValueError, match="refusing to read it"):
        read_metadata(one_huge)


def test_a_key_given_twice_is_refused():
    data = model_bytes({"model_id": MODEL_ID})
    model = onnx.load_model_from_string(data)
    model.metadata_props.add(key="model_id", value="something_else")
    with pytest.raises(ValueError, match="appears twice"):
        read_metadata(model.SerializeToString())
