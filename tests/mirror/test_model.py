import sys
import types

import pytest
import torch

from mirror.errors import CheckpointError, UpstreamError
from mirror.fixture import write_checkpoint
from mirror.model import build_u2netp, load_checkpoint, load_upstream_module


def test_upstream_module_is_isolated(checkout, monkeypatch):
    unrelated = types.ModuleType("model")
    monkeypatch.setitem(sys.modules, "model", unrelated)
    path_before, modules_before = list(sys.path), set(sys.modules)

    module = load_upstream_module(checkout.root)

    assert module.U2NETP.__module__ == "_u2netp_mirror_upstream_u2net"
    assert sys.modules["model"] is unrelated
    assert sys.path == path_before
    assert not {"torchvision", "torchvision.models", "_u2netp_mirror_upstream_u2net"} & (
        set(sys.modules) - modules_before
    )


def test_two_checkouts_load_their_own_code(checkout, pristine):
    (checkout.root / "model" / "u2net.py").write_text(
        "MARKER = 'copy'\n" + (pristine.root / "model/u2net.py").read_text()
    )
    assert load_upstream_module(checkout.root).MARKER == "copy"
    assert not hasattr(load_upstream_module(pristine.root), "MARKER")


def test_torchvision_stand_in_refuses_use(checkout):
    (checkout.root / "model" / "u2net.py").write_text("from torchvision import models\nmodels.resnet18\n")
    with pytest.raises(UpstreamError, match="torchvision is not installed"):
        load_upstream_module(checkout.root)


def test_module_without_u2netp_is_an_error(checkout):
    (checkout.root / "model" / "u2net.py").write_text("class U2NET: pass\n")
    with pytest.raises(UpstreamError, match=r"no nn.Module named U2NETP"):
        build_u2netp(checkout.root)


def test_module_that_fails_to_import_is_an_error(checkout):
    (checkout.root / "model" / "u2net.py").write_text("import not_a_real_module_xyz\n")
    with pytest.raises(UpstreamError, match=r"importing it failed.*ModuleNotFoundError"):
        build_u2netp(checkout.root)


def reference_state(pristine):
    net = build_u2netp(pristine.root)
    load_checkpoint(net, pristine.checkpoint)
    return net.state_dict()


@pytest.mark.parametrize("wrap", ["plain", "data_parallel", "state_dict_wrapper"])
def test_accepted_checkpoint_layouts(pristine, tmp_path, wrap):
    state = torch.load(pristine.checkpoint, weights_only=True)
    if wrap == "data_parallel":
        state = {f"module.{key}": value for key, value in state.items()}
    elif wrap == "state_dict_wrapper":
        state = {"state_dict": state, "epoch": 12}
    path = tmp_path / "u2netp.pth"
    torch.save(state, path)
    net = build_u2netp(pristine.root)
    load_checkpoint(net, path)
    expected = reference_state(pristine)
    assert all(torch.equal(net.state_dict()[key], value) for key, value in expected.items())


def test_data_parallel_checkpoint_from_the_fixture_writer(pristine, tmp_path):
    path = tmp_path / "dp.pth"
    write_checkpoint(pristine.root, path, data_parallel=True)
    assert all(key.startswith("module.") for key in torch.load(path, weights_only=True))
    load_checkpoint(build_u2netp(pristine.root), path)


class _Payload:
    """Pickles to a call that would create a marker file if it were ever executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_malicious_pickle_is_refused_and_never_executed(pristine, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "u2netp.pth"
    state = torch.load(pristine.checkpoint, weights_only=True)
    state["payload"] = _Payload(marker)
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(build_u2netp(pristine.root), path)
    assert "refused" in str(caught.value) and str(path) in str(caught.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable PyTorch checkpoint"),
        (b"\x80\x04garbage" * 100, "not a PyTorch checkpoint"),
        (b"PK\x03\x04" + b"\x00" * 64, "not a readable PyTorch checkpoint"),
    ],
    ids=["empty", "garbage-pickle", "broken-zip"],
)
def test_unreadable_files_are_one_line_errors(pristine, tmp_path, content, message):
    path = tmp_path / "u2netp.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(build_u2netp(pristine.root), path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_truncated_checkpoint_is_an_error(pristine, tmp_path):
    data = pristine.checkpoint.read_bytes()
    path = tmp_path / "u2netp.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(build_u2netp(pristine.root), path)


def test_missing_checkpoint_says_where_to_put_it(pristine, tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint here.*--checkpoint"):
        load_checkpoint(build_u2netp(pristine.root), tmp_path / "absent.pth")


def save_modified(pristine, tmp_path, change):
    state = torch.load(pristine.checkpoint, weights_only=True)
    change(state)
    path = tmp_path / "u2netp.pth"
    torch.save(state, path)
    return path


def test_missing_and_unexpected_keys_are_listed(pristine, tmp_path):
    def change(state):
        del state["outconv.weight"]
        state["extra.weight"] = torch.zeros(1)

    path = save_modified(pristine, tmp_path, change)
    with pytest.raises(CheckpointError, match=r"missing keys: outconv\.weight; unexpected keys: extra\.weight"):
        load_checkpoint(build_u2netp(pristine.root), path)


def test_many_missing_keys_are_summarised(pristine, tmp_path):
    def change(state):
        for key in list(state)[:9]:
            del state[key]

    path = save_modified(pristine, tmp_path, change)
    with pytest.raises(CheckpointError, match="and 4 more"):
        load_checkpoint(build_u2netp(pristine.root), path)


def test_shape_mismatch_is_listed(pristine, tmp_path):
    def change(state):
        state["outconv.weight"] = torch.zeros(1, 7, 1, 1)

    path = save_modified(pristine, tmp_path, change)
    with pytest.raises(CheckpointError, match=r"shape mismatches: outconv\.weight \(1, 7, 1, 1\) != \(1, 6, 1, 1\)"):
        load_checkpoint(build_u2netp(pristine.root), path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(pristine, tmp_path, bad):
    def change(state):
        state["outconv.weight"].view(-1)[0] = bad

    path = save_modified(pristine, tmp_path, change)
    with pytest.raises(CheckpointError, match=r"non-finite .* outconv\.weight"):
        load_checkpoint(build_u2netp(pristine.root), path)


def test_non_tensor_entries_are_refused(pristine, tmp_path):
    path = save_modified(pristine, tmp_path, lambda state: state.__setitem__("note", "hello"))
    with pytest.raises(CheckpointError, match="not tensors: note"):
        load_checkpoint(build_u2netp(pristine.root), path)


def test_a_tensor_is_not_a_state_dict(pristine, tmp_path):
    path = tmp_path / "u2netp.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="holds a Tensor, not a non-empty state dict"):
        load_checkpoint(build_u2netp(pristine.root), path)
