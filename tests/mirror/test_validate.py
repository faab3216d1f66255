"""The export's trace doubles as torch's reference for its input; validation uses it only for that input."""

import pytest
import torch

from mirror.errors import ValidationError
from mirror.export import export_model
from mirror.model import SaliencyHead, build_u2netp, load_checkpoint
from mirror.settings import DEFAULT_VALIDATION_SHAPES
from mirror.validate import seeded_images, validate


@pytest.fixture(scope="module")
def head(pristine):
    net = build_u2netp(pristine.root)
    load_checkpoint(net, pristine.checkpoint)
    return SaliencyHead(net).eval()


def check(exported, head, known):
    return validate(
        exported.model_bytes,
        head,
        shapes=DEFAULT_VALIDATION_SHAPES,
        tolerance=1e-5,
        mean_tolerance=1e-6,
        seed=0,
        label="m.onnx",
        known=known,
    )


def test_trace_output_is_torch_output_and_graph_ignores_trace_values(head):
    (example,) = seeded_images(0, DEFAULT_VALIDATION_SHAPES[:1])
    exported = export_model(head, {}, example)
    with torch.no_grad():
        eager = head(example)
    assert exported.example is example
    torch.testing.assert_close(exported.example_output, eager, atol=1e-6, rtol=0)
    # The graph depends on the trace input's shape only: zeros give the same bytes.
    assert export_model(head, {}).model_bytes == exported.model_bytes


def test_known_output_is_used_for_an_equal_input(head):
    (example,) = seeded_images(0, DEFAULT_VALIDATION_SHAPES[:1])
    exported = export_model(head, {}, example)
    report = check(exported, head, (exported.example, exported.example_output))
    assert [(c.batch, c.height, c.width) for c in report.checks] == list(DEFAULT_VALIDATION_SHAPES)
    assert report.max_abs_diff <= 1e-5
    # A wrong reference for that input is caught: the known output really stood in for torch.
    wrong = exported.example_output + 0.01
    with pytest.raises(ValidationError, match=r"m\.onnx: .* by 0\.01 .* at input 1x3x320x320"):
        check(exported, head, (exported.example.clone(), wrong))


def test_known_output_is_ignored_for_another_input(head):
    exported = export_model(head, {})  # traced at zeros, not at the first seeded input
    garbage = torch.full_like(exported.example_output, 7.0)
    assert check(exported, head, (exported.example, garbage)).max_abs_diff <= 1e-5


def test_the_mean_bound_catches_a_small_systematic_offset(head):
    # Every pixel off by 5e-6: within the largest-difference bound, but not an equivalent model.
    (example,) = seeded_images(0, DEFAULT_VALIDATION_SHAPES[:1])
    exported = export_model(head, {}, example)
    shifted = exported.example_output + 5e-6
    with pytest.raises(ValidationError, match=r"by 5e-06 on average > mean tolerance 1e-06 at input 1x3x320x320"):
        check(exported, head, (exported.example.clone(), shifted))
    report = check(exported, head, (exported.example, exported.example_output))
    assert report.as_dict()["mean_tolerance"] == 1e-6 and report.mean_abs_diff <= 1e-6
